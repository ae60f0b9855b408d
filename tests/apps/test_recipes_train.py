"""Every built-in recipe is built and trained for a few steps through ``modalforge train``.

Each recipe keeps its own components (encoders, generator type, losses, network sizes); only
the data (fewer samples, batches of 8) and the number of steps shrink. Recipes that read
another run's checkpoint (DALL·E's VQ-VAE tokenizer, the shapes diffusion's CLIP text tower)
are trained after that run, with the checkpoint parameter pointing at it. The real
``modalforge.engine.train`` is wrapped (not replaced) so the tests can compare the trained
model in memory with its initial weights and with what its checkpoint loads back.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image
from torch.utils.data import default_collate

import modalforge.engine
import modalforge_apps.report.plots
from modalforge.contracts import Generator
from modalforge.pipeline import Pipeline, load_trained
from modalforge.plugin import set_host
from modalforge_apps import recipes
from modalforge_apps.cli import main
from modalforge_apps.cli.generate_cmd import image_modality_shape

TOKENIZER = "model.generator.params.tokenizer_checkpoint"
CONDITION = "model.generator.params.condition_checkpoint"

DIGITS = ("data.batch_size=8",)
DIGITS_EVAL = (*DIGITS, "data.dataset.params.test_fraction=0.05")  # 90 test digits
SHAPES = ("data.batch_size=8", "data.dataset.params.train_samples=64")
SHAPES_EVAL = (*SHAPES, "data.dataset.params.test_samples=32")
DIGIT_PROMPTS = ("a handwritten seven", "the number two.")
SHAPE_PROMPTS = ("a red circle at the top left", "a blue square at the center")

RETRIEVAL = {
    f"retrieval_{way}_{k}"
    for way in ("i2t", "t2i")
    for k in ("r1", "r5", "r10", "mean_rank", "median_rank")
}
CLIP_EVAL = {"loss", "loss_contrastive", "loss_logit_scale", "zeroshot_top1", "zeroshot_top5"}
CLIP_EVAL |= RETRIEVAL
CLIP_TRAIN = {"loss", "loss_contrastive", "loss_logit_scale"}
VQVAE_TRAIN = {"loss", "recon_mse", "commitment", "perplexity", "code_usage", "restarts"}
DALLE_TRAIN = {"loss", "image_loss", "grad_norm"}
GAN_TRAIN = {"d_loss", "d_real", "d_fake", "d_mismatch", "g_loss"}
# The medical recipes' synthetic studies: 24 training (3 batches, so 2 steps end no epoch) and
# 40 test studies (both classes of every finding occur in 40).
STUDIES = "data.dataset.params"
MEDICAL = ("data.batch_size=8", f"{STUDIES}.num_train=24", f"{STUDIES}.num_val=4")
MEDICAL += (f"{STUDIES}.num_test=40",)
FINDINGS = ("left_lesion", "right_lesion", "multiple_lesions", "large_lesion", "bright_lesion")
CLINICAL = ("auc", "ap", "sensitivity", "specificity", "sens_at_spec90", "f1", "ece")


def _with_ci(keys):
    return {f"{k}{end}" for k in keys for end in ("", "_ci_low", "_ci_high")}


MEDICAL_CLIP_EVAL = {f"{s}/{f}" for s in ("zeroshot_auc", "linear_probe_auc") for f in FINDINGS}
MEDICAL_CLIP_EVAL |= {"zeroshot_auc_macro", "linear_probe_auc_macro"} | CLIP_TRAIN
BINARY_CLINICAL = _with_ci(CLINICAL) | {"bootstrap_used"}
MULTILABEL_CLINICAL = _with_ci(f"{s}/{f}" for s in CLINICAL for f in FINDINGS)
MULTILABEL_CLINICAL |= _with_ci(f"{s}_macro" for s in CLINICAL if s != "ece")
MULTILABEL_CLINICAL |= _with_ci(["ece"]) | {"bootstrap_used"}  # ece pools every finding


@dataclass(frozen=True)
class Smoke:
    """How one recipe is shrunk, and what its tiny run must show."""

    overrides: tuple[str, ...]
    train_keys: set[str]  # logged on the train line of metrics.jsonl
    eval_keys: set[str] = field(default_factory=set)  # results.json "metrics" (eval split)
    # The denoisers start with zero output layers (and zero residual branches), so the gradient
    # reaches one layer deeper per step: 4 steps move every trainable parameter, 2 do not.
    steps: int = 2
    needs: tuple[str, str] | None = None  # (recipe, parameter taking its run folder)
    prompts: tuple[str, ...] = ()  # generators: what `modalforge generate` draws


SMOKE: dict[str, Smoke] = {
    "digits_classifier": Smoke(
        DIGITS_EVAL,
        train_keys={"loss", "loss_cross_entropy"},
        eval_keys={"loss", "loss_cross_entropy", "accuracy", "macro_f1"},
    ),
    "digits_clip": Smoke(DIGITS_EVAL, train_keys=CLIP_TRAIN, eval_keys=CLIP_EVAL),
    "digits_vqvae": Smoke(DIGITS, train_keys=VQVAE_TRAIN),
    "digits_dalle": Smoke(
        DIGITS, train_keys=DALLE_TRAIN, needs=("digits_vqvae", TOKENIZER), prompts=DIGIT_PROMPTS
    ),
    "digits_gan": Smoke(DIGITS, train_keys={*GAN_TRAIN, "mode_seeking"}, prompts=DIGIT_PROMPTS),
    "digits_diffusion": Smoke(DIGITS, train_keys={"loss"}, steps=4, prompts=DIGIT_PROMPTS),
    "shapes_clip": Smoke(SHAPES_EVAL, train_keys=CLIP_TRAIN, eval_keys=CLIP_EVAL),
    "shapes_vqvae": Smoke(SHAPES, train_keys=VQVAE_TRAIN),
    "shapes_dalle": Smoke(
        SHAPES, train_keys=DALLE_TRAIN, needs=("shapes_vqvae", TOKENIZER), prompts=SHAPE_PROMPTS
    ),
    "shapes_gan": Smoke(SHAPES, train_keys=GAN_TRAIN, prompts=SHAPE_PROMPTS),
    "shapes_diffusion": Smoke(
        SHAPES,
        train_keys={"loss"},
        steps=4,
        needs=("shapes_clip", CONDITION),
        prompts=SHAPE_PROMPTS,
    ),
    "medical_ct_clip": Smoke(MEDICAL, train_keys=CLIP_TRAIN, eval_keys=MEDICAL_CLIP_EVAL),
    "medical_xray_clip": Smoke(MEDICAL, train_keys=CLIP_TRAIN, eval_keys=MEDICAL_CLIP_EVAL),
    "medical_ct_fusion": Smoke(
        MEDICAL,
        train_keys={"loss", "loss_cross_entropy"},
        eval_keys={"loss", "loss_cross_entropy"} | BINARY_CLINICAL,
    ),
    "medical_xray_classifier": Smoke(
        MEDICAL,
        train_keys={"loss", "loss_bce_with_logits"},
        eval_keys={"loss", "loss_bce_with_logits"} | MULTILABEL_CLINICAL,
    ),
    "robotics_tabletop_reach": Smoke(
        ("data.batch_size=8", f"{STUDIES}.episodes=3", f"{STUDIES}.val_episodes=1"),
        train_keys={"loss", "loss_action_mse"},
        eval_keys={"loss", "loss_action_mse"},
    ),
    "robotics_reacher": Smoke(
        ("data.batch_size=8", f"{STUDIES}.episodes=2", f"{STUDIES}.val_episodes=1"),
        train_keys={"loss", "loss_action_mse"},
        eval_keys={"loss", "loss_action_mse"},
    ),
    "robotics_tabletop_push": Smoke(
        ("data.batch_size=8", f"{STUDIES}.episodes=3", f"{STUDIES}.val_episodes=1"),
        train_keys={"loss", "loss_action_mse"},
        eval_keys={"loss", "loss_action_mse"},
    ),
}
# Which submodule of a chained recipe holds the upstream run's model, and under which prefix.
FROZEN_FROM_UPSTREAM = {TOKENIZER: ("image_tokenizer.", ""), CONDITION: ("encoders.text.",) * 2}
GENERATORS = [name for name, smoke in SMOKE.items() if smoke.prompts]
TOKENIZERS = [s.needs[0] for s in SMOKE.values() if s.needs and s.needs[1] == TOKENIZER]
EVALUATED = [name for name, smoke in SMOKE.items() if smoke.eval_keys]


@dataclass
class Run:
    out: Path
    pipeline: Pipeline  # the pipeline `modalforge train` built and trained, weights in memory
    initial: dict[str, torch.Tensor]  # its state before the first step

    @property
    def model(self) -> torch.nn.Module:
        return self.pipeline.model.eval()

    def results(self) -> dict[str, Any]:
        return json.loads((self.out / "results.json").read_text())


class Runs:
    """Tiny runs of the recipes, each trained once (its upstream run first) on first use."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.runs: dict[str, Run] = {}
        self._captured: list[tuple[Pipeline, dict[str, torch.Tensor]]] = []

    def spy_train(self, real: Any) -> Any:  # noqa: ANN401
        def train(pipeline: Pipeline, out_dir: Any, resume: Any = None) -> Any:  # noqa: ANN401
            initial = {k: v.detach().clone() for k, v in pipeline.model.state_dict().items()}
            self._captured.append((pipeline, initial))
            return real(pipeline, out_dir, resume=resume)

        return train

    def __getitem__(self, name: str) -> Run:
        if name not in self.runs:
            smoke = SMOKE[name]
            overrides = list(smoke.overrides)
            if smoke.needs is not None:
                upstream, parameter = smoke.needs
                overrides.append(f"{parameter}={self[upstream].out}")
            out = self.root / name
            argv = ["train", f"recipe:{name}", "--out", str(out), *overrides]
            argv += [f"train.max_steps={smoke.steps}", "train.progress=false"]
            argv += ["train.tensorboard=false"]
            self._captured.clear()
            assert main(argv) == 0
            [(pipeline, initial)] = self._captured
            self.runs[name] = Run(out, pipeline, initial)
        return self.runs[name]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    set_host(None)  # the installed plugins, whatever an earlier test set
    threads = torch.get_num_threads()  # recipes with train.num_threads set torch's for good
    with pytest.MonkeyPatch.context() as mp:
        store = Runs(tmp_path_factory.mktemp("recipes"))
        mp.setattr(modalforge.engine, "train", store.spy_train(modalforge.engine.train))
        mp.setenv("MODALFORGE_CACHE", str(store.root / "cache"))  # synthetic studies' files
        yield store
    torch.set_num_threads(threads)
    set_host(None)


