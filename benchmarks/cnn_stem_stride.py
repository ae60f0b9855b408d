"""CPU cost of the ``cnn`` encoder's first stage on volumes: ``stem_stride`` 1 versus 2.

A training step (forward, backward, AdamW) of the ``cnn`` encoder as the ``medical_ct_clip``
recipe builds it (widths 16-32-64-96, ``pool_grid: 2``), on a batch of ``32³`` volumes, once with
the full-resolution first stage and once with a strided one. The two alternate within each
repeat, so a slow spell of a shared machine hits both; the median and the best of the repeats
give the ratio.

Run: ``.venv/bin/python benchmarks/cnn_stem_stride.py [--volume 32] [--batch 64] [--repeats 5]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from modalforge.modality import Modality
from modalforge_encoders import CNNEncoder


def arguments() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--volume", type=int, default=32, help="volume edge (voxels)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64, 96])
    ap.add_argument("--steps", type=int, default=4, help="timed steps per repeat and side")
    ap.add_argument("--repeats", type=int, default=5)
    return ap.parse_args()


def step_seconds(encoder: CNNEncoder, x: torch.Tensor, steps: int) -> float:
    """Mean seconds of a forward + backward + AdamW step, after one untimed warm-up step."""
    opt = torch.optim.AdamW(encoder.parameters(), lr=1e-3)

    def step() -> None:
        encoder(x).square().mean().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    args = arguments()
    torch.manual_seed(0)
    modality = Modality("ct", "volume3d", (1,) + (args.volume,) * 3)
    x = torch.rand(args.batch, 1, *(args.volume,) * 3)
    encoders = {
        stride: CNNEncoder(modality, widths=args.widths, pool_grid=2, stem_stride=stride).train()
        for stride in (1, 2)
    }
    times: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(args.repeats):
        for stride, encoder in encoders.items():
            times[stride].append(step_seconds(encoder, x, args.steps))
    print(
        f"cnn {args.widths} on {args.batch} × {args.volume}³ volumes, {torch.get_num_threads()} "
        f"threads, {args.repeats} repeats × {args.steps} steps"
    )
    for stride, ts in times.items():
        print(
            f"  stem_stride {stride}: median {statistics.median(ts) * 1e3:8.1f} ms/step, "
            f"best {min(ts) * 1e3:8.1f}"
        )
    ratios = [a / b for a, b in zip(times[1], times[2], strict=True)]
    print(
        f"  stride-1 / stride-2 step time: median {statistics.median(ratios):.2f}×, "
        f"best-of {min(times[1]) / min(times[2]):.2f}×"
    )


if __name__ == "__main__":
    main()
