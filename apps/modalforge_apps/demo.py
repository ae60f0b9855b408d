"""The main job: train a small CLIP on the built-in digits, evaluate it as the field does, report.

``modalforge demo --out runs/demo`` trains the ``digits_clip.yaml`` recipe from scratch, then on the
held-out split: zero-shot classification (class names × the data set's caption templates),
text↔image retrieval (a hit is an item of the query's digit), and a linear probe (logistic
regression on frozen train-split image embeddings, scored on the test split, as in the CLIP paper).
It writes ``metrics.json``, PNG plots and ``report.html`` beside the run's checkpoints.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from modalforge import io
from modalforge.errors import ModalforgeError
from modalforge.spec import PipelineSpec, load_spec
from modalforge_apps import recipes

RECIPE = "digits_clip.yaml"
TARGETS: dict[str, float] = {
    "zeroshot_top1": 0.90,
    "retrieval_i2t_r1": 0.85,
    "retrieval_t2i_r1": 0.85,
    "linear_probe_acc": 0.95,
}
GRID_TOP_K = 6


@dataclass
class DemoResult:
    metrics: dict[str, float]
    out: Path


def load_recipe(overrides: list[str]) -> PipelineSpec:
    return load_spec(recipes.recipe_path(RECIPE), overrides)


def run_demo(out: Path, overrides: list[str]) -> DemoResult:
    from modalforge.engine import seed_everything, select_device, train
    from modalforge.engine.runtime import Precision
    from modalforge.pipeline import build_pipeline
    from modalforge.plugin import get_registry
    from modalforge_apps.cli.inference import Loaded, embed_split
    from modalforge_apps.cli.tree import describe_pipeline

    spec = load_recipe(overrides)
    set_aside_previous(out, spec.name)
    print(f"modalforge demo: {spec.name} — a CLIP trained from scratch on the digits → {out}\n")
    seed_everything(spec.seed)
    pipeline = build_pipeline(spec, get_registry())
    print(describe_pipeline(pipeline), end="\n\n")
    result = train(pipeline, out)

    device = select_device(spec.train.device)
    model = pipeline.model.to(device).eval()
    loaded = Loaded(pipeline, model, device, Precision(spec.train.precision, device), out)
    test = embed_split(loaded, spec.data.eval_split, ["image", "text"])
    train_split = embed_split(loaded, spec.data.train_split, ["image"])
    metrics, preds = evaluate_embeddings(loaded, test, train_split)
    metrics["train_seconds"] = float(result.train_seconds)
    metrics["train_steps"] = float(result.steps)
    io.write_json(out / "metrics.json", metrics)
    write_plots_and_report(out, loaded, test, metrics, preds)
    print_table(metrics)
    return DemoResult(metrics, out)


def evaluate_embeddings(loaded: Any, test: Any, train: Any) -> tuple[dict[str, float], np.ndarray]:
    """Zero-shot, class-level retrieval in both directions and a train→test linear probe.

    Returns the metrics and the zero-shot predictions (for the confusion matrix).
    """
    from modalforge.evaluation import (
        build_zeroshot_classifier,
        image_text_retrieval,
        linear_probe,
        text_encoder,
        topk_accuracy,
        zeroshot_logits,
    )

    dataset = loaded.pipeline.dataset
    labels = test.labels
    with torch.no_grad():
        classifier = build_zeroshot_classifier(
            text_encoder(loaded.model, "text"), dataset.target.class_names, dataset.templates
        )
    logits = zeroshot_logits(test.embeds["image"], classifier.cpu().float())
    accuracy = topk_accuracy(logits, labels, (1, 5))
    metrics = {"zeroshot_top1": accuracy[1], "zeroshot_top5": accuracy[5]}
    retrieval = image_text_retrieval(
        test.embeds["image"], test.embeds["text"], image_labels=labels, text_labels=labels
    )
    metrics.update({f"retrieval_{k}": float(v) for k, v in retrieval.items()})
    probe = linear_probe(
        train.embeds["image"].numpy(),
        train.labels.numpy(),
        test.embeds["image"].numpy(),
        labels.numpy(),
    )
    metrics["linear_probe_acc"] = float(probe.accuracy)
    metrics["linear_probe_c"] = float(probe.chosen_c[0])
    return metrics, logits.argmax(-1).numpy()


def write_plots_and_report(
    out: Path, loaded: Any, test: Any, metrics: dict[str, float], preds: np.ndarray
) -> Path:
    from modalforge.evaluation import text_encoder, topk
    from modalforge_apps.report import (
        plot_confusion,
        plot_loss_curve,
        plot_retrieval_grid,
        read_train_curve,
        write_report,
    )

    dataset = loaded.pipeline.dataset
    names = list(dataset.target.class_names)
    labels = test.labels.numpy()
    loss_png = plot_loss_curve(*read_train_curve(out / "metrics.jsonl"), out / "loss_curve.png")
    cm_png = plot_confusion(
        labels,
        preds,
        names,
        out / "zeroshot_confusion.png",
        f"Zero-shot confusion (top-1 {metrics['zeroshot_top1']:.3f})",
    )
    queries = [dataset.templates[0].format(name) for name in names]
    with torch.no_grad():
        q = text_encoder(loaded.model, "text")(queries).float().cpu()
    scores, idx = topk(q, test.embeds["image"], GRID_TOP_K)
    images = _test_images(loaded, idx.numpy())
    hits = (labels[idx.numpy()] == np.arange(len(names))[:, None]).tolist()
    grid_png = plot_retrieval_grid(
        queries, images, hits, scores.numpy(), out / "retrieval_grid.png"
    )
    shown = {k: (metrics[k], TARGETS.get(k)) for k in (*TARGETS, "zeroshot_top5")}
    shown["train_seconds"] = (metrics["train_seconds"], None)
    return write_report(
        out / "report.html",
        title="modalforge demo: CLIP on the digits",
        intro=(
            "A small CLIP (timm image tower + CLIP text transformer) trained from scratch on "
            "scikit-learn's handwritten digits paired with template captions, evaluated on the "
            "held-out split. Retrieval counts a hit when the item shows the query's digit."
        ),
        metrics=shown,
        figures=[
            (loss_png, "Training loss (CLIP InfoNCE)"),
            (cm_png, "Zero-shot classification on the test split"),
            (grid_png, "Text → image retrieval: top images per digit prompt (green: right digit)"),
        ],
        details={"recipe": RECIPE, "run folder": str(out), "spec": str(out / "spec.yaml")},
    )


def _test_images(loaded: Any, idx: np.ndarray) -> np.ndarray:
    """The test split's images at ``idx`` (Q, K) as (Q, K, H, W) arrays in [0, 1]."""
    data = loaded.pipeline.dataset.load(loaded.spec.data.eval_split)
    return np.stack(
        [np.stack([data[int(i)]["image"][0].numpy() for i in row]) for row in idx]
    ).clip(0, 1)