def _train_line(run: Run) -> dict[str, Any]:
    lines = [json.loads(line) for line in (run.out / "metrics.jsonl").read_text().splitlines()]
    [train] = [line for line in lines if line["split"] == "train"]  # one flush: fewer steps
    return train  # than train.log_every_steps


def _fixed_batch(pipeline: Pipeline, split: str, size: int = 8) -> dict[str, torch.Tensor]:
    data = pipeline.load(split)
    return default_collate([data[i] for i in range(size)])


def _equal_state(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    differ = [k for k in sa if not torch.equal(sa[k], sb[k])]
    assert not differ, f"{len(differ)} tensors differ, e.g. {differ[:3]}"


def test_every_recipe_has_a_smoke_entry():
    packaged = {name.removesuffix(".yaml") for name in recipes.names()}
    missing = sorted(packaged - set(SMOKE))
    assert not missing, f"add a SMOKE entry (tiny overrides) for the new recipe(s) {missing}"
    assert set(SMOKE) == packaged, (
        f"SMOKE names recipes that no longer exist: {set(SMOKE) - packaged}"
    )


@pytest.mark.parametrize("name", SMOKE)
def test_recipe_trains_and_writes_its_results(runs, name):
    smoke, run = SMOKE[name], runs[name]
    results = run.results()
    assert results["steps"] == smoke.steps and results["epochs"] == 0  # max_steps stopped it
    assert Path(results["checkpoint"]) == run.out / "checkpoints" / f"step_{smoke.steps:08d}"
    assert (Path(results["checkpoint"]) / "model.safetensors").is_file()
    metrics = results["metrics"]
    assert set(metrics) == smoke.eval_keys
    assert all(math.isfinite(v) for v in metrics.values()), metrics
    for key in ("accuracy", "macro_f1", "zeroshot_top1", "zeroshot_top5"):
        assert 0.0 <= metrics.get(key, 0.0) <= 1.0
    if "zeroshot_top1" in metrics:
        assert metrics["zeroshot_top1"] <= metrics["zeroshot_top5"]
        for way in ("i2t", "t2i"):
            r = [metrics[f"retrieval_{way}_r{k}"] for k in (1, 5, 10)]
            assert 0.0 <= r[0] <= r[1] <= r[2] <= 1.0
    train = _train_line(run)
    assert train["step"] == smoke.steps and smoke.train_keys <= set(train)
    values = {k: train[k] for k in smoke.train_keys}
    assert all(isinstance(v, float) and math.isfinite(v) for v in values.values()), values


@pytest.mark.parametrize("name", SMOKE)
def test_training_moves_every_trainable_parameter(runs, name):
    smoke, run = SMOKE[name], runs[name]
    params = dict(run.model.named_parameters())
    trainable = {k for k, p in params.items() if p.requires_grad}
    assert trainable
    unchanged = sorted(k for k in trainable if torch.equal(run.initial[k], params[k]))
    assert not unchanged, f"{len(unchanged)} of {len(trainable)} never moved: {unchanged[:4]}"
    ema = getattr(run.model, "ema", None)
    if ema is not None:  # the averaged copy follows every step, the rest of the frozen stay put
        assert int(ema.updates) == smoke.steps
    frozen = {k for k in params.keys() - trainable if not k.startswith("ema.")}
    assert all(torch.equal(run.initial[k], params[k]) for k in frozen)
    if smoke.needs is None:
        assert not frozen
        return
    upstream, parameter = smoke.needs
    prefix, upstream_prefix = FROZEN_FROM_UPSTREAM[parameter]
    assert frozen and all(k.startswith(prefix) for k in frozen)
    # the frozen part is the upstream run's trained model, weights and buffers
    mine = {
        k.removeprefix(prefix): v for k, v in run.model.state_dict().items() if k.startswith(prefix)
    }
    theirs = runs[upstream].model.state_dict()
    for key, value in mine.items():
        assert torch.equal(value, theirs[upstream_prefix + key]), key


@pytest.mark.parametrize("name", SMOKE)
def test_checkpoint_loads_back_the_trained_model(runs, name):
    run = runs[name]
    loaded = load_trained(run.out / "spec.yaml", run.out)
    assert loaded.checkpoint == Path(run.results()["checkpoint"])
    _equal_state(loaded.model, run.model)
    model, trained = loaded.model, run.model
    spec = loaded.spec
    if name in TOKENIZERS:  # a VQ-VAE: its reconstructions
        images = _fixed_batch(loaded.pipeline, spec.data.train_split)["image"]
        recon = model.decode(model.encode(images))
        assert recon.shape == images.shape and torch.isfinite(recon).all()
        assert torch.equal(recon, trained.decode(trained.encode(images)))
        return
    if isinstance(model, Generator):  # sampling: see test_generate_draws_from_the_checkpoint
        return
    batch = _fixed_batch(loaded.pipeline, spec.data.eval_split)
    with torch.no_grad():
        got, want = model(batch), trained(batch)
    assert got.keys() == want.keys()
    for key in want:
        assert torch.isfinite(want[key]).all() and torch.equal(got[key], want[key]), key


@pytest.mark.parametrize("name", EVALUATED)
def test_eval_of_the_checkpoint_repeats_the_run_metrics(runs, name, tmp_path, capsys):
    run = runs[name]
    out = tmp_path / "eval.json"
    argv = ["eval", str(run.out / "spec.yaml"), "--checkpoint", str(run.out), "--output", str(out)]
    assert main(argv) == 0
    assert json.loads(out.read_text()) == pytest.approx(run.results()["metrics"], rel=1e-6)


@pytest.mark.parametrize("name", GENERATORS)
def test_generate_draws_from_the_checkpoint(runs, name, tmp_path, monkeypatch, capsys):
    run, prompts, n = runs[name], list(SMOKE[name].prompts), 3
    drawn: list[Any] = []
    real_plot = modalforge_apps.report.plots.plot_sample_grid

    def plot(prompts: Any, images: Any, path: Path, **kwargs: Any) -> Path:  # noqa: ANN401
        drawn.append(images)
        return real_plot(prompts, images, path, **kwargs)

    monkeypatch.setattr(modalforge_apps.report.plots, "plot_sample_grid", plot)
    png = tmp_path / "grid.png"
    argv = ["generate", str(run.out / "spec.yaml"), *prompts, "--checkpoint", str(run.out)]
    assert main([*argv, "-n", str(n), "--seed", "3", "--out", str(png)]) == 0
    [images] = drawn
    shape = image_modality_shape(run.pipeline)
    assert images.shape == (len(prompts), n, *shape)
    assert ((images >= 0) & (images <= 1)).all()
    with torch.no_grad():  # the checkpoint samples exactly what the trained model samples
        want = run.model.sample(prompts, n, generator=torch.Generator().manual_seed(3))
    assert torch.equal(torch.from_numpy(images), want.float())
    assert not torch.equal(want[:, 0], want[:, 1])  # the noise matters, so the seed does
    record = json.loads(png.with_suffix(".json").read_text())
    assert record["prompts"] == prompts and record["num_samples"] == n and record["seed"] == 3
    with Image.open(png) as grid:
        assert grid.format == "PNG"
        width, height = grid.size
    # plot_sample_grid's figure: (1.1 n + 2.4) × (1.25 P + 0.6) inches at 110 dpi, cropped tight
    assert 0.85 < width / ((1.1 * n + 2.4) * 110) <= 1.05  # one column fewer: 0.81
    assert 0.85 < height / ((1.25 * len(prompts) + 0.6) * 110) <= 1.05  # one row fewer: 0.6


@pytest.mark.parametrize("name", TOKENIZERS)
def test_a_tokenizer_recipe_refuses_to_generate(runs, name, tmp_path, capsys):
    run = runs[name]
    argv = ["generate", str(run.out / "spec.yaml"), "a seven", "--checkpoint", str(run.out)]
    assert main([*argv, "--out", str(tmp_path / "grid.png")]) == 2
    err = capsys.readouterr().err
    assert "image tokenizer, not a sampler" in err and "Traceback" not in err
    assert not (tmp_path / "grid.png").exists()
