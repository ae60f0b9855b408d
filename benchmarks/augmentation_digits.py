"""Train-time augmentation versus none: digits as a PNG image folder, a timm encoder, the same
held-out split, several seeds (``modalforge bench`` with an axis over ``data.transforms.train``).

Run: ``.venv/bin/python benchmarks/augmentation_digits.py --out runs/bench/augmentation``
(``--train-fraction 0.2`` for the low-data regime, where augmentation matters most). The
leaderboard (``leaderboard.md`` in ``--out``) gives mean ± std over seeds; it is printed too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from digits_folder import write_digits_folder  # noqa: E402

# The axis: no augmentation, small shifts (pad 3 px and crop back), and crops with rotations.
AUGMENTATIONS = [
    {},
    {"image": [{"name": "random_crop", "params": {"padding": 3}}]},
    {
        "image": [
            {"name": "random_resized_crop", "params": {"scale": [0.7, 1.0], "ratio": [0.9, 1.1]}},
            {"name": "rotation", "params": {"degrees": 12}},
        ]
    },
]


def grid(root: Path, train_fraction: float, epochs: int, seeds: list[int]) -> dict:
    base = {
        "name": "digits-folder",
        "data": {
            "dataset": {
                "name": "image_folder",
                "params": {"root": str(root), "mode": "L", "image_size": 32},
            },
            "split": {
                "fractions": {"train": train_fraction, "test": 1 - train_fraction},
                "seed": 0,  # the same held-out split for every run
                "group": "file",
                "group_pattern": r"^(w\d+)_",
            },
            "batch_size": 64,
        },
        "model": {
            "encoders": {"image": {"name": "timm", "params": {"model_name": "resnet10t"}}},
            "head": {"name": "classification", "params": {"dropout": 0.1}},
        },
        "loss": "cross_entropy",
        "metrics": ["accuracy", "macro_f1"],
        "train": {
            "epochs": epochs,
            "lr": 0.003,
            "warmup_steps": 20,
            "tensorboard": False,
            "eval_every_epochs": epochs,
            "checkpoint_every_epochs": epochs,
        },
    }
    return {
        "name": f"augmentation-train{train_fraction:g}",
        "base": base,
        "axes": {"data.transforms.train": AUGMENTATIONS},
        "seeds": seeds,
        "rank_by": "accuracy",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="bench output folder (rerun to resume)")
    parser.add_argument("--data", default="runs/data/digits_png64", help="image folder to write")
    parser.add_argument("--train-fraction", type=float, default=0.8)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()

    from modalforge_apps.bench import load_grid, run_bench, write_outputs

    root = write_digits_folder(args.data).resolve()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "grid.yaml"
    path.write_text(yaml.safe_dump(grid(root, args.train_fraction, args.epochs, args.seeds)))
    loaded = load_grid(path)
    run_bench(loaded, out)
    write_outputs(loaded, out)
    print((out / "leaderboard.md").read_text())


if __name__ == "__main__":
    main()
