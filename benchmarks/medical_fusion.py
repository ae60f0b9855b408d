"""Image + clinical fusion against each modality alone, with bootstrap 95% intervals.

Trains the ``medical_ct_fusion`` recipe (or reads a finished run, ``--run``) and, from the same
recipe, a CT-only and a clinical-only model (the other encoder, the fusion and the modality
dropout removed; same data, head, loss, schedule and seed). All three are scored on the held-out
split by the ``clinical`` metric (ROC-AUC with a 1,000-resample bootstrap interval, plus AP,
sensitivity / specificity, ECE). The fusion model is also evaluated with each modality withheld
(``evaluate(..., missing=[...])``), which is what its modality-dropout training is for.

Run: ``.venv/bin/python benchmarks/medical_fusion.py --out runs/medical [--run RUN]``
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

from modalforge.engine import evaluate, seed_everything, train
from modalforge.pipeline import build_pipeline
from modalforge.plugin import get_registry
from modalforge.spec import parse_spec
from modalforge.spec.loader import read_yaml
from modalforge_apps.recipes import recipe_path

RECIPE = "medical_ct_fusion"
PARTS = {"ct": "image", "clinical": "clinical"}


def single_modality(data: dict, keep: str) -> dict:
    """The recipe with only ``keep``'s encoder (and data part): no fusion, no dropout."""
    spec = copy.deepcopy(data)
    spec["name"] = f"{data['name']}-{keep}-only"
    spec["data"]["dataset"]["params"]["parts"] = [PARTS[keep]]
    model = spec["model"]
    model["encoders"] = {keep: model["encoders"][keep]}
    model.pop("fusion", None)
    model.pop("modality_dropout", None)
    return spec


def fit(data: dict, out: Path) -> tuple[object, float]:
    spec = parse_spec(copy.deepcopy(data))
    seed_everything(spec.seed)
    pipeline = build_pipeline(spec, get_registry())
    start = time.perf_counter()
    train(pipeline, out)
    return pipeline, time.perf_counter() - start


def auc_row(metrics: dict) -> str:
    return (
        f"ROC-AUC {metrics['auc']:.3f} [{metrics['auc_ci_low']:.3f}, {metrics['auc_ci_high']:.3f}]"
        f"  AP {metrics['ap']:.3f}  sens {metrics['sensitivity']:.3f}"
        f"  spec {metrics['specificity']:.3f}  ECE {metrics['ece']:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the runs")
    parser.add_argument("--run", type=Path, help="a finished medical_ct_fusion run to reuse")
    args = parser.parse_args()
    recipe = read_yaml(recipe_path(RECIPE))
    rows: dict[str, dict] = {}
    if args.run is None:
        args.run = args.out / RECIPE
        _, seconds = fit(recipe, args.run)
        print(f"trained {RECIPE} in {seconds / 60:.2f} min")
    fusion = build_pipeline(parse_spec(copy.deepcopy(recipe)), get_registry())
    for label, missing in (("fusion", []), ("fusion, CT missing", ["ct"])):
        rows[label] = evaluate(fusion, args.run, missing=missing)
    rows["fusion, clinical missing"] = evaluate(fusion, args.run, missing=["clinical"])

    for keep in ("ct", "clinical"):
        out = args.out / f"{RECIPE}_{keep}_only"
        pipeline, seconds = fit(single_modality(recipe, keep), out)
        print(f"trained {keep}-only in {seconds / 60:.2f} min")
        rows[f"{keep} only"] = evaluate(pipeline, out)
    width = max(map(len, rows))
    for label, metrics in rows.items():
        print(f"  {label:<{width}}  {auc_row(metrics)}")
    best_single = max(rows["ct only"]["auc"], rows["clinical only"]["auc"])
    gain = rows["fusion"]["auc"] - best_single
    print(f"fusion − best single modality: {gain:+.3f} ROC-AUC")
    (args.out / "fusion_benchmark.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
