"""``modalforge zeroshot`` in prompt-pair mode: multi-label findings, CheXzero style.

Each finding has positive and negative prompts (``--prompts FILE``, else the data set's own
``prompts``); an image's probability of the finding is the softmax of its similarities to the two
sides (:mod:`modalforge.evaluation.prompt_pairs`, as the ``zeroshot_findings`` metric does). The
table is the clinical one (:func:`modalforge_metrics.clinical.clinical_report`): ROC-AUC, average
precision, sensitivity and specificity at a threshold, sensitivity at 90% specificity, each with a
bootstrap confidence interval, per finding and macro.
"""

from __future__ import annotations

import argparse
import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from modalforge.contracts import Target, TargetKind
from modalforge.errors import DataError, ModalforgeError
from modalforge.evaluation import (
    build_prompt_pair_classifier,
    prompt_pair_scores,
    text_encoder,
    validate_prompt_pairs,
)
from modalforge.evaluation.prompt_pairs import SIDES
from modalforge_apps.cli.inference import Loaded, embed_split

#: the clinical statistics reported, in table order, with their column titles
STATS = {
    "auc": "ROC-AUC",
    "ap": "AP",
    "sensitivity": "sens",
    "specificity": "spec",
    "sens_at_spec90": "sens@spec90",
}
REPORT = ("auc", "ap", "sens_spec", "sens_at_spec")
CI_LEVEL = 0.95
MAX_SUBSETS = 20
PROMPTS_HINT = (
    "write one entry per finding: FINDING: {positive: [TEXT, ...], negative: [TEXT, ...]}"
)


def pair_mode(args: argparse.Namespace, target: Target) -> bool:
    """Prompt pairs when the target is multi-label or the user gives ``--prompts``."""
    return bool(args.prompts) or target.kind == TargetKind.MULTILABEL


def read_prompt_pairs(path: str, findings: list[str]) -> dict[str, dict[str, list[str]]]:
    """``--prompts FILE`` (YAML, or JSON by its ``.json`` suffix), checked against ``findings``."""
    from modalforge.spec.safe_yaml import parse_yaml

    source = f"--prompts {path}"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModalforgeError(
            f"cannot read {source}: {exc}", hint="pass a UTF-8 YAML or JSON file"
        ) from None
    if Path(path).suffix.lower() == ".json":
        try:
            prompts = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModalforgeError(
                f"{source}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
                hint="fix the JSON syntax, or write the file as YAML",
            ) from None
    else:
        prompts = parse_yaml(text, source)
    return check_prompt_pairs(prompts, findings, source)


def dataset_prompt_pairs(dataset: object, findings: list[str]) -> dict[str, dict[str, list[str]]]:
    """The data set's own prompt pairs (a ``prompts`` attribute, property or method)."""
    prompts = getattr(dataset, "prompts", None)
    if callable(prompts):
        prompts = prompts()
    if not prompts:
        raise ModalforgeError(
            f"the data set ({type(dataset).__name__}) brings no prompt pairs for its findings "
            f"({', '.join(findings)})",
            hint=f"pass --prompts FILE (YAML or JSON); {PROMPTS_HINT}",
        )
    return check_prompt_pairs(prompts, findings, "the data set's prompts")


def check_prompt_pairs(
    prompts: Any,  # noqa: ANN401 - whatever the file held
    findings: list[str],
    source: str,
) -> dict[str, dict[str, list[str]]]:
    try:
        validate_prompt_pairs(prompts, findings)
    except ValueError as exc:
        raise ModalforgeError(
            f"{source}: {exc}", hint=f"{PROMPTS_HINT}, for each of: {', '.join(findings)}"
        ) from None
    return {name: {side: list(prompts[name][side]) for side in SIDES} for name in findings}


def refuse_class_options(args: argparse.Namespace) -> None:
    """``--classes`` / ``--templates`` belong to the class-name mode: an error in this one."""
    used = [o for o, v in (("--classes", args.classes), ("--templates", args.templates)) if v]
    if used:
        why = "--prompts is given" if args.prompts else "the data set's target is multi-label"
        raise ModalforgeError(
            f"{' and '.join(used)} name classes for single-label zero-shot, but {why}: "
            "each finding is scored by its own positive and negative prompts",
            hint=f"drop {' and '.join(used)}; pass --prompts FILE to set the prompts "
            f"({PROMPTS_HINT})",
        )


