"""``modalforge genbench``: train each stage (CLIPs, tokenizers, generators), then judge every
generator with evaluators it never saw, and write ``results.json`` and ``report.html``.

Per generator, on the judge's prompts:

- **judged accuracy** of plain samples (digits: the SVC's label equals the prompted digit; shapes:
  colour, shape, position and all three, on seen and on held-out combinations);
- **best-of-N**: each kept sample is the reranker CLIP's favourite of ``best_of`` candidates,
  judged the same way, so the gain of reranking is measured, not assumed;
- **KID** between plain samples and real test images on the judge's own features, next to the
  real-vs-real floor (real train vs real test) on the same features, and its distance from the
  floor in units of the floor's standard deviation over subsets;
- **CLIP score and R-precision** by a CLIP trained separately from the reranker.

Stages are trained once: a stage whose run folder holds ``results.json`` is reused, one with
checkpoints but no result is resumed. ``results.json`` is written atomically at the end.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from modalforge import io
from modalforge_apps.generation.config import GenBenchConfig, resolve_spec
from modalforge_apps.generation.prompts import PromptSet, judge_prompts

RUNS_DIR = "runs"


@dataclass
class StageRun:
    name: str
    run_dir: Path
    train_seconds: float | None
    reused: bool


@dataclass
class GenBenchResult:
    results: dict[str, Any]
    grids: dict[str, list[tuple[Path, str]]] = field(default_factory=dict)


def train_stages(
    config: GenBenchConfig, base_dir: Path, out: Path, log: Callable[[str], None] = print
) -> dict[str, StageRun]:
    """Train every stage in order into ``out/runs/<stage>``; reuse finished ones."""
    from modalforge.engine import seed_everything, train
    from modalforge.engine.checkpoint_files import CHECKPOINTS_DIR
    from modalforge.engine.results import RESULTS_FILE
    from modalforge.pipeline import build_pipeline
    from modalforge.plugin import get_registry
    from modalforge.spec import load_spec

    runs = out / RUNS_DIR
    done: dict[str, StageRun] = {}
    for name, stage in config.stages.items():
        run_dir = runs / name
        # no progress bars in a benchmark's log; a stage's own overrides come after and win
        overrides = ["train.progress=false"]
        overrides += [o.replace("{runs}", str(runs.resolve())) for o in stage.overrides]
        spec = load_spec(resolve_spec(stage.spec, base_dir), overrides)
        if (run_dir / RESULTS_FILE).exists():
            seconds = json.loads((run_dir / RESULTS_FILE).read_text()).get("train_seconds")
            done[name] = StageRun(name, run_dir, seconds, reused=True)
            log(f"stage {name}: done earlier ({run_dir})")
            continue
        resume = run_dir if (run_dir / CHECKPOINTS_DIR).is_dir() else None
        log(f"stage {name}: training {stage.spec}" + (" (resuming)" if resume else ""))
        seed_everything(spec.seed)
        result = train(build_pipeline(spec, get_registry()), run_dir, resume=resume)
        done[name] = StageRun(name, run_dir, result.train_seconds, reused=False)
        log(f"stage {name}: {result.train_seconds:.1f} s of training")
    return done


def _trained(run: StageRun) -> Any:
    from modalforge.pipeline import load_trained

    return load_trained(run.run_dir / "spec.yaml", run.run_dir)


@torch.no_grad()
def _sample(model: Any, prompts: list[str], n: int, seed: int, budget: int = 256) -> Tensor:
    """``(P, n, C, H, W)`` samples, at most ``budget`` images (or one prompt) per ``sample`` call,
    so memory stays bounded whatever the generator (a diffusion step holds a batch of
    activations)."""
    gen = torch.Generator(next(model.parameters()).device).manual_seed(seed)
    chunk = max(1, budget // n)
    parts = [
        model.sample(prompts[i : i + chunk], n, generator=gen).float().cpu()
        for i in range(0, len(prompts), chunk)
    ]
    return torch.cat(parts)


def _best_of(reranker: Any, model: Any, prompts: list[str], n: int, k: int, seed: int) -> Tensor:
    """``(P, n, ...)``: each the reranker's best of ``k`` fresh candidates for its prompt."""
    candidates = _sample(model, prompts, n * k, seed + 1)
    p = len(prompts)
    scores = reranker.score(candidates, prompts).view(p, n, k)
    best = scores.argmax(-1)  # (P, n)
    grouped = candidates.view(p, n, k, *candidates.shape[2:])
    return grouped[torch.arange(p)[:, None], torch.arange(n)[None, :], best]


@torch.no_grad()
def _clip_metrics(clip: Any, images: Tensor, own: Tensor, prompts: PromptSet) -> dict[str, float]:
    """CLIP score (w = 100) and R-precision@1 among all prompts, by an independent CLIP, of
    images ``(N, C, H, W)`` whose prompts are ``prompts.texts[own]``."""
    from modalforge.evaluation import clip_score, r_precision

    embeds, texts = clip.embed_images(images), clip.embed_texts(prompts.texts)
    return {
        "clip_score": clip_score(embeds, texts[own]),
        "r_precision": r_precision(embeds, own, texts),
    }


