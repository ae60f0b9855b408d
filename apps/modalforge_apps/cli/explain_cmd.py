"""``modalforge explain``: saliency maps of a trained classifier's predictions, as PNGs and a page.

Output folder (each file written atomically; rerunning replaces the same names)::

    <out>/sample_<N>_<method>.png   2-D: input and overlay; 3-D: slice grid with overlay
    <out>/report.html               per sample: prediction, probability, label, method, figure
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from modalforge.contracts import TARGET_KEY, TargetKind
from modalforge.errors import DataError, ModalforgeError
from modalforge_apps.cli.inference import check_split, indexable, load_model, run_folder

REPORT_FILE = "report.html"


def cmd_explain(args: argparse.Namespace) -> int:
    import html

    from modalforge import io
    from modalforge.engine.data import collate_samples
    from modalforge.engine.runtime import move_to_device
    from modalforge.evaluation.saliency import (
        class_index,
        classifier_parts,
        explain,
        pick_modality,
    )
    from modalforge_apps.report import SaliencyFigure, page_html, plot_explanation, saliency_section

    out = Path(args.out) if args.out else _default_out(Path(args.checkpoint))
    io.check_output_dir(out, "--out")
    loaded = load_model(args)
    target = loaded.pipeline.dataset.target
    classifier_parts(loaded.model, target.kind if target is not None else None)
    names = tuple(target.class_names) or tuple(str(i) for i in range(target.num_outputs))
    modality = pick_modality(loaded.model, loaded.pipeline.modalities, args.modality)
    explained = None if args.class_name is None else class_index(names, args.class_name)
    split = check_split(loaded, args.split)
    data = indexable(loaded.pipeline.load(split), split)
    for n in args.samples:
        if not 0 <= n < len(data):
            raise ModalforgeError(
                f"--sample {n} is out of range: split {split!r} has {len(data)} samples",
                hint=f"use an index from 0 to {len(data) - 1}",
            )
    out.mkdir(parents=True, exist_ok=True)
    figures = []
    for n in args.samples:
        sample = data[n]
        if sample is None:
            raise DataError(
                f"sample {n} of split {split!r} could not be read (the reader skipped it)"
            )
        batch = move_to_device(collate_samples([sample], loaded.pipeline.collates), loaded.device)
        result = explain(
            loaded.model,
            batch,
            target_kind=target.kind,
            modality=modality,
            method=args.method,
            class_index=explained,
            layer=args.layer,
            mask_size=args.mask_size,
        )
        label = _label(sample.get(TARGET_KEY), target.kind, names)
        png = out / f"sample_{n}_{args.method}.png"
        predicted, k = names[result.predicted], names[result.class_index]
        title = (
            f"sample {n} · predicted {predicted} · p({k}) = {result.probability:.3f} · "
            f"label {label} · {args.method}"
        )
        plot_explanation(result, png, title)
        figures.append(
            SaliencyFigure(
                png,
                str(n),
                predicted,
                result.probability,
                k,
                label,
                args.method,
                modality,
                result.layer,
            )
        )
        print(
            f"sample {n}: predicted {predicted}, p({k}) = {result.probability:.3f}, "
            f"label {label} → {png}"
        )
    intro = (
        f"<p>Spec <code>{html.escape(loaded.spec.name)}</code>, checkpoint "
        f"<code>{html.escape(str(loaded.checkpoint))}</code>, split "
        f"<code>{html.escape(split)}</code>, modality <code>{html.escape(modality)}</code>.</p>"
    )
    page = page_html(f"Saliency: {loaded.spec.name}", intro + saliency_section(figures))
    io.write_text(out / REPORT_FILE, page)
    print(f"wrote {out / REPORT_FILE}")
    return 0


def _default_out(checkpoint: Path) -> Path:
    """``<run folder>/explain``."""
    return run_folder(checkpoint) / "explain"


def _label(value: Any, kind: TargetKind, names: tuple[str, ...]) -> str:
    """The sample's label as class names (multilabel: the positive findings)."""
    if value is None:
        return "unknown"
    if kind == TargetKind.MULTILABEL:
        positive = [names[i] for i, v in enumerate(value.reshape(-1).tolist()) if v >= 0.5]
        return ", ".join(positive) or "none"
    return names[int(value)]