def print_table(metrics: dict[str, float]) -> None:
    print("\nheld-out results (digits test split)")
    print(f"  {'metric':<20} {'value':>8}  {'target':>7}")
    for key, target in TARGETS.items():
        status = "met" if metrics[key] >= target else "MISSED"
        print(f"  {key:<20} {metrics[key]:>8.4f}  {'≥ ' + format(target, 'g'):>7}  {status}")
    print(f"  {'zeroshot_top5':<20} {metrics['zeroshot_top5']:>8.4f}")
    print(f"  {'train_seconds':<20} {metrics['train_seconds']:>8.1f}")


def set_aside_previous(out: Path, name: str) -> None:
    """Rerunning the demo keeps the last run as ``<out>.previous`` instead of refusing."""
    import yaml

    io.check_output_dir(out, "--out")
    if not out.exists() or not any(out.iterdir()):
        return
    try:
        earlier = yaml.safe_load((out / "spec.yaml").read_text()).get("name")
    except (OSError, yaml.YAMLError, AttributeError):
        earlier = None
    if earlier != name:
        raise ModalforgeError(
            f"{out} exists and is not an earlier demo run; the demo will not overwrite it",
            hint="pass another folder with --out",
        )
    previous = out.with_name(out.name + ".previous")
    shutil.rmtree(previous, ignore_errors=True)
    out.rename(previous)
    print(f"kept the earlier demo run as {previous}")