def check_options(args: argparse.Namespace, target: Target) -> None:
    """Options of the class-name mode and bad numbers are refused before any work is done."""
    refuse_class_options(args)
    if target.kind == TargetKind.REGRESSION:
        raise ModalforgeError(
            "--prompts needs a multi-label or multi-class target, and this data set's is "
            "regression",
            hint="use a data set with findings (a multi-label target)",
        )
    if not target.class_names:
        raise DataError(
            "the data set's target has no class names to match the prompts' findings against",
            hint="use a data set whose target names its findings",
        )
    if args.bootstrap < 0:
        raise ModalforgeError(
            f"--bootstrap must be 0 or more, got {args.bootstrap}", hint="e.g. --bootstrap 1000"
        )
    if not 0.0 < args.threshold < 1.0:
        raise ModalforgeError(
            f"--threshold must be between 0 and 1, got {args.threshold}", hint="e.g. 0.5"
        )
    if args.scale <= 0:
        raise ModalforgeError(f"--scale must be > 0, got {args.scale}", hint="e.g. 100")
    if args.batch_size < 1:
        raise ModalforgeError(f"--batch-size must be at least 1, got {args.batch_size}")


def finding_labels(labels: torch.Tensor, target: Target) -> np.ndarray:
    """``(N, C)`` 0/1: the multi-label target, or one-vs-rest columns of a class index."""
    if target.kind == TargetKind.MULTILABEL:
        return (labels.reshape(len(labels), -1).float() > 0.5).numpy().astype(np.int64)
    index = labels.reshape(-1).long()
    return np.eye(target.num_outputs, dtype=np.int64)[index.numpy()]


def cmd_zeroshot_pairs(
    args: argparse.Namespace, loaded: Loaded, split: str, image: str, text: str
) -> int:
    target = loaded.pipeline.dataset.target
    check_options(args, target)
    findings = list(target.class_names)
    if args.prompts:
        prompts, source = read_prompt_pairs(args.prompts, findings), args.prompts
    else:
        prompts, source = dataset_prompt_pairs(loaded.pipeline.dataset, findings), "data set"
    groups = subset_values(loaded, split, args.subset) if args.subset else None

    data = embed_split(loaded, split, [image])
    if data.labels is None:
        raise DataError(f"split {split!r} has no labels", hint="use a labelled split")
    y = finding_labels(data.labels, target)
    with torch.no_grad():
        classifier = build_prompt_pair_classifier(
            text_encoder(loaded.model, text), prompts, findings, batch_size=args.batch_size
        )
    scores = prompt_pair_scores(data.embeds[image], classifier.cpu(), args.scale)
    probs = torch.sigmoid(scores.double()).numpy()  # float64: fewer confident cases round to 1
    check_both_classes(y, findings, split)
    table = score(probs, y, findings, args, split)
    report: dict[str, Any] = {
        "mode": "prompt_pairs",
        "split": split,
        "checkpoint": str(loaded.checkpoint),
        "num_samples": len(y),
        "prompts_source": source,
        "prompts": prompts,
        "scale": args.scale,
        "threshold": args.threshold,
        "bootstrap": {
            "resamples": args.bootstrap,
            "used": int(table.get("bootstrap_used", 0)),
            "ci": CI_LEVEL,
            "seed": args.seed,
        },
        **macro_auc(table),
        "macro": {stat: interval(table, f"{stat}_macro") for stat in STATS},
        "findings": finding_rows(table, y, findings),
    }
    if groups is not None:
        report["subsets"] = subset_tables(probs, y, findings, args, split, groups)
    if args.output:
        from modalforge import io

        io.write_json(args.output, report)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"zero-shot findings on split {split!r}: {len(y)} images, {len(findings)} findings, "
        f"prompt pairs ({source}), threshold {args.threshold:g}, "
        + (
            f"{CI_LEVEL:.0%} CI from {args.bootstrap} bootstrap resamples"
            if args.bootstrap
            else "no bootstrap"
        )
    )
    print_table(report)
    for group in report.get("subsets", {}).get("groups", []):
        n = group["num_samples"]
        print(f"\n{args.subset} = {group['value']}: {n} image{'' if n == 1 else 's'}")
        if "error" in group:
            print(f"  not scored: {group['error']}")
        else:
            print_table(group)
    if args.output:
        print(f"\nwrote {args.output}")
    return 0


def check_both_classes(y: np.ndarray, findings: list[str], split: str) -> None:
    """A finding with only positives or only negatives has no ROC-AUC: an error, never NaN."""
    pos = y.sum(axis=0)
    bad = [i for i, p in enumerate(pos) if p in (0, len(y))]
    if bad:
        listed = "; ".join(
            f"{findings[i]!r}: {int(pos[i])} positive, {len(y) - int(pos[i])} negative" for i in bad
        )
        raise DataError(
            f"split {split!r} ({len(y)} image{'' if len(y) == 1 else 's'}) has one class only "
            f"for finding(s) {listed}; "
            "ROC-AUC, AP, sensitivity and specificity need positive and negative cases",
            hint="pass --split with a split where every finding is present and absent "
            "(more cases, or a stratified split)",
        )


