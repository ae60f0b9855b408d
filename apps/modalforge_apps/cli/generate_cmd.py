"""``modalforge generate SPEC --checkpoint CKPT PROMPT ... -n N [--rerank CLIP_SPEC ...] --out
grid.png``: sample a trained generator, optionally keep the best per prompt by a reranker.

Writes the grid (one row per prompt) and, beside it, ``<out>.json`` with the prompts, settings
and every candidate's score, atomically.
"""

from __future__ import annotations

import argparse
import inspect
from pathlib import Path
from typing import Any

import torch

from modalforge import io
from modalforge.errors import ModalforgeError, SpecError
from modalforge.modality import ModalityKind

MAX_PROMPT_CHARS = 1000


def check_prompts(prompts: list[str]) -> list[str]:
    """Prompts stripped; an empty or absurdly long one is a user error naming it."""
    if not prompts:
        raise ModalforgeError("no prompt given", hint='add one, e.g. "a handwritten seven"')
    out = []
    for i, prompt in enumerate(prompts, 1):
        text = prompt.strip()
        if not text:
            raise ModalforgeError(
                f"prompt {i} is empty", hint="describe the image to generate in a few words"
            )
        if len(text) > MAX_PROMPT_CHARS:
            raise ModalforgeError(
                f"prompt {i} has {len(text)} characters (at most {MAX_PROMPT_CHARS})",
                hint="shorten it; the text model reads only its first tokens anyway",
            )
        out.append(text)
    return out


def sampling_kwargs(model: Any, args: argparse.Namespace) -> dict[str, Any]:
    """``--temperature/--top-k/--top-p/--guidance-scale/--steps/--eta`` for generators whose
    ``sample`` takes them."""
    given = {
        "temperature": args.temperature,
        "top_k": args.top_k,
        "top_p": args.top_p,
        "guidance_scale": getattr(args, "guidance_scale", None),
        "steps": getattr(args, "steps", None),
        "eta": getattr(args, "eta", None),
    }
    accepted = inspect.signature(model.sample).parameters
    out = {}
    for name, value in given.items():
        if value is None:
            continue
        if name not in accepted:
            raise ModalforgeError(
                f"--{name.replace('_', '-')} does not apply to {type(model).__name__}, whose "
                "sampling has no such setting",
                hint="leave it out",
            )
        out[name] = value
    return out


def image_modality_shape(pipeline: Any) -> tuple[int, ...] | None:
    """Shape of the data set's (non-raw) image modality, the generator's output."""
    for mod in pipeline.dataset.modalities.values():
        if mod.kind == ModalityKind.IMAGE2D and not mod.is_raw:
            return tuple(mod.shape)
    return None


def load_reranker(args: argparse.Namespace) -> Any:
    from modalforge.plugin import get_registry

    if not args.rerank_checkpoint:
        raise ModalforgeError(
            "--rerank needs --rerank-checkpoint (the reranker's trained weights)",
            hint="pass the run folder of the CLIP trained with that spec",
        )
    info = get_registry().get("reranker", args.reranker, path="--reranker")
    return info.factory(spec=args.rerank, checkpoint=args.rerank_checkpoint)


def cmd_generate(args: argparse.Namespace) -> int:
    from modalforge.contracts import Generator
    from modalforge.pipeline import load_trained
    from modalforge_apps.report.plots import plot_sample_grid

    prompts = check_prompts(list(args.prompts))
    if args.n < 1:
        raise ModalforgeError(f"-n must be at least 1, got {args.n}", hint="e.g. -n 8")
    keep = args.keep if args.keep is not None else (min(4, args.n) if args.rerank else args.n)
    if not 1 <= keep <= args.n:
        raise ModalforgeError(
            f"--keep {keep} must be between 1 and -n {args.n}", hint=f"use --keep {min(4, args.n)}"
        )
    if args.keep is not None and not args.rerank and keep != args.n:
        raise ModalforgeError("--keep needs --rerank (which samples to keep)", hint="add --rerank")
    out = Path(args.out)
    io.check_output_file(out, "--out")  # a folder, or a parent that is a file: before sampling
    if out.suffix.lower() != ".png":
        raise ModalforgeError(f"--out {out} must name a .png file", hint="e.g. --out grid.png")
    record_file = out.with_suffix(".json")
    if record_file.is_dir():
        raise ModalforgeError(
            f"--out {out}: the sampling record goes to {record_file}, which is a folder",
            hint="choose another --out name, or remove that folder",
        )

    trained = load_trained(args.spec, args.checkpoint, list(args.overrides))
    model = trained.model
    if not isinstance(model, Generator):
        raise SpecError(
            "model.generator",
            f"{args.spec} builds a {type(model).__name__}, not a generator",
            hint="pass the spec of a generator pipeline (model.generator), e.g. digits_gan.yaml",
        )
    kwargs = sampling_kwargs(model, args)
    reranker = load_reranker(args) if args.rerank else None
    shape = image_modality_shape(trained.pipeline)
    if reranker is not None and shape is not None:
        reranker.check(shape)

    gen = torch.Generator(trained.device).manual_seed(args.seed)
    with torch.no_grad():
        samples = model.sample(prompts, args.n, generator=gen, **kwargs).float().cpu()
    record: dict[str, Any] = {
        "spec": str(args.spec),
        "checkpoint": str(trained.checkpoint),
        "prompts": prompts,
        "num_samples": args.n,
        "seed": args.seed,
        "sampling": kwargs,
    }
    scores = None
    shown = samples
    if reranker is not None:
        ranked = reranker.rerank(samples, prompts, keep)
        shown, scores = ranked.samples, ranked.scores
        record["rerank"] = {
            "reranker": args.reranker,
            "spec": str(args.rerank),
            "checkpoint": str(args.rerank_checkpoint),
            "keep": keep,
            "kept_indices": ranked.indices.tolist(),
            "kept_scores": ranked.scores.tolist(),
            "all_scores": ranked.all_scores.tolist(),
        }
    title = f"{type(model).__name__}: {args.n} samples per prompt" + (
        f", best {keep} by {args.reranker} reranking" if reranker is not None else ""
    )
    plot_sample_grid(prompts, shown.numpy(), out, scores=scores, title=title)
    io.write_json(record_file, record)
    print(f"wrote {out} ({len(prompts)} prompt(s) × {shown.shape[1]} image(s))")
    if scores is not None:
        for prompt, row in zip(prompts, scores.tolist(), strict=True):
            print(f"  {prompt!r}: scores " + ", ".join(f"{s:.3f}" for s in row))
    print(f"wrote {out.with_suffix('.json')}")
    return 0
