"""Decoding-bound loading: samples/s of the training loader of an image folder (PNG decoding +
augmentation + the encoder's preprocessing) with 0 and 2 (and more) loader workers, side by side.

Each setting makes full passes over the training split through the engine's own loader
(:class:`modalforge.engine.data.EpochLoader`); the settings alternate and repeat, and the best
pass of each gives the ratio. No model runs: this is the loader alone, as in a GPU run where the
accelerator waits for data.

Run: ``.venv/bin/python benchmarks/loader_workers.py [--workers 0 2] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from digits_folder import write_digits_folder  # noqa: E402

from modalforge.engine.data import EpochLoader  # noqa: E402
from modalforge.pipeline import build_pipeline  # noqa: E402
from modalforge.spec import parse_spec  # noqa: E402


def pipeline(root: Path, size: int):  # noqa: ANN201
    spec = {
        "name": "loader",
        "data": {
            "dataset": {"name": "image_folder", "params": {"root": str(root), "image_size": size}},
            "split": {"fractions": {"train": 0.8, "test": 0.2}},
            "transforms": {
                "train": {
                    "image": [
                        {"name": "random_resized_crop", "params": {"scale": [0.7, 1.0]}},
                        "horizontal_flip",
                    ]
                }
            },
        },
        "model": {
            "encoders": {"image": {"name": "timm", "params": {"model_name": "resnet10t"}}},
            "head": "classification",
        },
        "loss": "cross_entropy",
    }
    return build_pipeline(parse_spec(spec))


def one_pass(data, workers: int, batch_size: int) -> float:  # noqa: ANN001
    loader = EpochLoader(
        data,
        batch_size=batch_size,
        shuffle=True,
        seed=0,
        num_workers=workers,
        drop_last=False,
        pin_memory=False,
        field="data.train_split",
    )
    start = time.perf_counter()
    n = sum(len(batch["target"]) for batch in loader.epoch(0))
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="runs/data/digits_png64")
    parser.add_argument("--size", type=int, default=64, help="image size the encoder reads")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)  # the main process's share; workers run one thread each
    root = write_digits_folder(args.data).resolve()
    data = pipeline(root, args.size).load("train", train=True)
    rates: dict[int, list[float]] = {w: [] for w in args.workers}
    for _ in range(args.repeats):
        for w in args.workers:
            rates[w].append(one_pass(data, w, args.batch_size))
    base = max(rates[args.workers[0]])
    print(
        f"{len(data)} training images, {args.size} px, batch {args.batch_size}, "
        f"{args.repeats} alternating passes per setting (best shown)"
    )
    for w in args.workers:
        print(
            f"  workers={w}: {max(rates[w]):8.1f} samples/s (passes: "
            f"{', '.join(f'{r:.0f}' for r in rates[w])})  ×{max(rates[w]) / base:.2f}"
        )


if __name__ == "__main__":
    main()