def score(
    probs: np.ndarray,
    y: np.ndarray,
    findings: list[str],
    args: argparse.Namespace,
    split: str,
    on_single_class: str = "error",
) -> dict[str, float]:
    """The clinical table with bootstrap intervals (``clinical_report``'s flat keys)."""
    from modalforge_metrics.clinical import clinical_report

    try:
        return clinical_report(
            probs,
            y,
            task="multilabel",
            class_names=findings,
            report=REPORT,
            threshold=args.threshold,
            n_bootstrap=args.bootstrap,
            ci=CI_LEVEL,
            seed=args.seed,
            on_single_class=on_single_class,
            split=split,
        )
    except DataError as exc:
        raise DataError(
            exc.message,
            hint="score a split with more cases (--split), or pass --bootstrap 0 to leave out "
            "the intervals",
        ) from None


def interval(table: Mapping[str, float], key: str) -> dict[str, float | None] | None:
    """``{value, ci_low, ci_high}`` of one statistic (``None`` where it was left out)."""
    if key not in table:
        return None
    return {
        "value": table[key],
        "ci_low": table.get(f"{key}_ci_low"),
        "ci_high": table.get(f"{key}_ci_high"),
    }


def macro_auc(table: Mapping[str, float]) -> dict[str, float | None]:
    """The headline number under the ``zeroshot_findings`` metric's name."""
    auc = interval(table, "auc_macro") or {}
    return {
        "zeroshot_auc_macro": auc.get("value"),
        "zeroshot_auc_macro_ci_low": auc.get("ci_low"),
        "zeroshot_auc_macro_ci_high": auc.get("ci_high"),
    }


def finding_rows(
    table: Mapping[str, float], y: np.ndarray, findings: list[str]
) -> list[dict[str, Any]]:
    pos = y.sum(axis=0)
    return [
        {
            "finding": name,
            "positives": int(pos[c]),
            "negatives": len(y) - int(pos[c]),
            **{stat: interval(table, f"{stat}/{name}") for stat in STATS},
        }
        for c, name in enumerate(findings)
    ]


def subset_values(loaded: Loaded, split: str, column: str) -> list[str]:
    """Each sample's value (as text) of the data set's per-sample ``column`` (its metadata)."""
    columns = loaded.pipeline.dataset.metadata(split)
    if column not in columns:
        listed = ", ".join(sorted(columns)) if columns else "none: the data set names no columns"
        raise ModalforgeError(
            f"--subset {column!r}: the data set has no such per-sample column in split {split!r}",
            hint=f"use one of: {listed}",
        )
    values = [str(v) for v in columns[column]]
    distinct = len(set(values))
    if distinct > MAX_SUBSETS:
        raise ModalforgeError(
            f"--subset {column!r} has {distinct} distinct values, more than {MAX_SUBSETS}",
            hint="pick a categorical column (sex, site, scanner), not a continuous one",
        )
    return values


def subset_tables(
    probs: np.ndarray,
    y: np.ndarray,
    findings: list[str],
    args: argparse.Namespace,
    split: str,
    values: list[str],
) -> dict[str, Any]:
    """The table per value of ``--subset``; a finding with one class in a subset is left out of
    that subset's table (with a warning), a subset where none can be scored says why."""
    if len(values) != len(y):
        raise DataError(
            f"--subset {args.subset!r} has {len(values)} values for {len(y)} images in split "
            f"{split!r}",
            hint="the data set's metadata must give one value per sample",
        )
    groups = []
    array = np.asarray(values, dtype=object)
    for value in sorted(set(values)):
        keep = array == value
        group: dict[str, Any] = {"value": value, "num_samples": int(keep.sum())}
        where = f"{split}, {args.subset}={value}"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the rows below show what was left out
                table = score(probs[keep], y[keep], findings, args, where, "skip")
        except DataError as exc:
            group["error"] = exc.message
            group["findings"] = finding_rows({}, y[keep], findings)
        else:
            group.update(macro_auc(table))
            group["macro"] = {stat: interval(table, f"{stat}_macro") for stat in STATS}
            group["findings"] = finding_rows(table, y[keep], findings)
        groups.append(group)
    return {"column": args.subset, "groups": groups}


def _cell(value: dict[str, float | None] | None) -> str:
    if value is None:
        return "-"
    if value.get("ci_low") is None:
        return f"{value['value']:.3f}"
    return f"{value['value']:.3f} ({value['ci_low']:.2f}-{value['ci_high']:.2f})"


def print_table(report: Mapping[str, Any]) -> None:
    """One row per finding (positives, negatives, each statistic with its interval), macro."""
    rows = [
        [r["finding"], str(r["positives"]), str(r["negatives"]), *(_cell(r[s]) for s in STATS)]
        for r in report["findings"]
    ]
    rows.append(["macro", "", "", *(_cell(report["macro"][s]) for s in STATS)])
    header = ["finding", "pos", "neg", *STATS.values()]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print(f"  macro ROC-AUC  {_cell(report['macro']['auc'])}\n")
    for row in [header, *rows]:
        cells = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        print("  " + "  ".join(cells).rstrip())