def evaluate_generator(
    name: str,
    run: StageRun,
    config: GenBenchConfig,
    judge: Any,
    prompts: PromptSet,
    reranker: Any,
    eval_clip: Any,
    out: Path,
) -> tuple[dict[str, Any], list[tuple[Path, str]]]:
    """The judged numbers and sample grids of one generator."""
    from modalforge.evaluation import kid
    from modalforge_apps.report.plots import plot_sample_grid

    trained = _trained(run)
    model = trained.model
    n = config.samples_per_prompt
    start = time.perf_counter()
    plain = _sample(model, prompts.texts, n, config.seed)
    sample_seconds = time.perf_counter() - start
    res: dict[str, Any] = {
        "stage": name,
        "model": type(model).__name__,
        "train_seconds": run.train_seconds,
        "samples": int(plain.shape[0] * plain.shape[1]),
        "sample_seconds": sample_seconds,
        "plain": prompts.judge(judge, plain),
    }
    real_test = prompts.real_images("test")
    gen_feats = judge.features(plain.flatten(0, 1))
    kid_gen = kid(gen_feats, judge.features(real_test), subsets=50, subset_size=200,
                  generator=torch.Generator().manual_seed(config.seed))  # fmt: skip
    res["kid"] = {"mean": kid_gen[0], "std": kid_gen[1]}
    grids = []
    cols = min(config.grid_columns, n)
    show = prompts.grid_rows()
    path = plot_sample_grid(
        [prompts.texts[i] for i in show],
        plain[show, :cols].numpy(),
        out / "plots" / f"{name}_plain.png",
        title=f"{name}: plain samples",
    )
    grids.append((path, f"{name}: plain samples, one row per prompt"))
    if reranker is not None:
        best = _best_of(reranker, model, prompts.texts, n, config.best_of, config.seed)
        res["best_of"] = {"k": config.best_of, **prompts.judge(judge, best)}
        path = plot_sample_grid(
            [prompts.texts[i] for i in show],
            best[show, :cols].numpy(),
            out / "plots" / f"{name}_best_of_{config.best_of}.png",
            title=f"{name}: best of {config.best_of} by the reranker CLIP",
        )
        grids.append((path, f"{name}: each image the reranker's best of {config.best_of}"))
    if eval_clip is not None:
        own = torch.arange(plain.shape[0]).repeat_interleave(n)
        res["clip_eval"] = _clip_metrics(eval_clip, plain.flatten(0, 1), own, prompts)
    return res, grids


def run_genbench(
    config: GenBenchConfig, base_dir: Path, out: Path, log: Callable[[str], None] = print
) -> GenBenchResult:
    """Train the stages, judge every generator, write ``results.json``."""
    from modalforge.evaluation import kid
    from modalforge_generators.rerank import ClipReranker

    out.mkdir(parents=True, exist_ok=True)
    stages = train_stages(config, base_dir, out, log)
    log("training the judges (real data only)")
    judge, prompts = judge_prompts(config.judge.name, config.judge.params, cache_dir=out / "judges")
    train_real, test_real = prompts.real_images("train"), prompts.real_images("test")
    floor = kid(judge.features(train_real), judge.features(test_real), subsets=50,
                subset_size=200, generator=torch.Generator().manual_seed(config.seed))  # fmt: skip
    results: dict[str, Any] = {
        "name": config.name,
        "judge": {"name": config.judge.name, **prompts.judge_info(judge)},
        "kid_floor": {"mean": floor[0], "std": floor[1], "what": "real train vs real test"},
        "prompts": len(prompts.texts),
        "stages": {
            k: {"run_dir": str(v.run_dir), "train_seconds": v.train_seconds, "reused": v.reused}
            for k, v in stages.items()
        },
        "generators": {},
    }

    def clip(stage: str | None) -> ClipReranker | None:
        if stage is None:
            return None
        run = stages[stage]
        return ClipReranker(str(run.run_dir / "spec.yaml"), str(run.run_dir))

    reranker, eval_clip = clip(config.rerank), clip(config.eval_clip)
    if eval_clip is not None:  # the same measures on real test images: the reference
        results["clip_eval_real_test"] = _clip_metrics(
            eval_clip, test_real, prompts.real_index["test"], prompts
        )
    grids: dict[str, list[tuple[Path, str]]] = {}
    for name in config.generators:
        log(f"judging {name}")
        res, figs = evaluate_generator(
            name, stages[name], config, judge, prompts, reranker, eval_clip, out
        )
        # The unbiased KID of real vs real is centred on 0 (and often below it), so "×
        # floor" is no scale: the distance from the floor in units of the floor's spread is.
        res["kid"]["above_floor"] = res["kid"]["mean"] - floor[0]
        res["kid"]["floor_stds"] = res["kid"]["above_floor"] / floor[1] if floor[1] else None
        results["generators"][name] = res
        grids[name] = figs
    io.write_json(out / "results.json", results)
    return GenBenchResult(results, grids)
