"""Zero-shot findings of a trained ``medical_ct_clip`` run: per-finding ROC-AUC with bootstrap
95% intervals, the negation subset, and the linear probe of the volume encoder's features
before the projection (fitted on the training split and scored on the held-out split, the CLIP
paper's protocol; cross-validated within the held-out split, as the recipe's ``linear_probe``
metric does; and, for comparison, of the shared-space embeddings).

Reads a run folder (``medical_recipes.py`` leaves one in ``OUT/medical_ct_clip``), embeds the
held-out split's volumes and reports, and scores each finding by its positive / negative prompt
pair (``prompt_pair_scores``, CheXzero style). The statistics come from ``clinical_report``
(ROC-AUC, average precision, sensitivity / specificity at the pair's decision boundary, each
with a 1,000-resample bootstrap interval); the zero-shot probabilities are the pair's softmax at
scale 1, which ranks and thresholds exactly as at the model's scale but does not round to 0 or 1.

Negation subset, per finding F: the studies whose report *negates* F ("no lesion in the left
lobe", all true negatives of F) against all positives of F. Its image AUC says the negated
studies' volumes were not pulled towards F's positive prompts by pretraining on the negated
text; its report AUC scores the report texts themselves against the same prompts: a text
encoder that read "no lesion in the left lobe" as a mention of a left lesion would score below
0.5 there.

Run: ``.venv/bin/python benchmarks/medical_zeroshot.py --run runs/medical/medical_ct_clip``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from modalforge.evaluation import (
    build_prompt_pair_classifier,
    cross_validated_probe_auc,
    probe_auc,
    prompt_pair_scores,
    text_encoder,
)
from modalforge.pipeline.trained import load_trained
from modalforge_apps.cli.inference import embed_split
from modalforge_metrics import clinical_report

ZERO_SHOT_STATS = ("auc", "ap", "sens_spec")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a medical_ct_clip run folder")
    parser.add_argument("--split", default="test")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--train-split", default="train", help="the linear probe's training split")
    args = parser.parse_args()

    loaded = load_trained(args.run / "spec.yaml", args.run)
    dataset = loaded.pipeline.dataset
    image, text = dataset.image_name, "report"
    findings = list(dataset.findings)
    data = embed_split(loaded, args.split, [image, text])
    y = data.labels.numpy().astype(int)
    with torch.no_grad():
        classifier = build_prompt_pair_classifier(
            text_encoder(loaded.model, text), dataset.prompts, findings
        ).cpu()
    scores = {m: prompt_pair_scores(data.embeds[m], classifier, scale=1.0) for m in (image, text)}
    probs = {m: torch.sigmoid(s.double()).numpy() for m, s in scores.items()}

    table = clinical_report(
        probs[image],
        y,
        task="multilabel",
        class_names=findings,
        report=ZERO_SHOT_STATS,
        n_bootstrap=args.bootstrap,
        split=args.split,
    )
    negated = [
        set(filter(None, str(v).split("|"))) for v in dataset.metadata(args.split)["negated"]
    ]
    print(f"zero-shot on {args.split!r}: {len(y)} studies, {len(findings)} findings")
    print(
        f"  {'finding':<17} {'pos':>4}  {'AUC [95% CI]':<22} {'AP':>6}  neg-subset n  image  report"
    )
    subset_image, subset_report = {}, {}
    for c, name in enumerate(findings):
        rows = np.array([y[i, c] == 1 or name in negated[i] for i in range(len(y))])
        n_neg = int((rows & (y[:, c] == 0)).sum())
        if n_neg and rows.sum() > n_neg:
            from sklearn.metrics import roc_auc_score

            subset_image[name] = float(roc_auc_score(y[rows, c], probs[image][rows, c]))
            subset_report[name] = float(roc_auc_score(y[rows, c], probs[text][rows, c]))
        auc = table[f"auc/{name}"]
        ci = f"[{table[f'auc/{name}_ci_low']:.3f}, {table[f'auc/{name}_ci_high']:.3f}]"
        sub = (
            f"{n_neg:>12}  {subset_image[name]:.3f}  {subset_report[name]:.3f}"
            if name in subset_image
            else f"{n_neg:>12}      -       -"
        )
        ap = table[f"ap/{name}"]
        print(f"  {name:<17} {int(y[:, c].sum()):>4}  {auc:.3f} {ci:<16} {ap:.3f}  {sub}")
    macro_ci = f"[{table['auc_macro_ci_low']:.3f}, {table['auc_macro_ci_high']:.3f}]"
    print(f"  macro ROC-AUC {table['auc_macro']:.3f} {macro_ci}")
    if subset_image:
        print(
            f"  negation subset ({', '.join(subset_image)}): image AUC "
            f"{np.mean(list(subset_image.values())):.3f}, report AUC "
            f"{np.mean(list(subset_report.values())):.3f}"
        )
    # the CLIP paper's probes read the image encoder's features before the projection to the
    # shared space; the shared-space embeddings are probed too, for comparison
    train = embed_split(loaded, args.train_split, [image], encoder_features=True)
    test = embed_split(loaded, args.split, [image], encoder_features=True)
    train_shared = embed_split(loaded, args.train_split, [image])
    seed = loaded.spec.seed
    probe = probe_auc(train.embeds[image], train.labels, test.embeds[image], y, seed=seed)
    folds = cross_validated_probe_auc(test.embeds[image], y, seed=seed)
    shared = probe_auc(
        train_shared.embeds[image], train_shared.labels, data.embeds[image], y, seed=seed
    )
    dim, shared_dim = test.embeds[image].shape[1], data.embeds[image].shape[1]
    for title, result in (
        (
            f"fitted on {args.train_split!r} ({len(train)} studies), {image} encoder features "
            f"({dim}-d)",
            probe,
        ),
        (f"5-fold within {args.split!r} (as the metric), {image} encoder features", folds),
        (f"fitted on {args.train_split!r}, shared-space embeddings ({shared_dim}-d)", shared),
    ):
        shown = ", ".join(f"{n} {a:.3f}" for n, a in zip(findings, result.per_label, strict=True))
        print(f"linear probe {title}: macro ROC-AUC {result.macro:.3f}")
        if len(result.chosen_c) == len(findings):  # one fit per finding (not per fold)
            shown += f"; C {', '.join(f'{c:g}' for c in result.chosen_c)}"
        print(f"  ({shown})")
    out = {
        "zeroshot": table,
        "negation_subset": {"image": subset_image, "report": subset_report},
        "linear_probe": {"macro": probe.macro, **dict(zip(findings, probe.per_label, strict=True))},
        "linear_probe_cv": {
            "macro": folds.macro,
            **dict(zip(findings, folds.per_label, strict=True)),
        },
        "linear_probe_shared": {
            "macro": shared.macro,
            **dict(zip(findings, shared.per_label, strict=True)),
        },
    }
    (args.run / "zeroshot_benchmark.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
