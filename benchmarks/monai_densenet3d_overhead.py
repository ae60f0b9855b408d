"""Framework overhead of a DenseNet121-3D training step: modalforge versus a MONAI-tutorial loop.

The framework side is a spec built in code: a ``volume3d`` modality from the in-memory
``synthetic`` reader (``volume_size``), the ``monai_net`` encoder (``densenet121``), a linear
classification head, cross-entropy and Adam, trained by the real engine (``Trainer.fit``). The
hand-written side follows MONAI's 3-D classification tutorial
(``3d_classification/densenet_training_array``): ``monai.networks.nets.DenseNet121(spatial_dims=3,
in_channels=1, out_channels=C)``, a ``DataLoader`` over the same tensors (batch, shuffle),
``torch.optim.Adam``, ``torch.nn.CrossEntropyLoss`` and ``loss.item()`` every step. Both run the
same network (DenseNet121's classifier is the same 1024 → C linear layer as the head), data,
optimizer and learning rate, on the same device and threads.

Each side is clocked after every optimizer step (the framework through a run callback's
``after_step``, the loop inline), so a step's time is the interval between two consecutive clock
readings: loading the batch, forward, backward, the update and everything the engine does per
step (epoch boundaries included). Start-up and the final checkpoint fall outside. Sides alternate
for ``--rounds`` rounds, so a slow spell of a shared machine hits both; the first ``--warmup``
intervals of each round are dropped. The ratio is given for the median step (robust to the
spells of a shared 2-core machine) and for the mean step (which also charges the rare slow
steps, e.g. epoch boundaries).

Run: ``.venv/bin/python benchmarks/monai_densenet3d_overhead.py [--volume 32] [--batch 4]
[--steps 24] [--rounds 5] [--threads N] [--device cuda]``
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import torch

from modalforge.contracts import Callback
from modalforge.engine import Trainer, seed_everything
from modalforge.pipeline import build_pipeline
from modalforge.plugin import get_host, set_host
from modalforge.spec import parse_spec
from modalforge_datasets.synthetic import SyntheticDataset


def arguments() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--volume", type=int, default=32, help="volume edge (voxels), ≥ 32")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--samples", type=int, default=32, help="training-set size")
    ap.add_argument("--classes", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-5, help="the tutorial's Adam rate")
    ap.add_argument("--steps", type=int, default=24, help="steps per side and round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2, help="intervals dropped at each round start")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (both sides)")
    return ap.parse_args()


def dataset_params(args: argparse.Namespace) -> dict:
    return {
        "num_samples": args.samples,
        "num_classes": args.classes,
        "image2d_size": None,
        "volume_size": args.volume,
        "test_fraction": 0.25,
        "seed": 0,
    }


def build_spec(args: argparse.Namespace):  # noqa: ANN201
    train = {
        "epochs": 100000,
        "optimizer": {"name": "adam"},
        "scheduler": {"name": "constant"},
        "lr": args.lr,
        "weight_decay": 0.0,
        "device": args.device,
        "progress": False,
        "tensorboard": False,
        "log_every_steps": 100000,
        "checkpoint_every_epochs": 100000,
    }
    if args.threads is not None:
        train["num_threads"] = args.threads
    return parse_spec(
        {
            "name": "monai-densenet3d-overhead",
            "seed": 0,
            "data": {
                "dataset": {"name": "synthetic", "params": dataset_params(args)},
                "train_split": "train",
                "eval_split": None,
                "batch_size": args.batch,
                "num_workers": 0,
            },
            "model": {
                "encoders": {"volume": {"name": "monai_net", "params": {"network": "densenet121"}}},
                "head": {"name": "classification", "params": {"hidden_dims": []}},
            },
            "loss": "cross_entropy",
            "metrics": [],
            "train": train,
        }
    )


class StepClock(Callback):
    """Reads the clock after every optimizer step of a run."""

    def __init__(self) -> None:
        self.stamps: list[float] = []

    def after_step(self, run, step: int) -> None:  # noqa: ANN001
        self.stamps.append(time.perf_counter())


def intervals(stamps: list[float], warmup: int) -> list[float]:
    return [b - a for a, b in zip(stamps, stamps[1:], strict=False)][warmup:]


def framework(spec, args: argparse.Namespace) -> list[float]:  # noqa: ANN001
    """Step intervals of ``Trainer.fit``, clocked by a run plugin (as an installed plugin is)."""
    spec = spec.model_copy(
        update={"train": spec.train.model_copy(update={"max_steps": args.steps})}
    )
    clock, host = StepClock(), get_host()
    set_host(dataclasses.replace(host, plugins={**host.plugins, "step_clock": clock}))
    try:
        seed_everything(spec.seed)
        pipeline = build_pipeline(spec)
        with tempfile.TemporaryDirectory() as out:
            Trainer(pipeline, Path(out)).fit()
    finally:
        set_host(host)
    return intervals(clock.stamps, args.warmup)


def handwritten(args: argparse.Namespace) -> list[float]:
    """Step intervals of MONAI's tutorial loop, over the synthetic reader's training tensors."""
    from monai.networks.nets import DenseNet121

    seed_everything(0)
    data = SyntheticDataset(**dataset_params(args)).load("train").tensors
    train_ds = torch.utils.data.TensorDataset(data["volume"], data["target"])
    train_loader = torch.utils.data.DataLoader(
        train_ds, batch_size=args.batch, shuffle=True, num_workers=0
    )
    device = torch.device(args.device)
    model = DenseNet121(spatial_dims=3, in_channels=1, out_channels=args.classes).to(device)
    loss_function = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), args.lr)
    model.train()
    stamps: list[float] = []
    while len(stamps) < args.steps:
        for inputs, labels in train_loader:
            inputs, labels = inputs.to(device), labels.to(device)
            optimizer.zero_grad()
            outputs = model(inputs)
            loss = loss_function(outputs, labels)
            loss.backward()
            optimizer.step()
            loss.item()  # the tutorial adds it to epoch_loss every step
            stamps.append(time.perf_counter())
            if len(stamps) == args.steps:
                break
    return intervals(stamps, args.warmup)


def main() -> None:
    args = arguments()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.steps - 1 <= args.warmup:
        raise SystemExit("--steps must exceed --warmup + 1")
    spec = build_spec(args)
    sides = {"framework": lambda: framework(spec, args), "hand-written": lambda: handwritten(args)}
    steps: dict[str, list[float]] = {name: [] for name in sides}
    round_ratio = []
    for _ in range(args.rounds):
        this = {name: run() for name, run in sides.items()}
        for name, values in this.items():
            steps[name].extend(values)
        round_ratio.append(
            statistics.median(this["framework"]) / statistics.median(this["hand-written"])
        )
    med = {k: statistics.median(v) for k, v in steps.items()}
    mean = {k: statistics.fmean(v) for k, v in steps.items()}
    v = args.volume
    print(
        f"DenseNet121-3D, volume 1×{v}×{v}×{v}, batch {args.batch}, {args.device}, torch threads "
        f"{torch.get_num_threads()}, {args.rounds} rounds × {args.steps} steps per side "
        f"(first {args.warmup} intervals of each round dropped)"
    )
    for name, values in steps.items():
        q1, _, q3 = statistics.quantiles(values, n=4)
        print(
            f"  {name:<13} median {med[name] * 1e3:8.2f} ms/step (quartiles {q1 * 1e3:.2f}–"
            f"{q3 * 1e3:.2f}), mean {mean[name] * 1e3:8.2f}, {len(values)} steps"
        )
    print(
        f"  overhead ratio framework / hand-written: {med['framework'] / med['hand-written']:.3f}"
        f" (median step), {mean['framework'] / mean['hand-written']:.3f} (mean step); "
        f"per round (median step): {', '.join(f'{r:.3f}' for r in round_ratio)}"
    )


if __name__ == "__main__":
    main()
