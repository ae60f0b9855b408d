"""``modalforge zeroshot``: classify a split's images by class-name prompts, per-class table.

A multi-label target (findings), or ``--prompts FILE``, switches to prompt pairs per finding
(:mod:`modalforge_apps.cli.zeroshot_pairs`).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from modalforge.errors import DataError, ModalforgeError
from modalforge.evaluation import (
    DEFAULT_TEMPLATES,
    build_zeroshot_classifier,
    per_class_accuracy,
    text_encoder,
    topk_accuracy,
    validate_prompts,
    zeroshot_logits,
)
from modalforge_apps.cli.inference import (
    check_split,
    class_names_of,
    embed_split,
    image_text_modalities,
    load_model,
    require_tokenizer,
)

TOP_K = 5


def read_templates(path: str) -> list[str]:
    """One template per line (with ``{}`` for the class name); blank lines and ``#`` skipped."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ModalforgeError(
            f"cannot read --templates {path}: {exc}", hint="pass a UTF-8 text file"
        ) from None
    templates = [s.strip() for s in lines if s.strip() and not s.strip().startswith("#")]
    if not templates:
        raise ModalforgeError(
            f"--templates {path} has no templates",
            hint="write one prompt per line with {} where the class name goes",
        )
    return templates


def dataset_templates(dataset: object) -> list:
    """The data set's own prompt templates (a ``templates`` attribute, property or method)."""
    templates = getattr(dataset, "templates", None)
    if callable(templates):
        templates = templates()
    return list(templates or [])


def parse_classes(text: str) -> list[str]:
    names = [c.strip() for c in text.split(",")]
    if not all(names):
        raise ModalforgeError(
            f"--classes {text!r} has an empty class name", hint="separate names by single commas"
        )
    return names


def cmd_zeroshot(args: argparse.Namespace) -> int:
    if args.output:
        from modalforge import io

        io.check_output_file(args.output, "--output")  # before the model is loaded
    if args.prompts and (args.classes or args.templates):
        from modalforge_apps.cli.zeroshot_pairs import refuse_class_options

        refuse_class_options(args)
    loaded = load_model(args)
    split = check_split(loaded, args.split)
    image, text = image_text_modalities(loaded, args.image_modality, args.text_modality, "zeroshot")
    require_tokenizer(loaded, text, "zeroshot")
    target = loaded.pipeline.dataset.target
    if target is None:
        raise DataError(
            "the data set has no labels to score zero-shot predictions against",
            hint="use a data set with a class target",
        )
    from modalforge_apps.cli import zeroshot_pairs

    if zeroshot_pairs.pair_mode(args, target):
        return zeroshot_pairs.cmd_zeroshot_pairs(args, loaded, split, image, text)
    if args.subset:
        raise ModalforgeError(
            "--subset splits the prompt-pair table (a multi-label target, or --prompts FILE)",
            hint="drop --subset for class-name zero-shot",
        )
    names = parse_classes(args.classes) if args.classes else list(class_names_of(loaded))
    if not names:
        raise DataError(
            "the data set's target has no class names",
            hint="name the classes in label order with --classes a,b,c",
        )
    if len(names) != target.num_outputs:
        raise ModalforgeError(
            f"--classes gives {len(names)} names, the data set has {target.num_outputs} classes",
            hint="give one name per class, in label order",
        )
    if args.templates:
        templates, source = read_templates(args.templates), args.templates
    else:
        own = dataset_templates(loaded.pipeline.dataset)
        templates, source = (own, "data set") if own else (list(DEFAULT_TEMPLATES), "default")
    try:
        validate_prompts(names, templates)
    except ValueError as exc:
        where = "--classes / --templates" if args.classes or args.templates else "the data set"
        raise ModalforgeError(f"{where}: {exc}") from None

    data = embed_split(loaded, split, [image])
    if data.labels is None:
        raise DataError(f"split {split!r} has no labels", hint="use a labelled split")
    with torch.no_grad():
        classifier = build_zeroshot_classifier(
            text_encoder(loaded.model, text), names, templates, batch_size=args.batch_size
        )
    logits = zeroshot_logits(data.embeds[image], classifier.cpu())
    labels = data.labels.reshape(-1).long()
    acc = topk_accuracy(logits, labels, ks=(1, TOP_K))
    table = per_class_accuracy(logits, labels)
    report = {
        "split": split,
        "checkpoint": str(loaded.checkpoint),
        "num_samples": len(labels),
        "num_templates": len(templates),
        "templates": [str(t) for t in templates],
        "zeroshot_top1": acc[1],
        f"zeroshot_top{TOP_K}": acc[TOP_K],
        "per_class": [
            {"class": name, "count": n, "top1": None if math.isnan(a) else a}
            for name, (n, a) in zip(names, table, strict=True)
        ],
    }
    if args.output:
        from modalforge import io

        io.write_json(args.output, report)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"zero-shot on split {split!r}: {len(labels)} images, {len(names)} classes, "
        f"{len(templates)} templates ({source})"
    )
    print(f"  top-1  {acc[1]:.4f}\n  top-{TOP_K}  {acc[TOP_K]:.4f}")
    width = max(len("class"), *(len(n) for n in names))
    print(f"\n  {'class':<{width}}  {'n':>6}  top-1")
    for name, (n, a) in zip(names, table, strict=True):
        shown = "   -" if math.isnan(a) else f"{a:.4f}"
        print(f"  {name:<{width}}  {n:>6}  {shown}")
    if args.output:
        print(f"\nwrote {args.output}")
    return 0
