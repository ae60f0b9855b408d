"""Framework overhead of a DenseNet121-3D training step: modalforge versus a MONAI-tutorial loop.

The framework side is a spec built in code: a ``volume3d`` modality from the in-memory
``synthetic`` reader (``volume_size``), the ``monai_net`` encoder (``densenet121``), a linear
classification head, cross-entropy and Adam, trained by the real engine (``Trainer.fit``, see
``step_overhead.py``). The hand-written side follows MONAI's 3-D classification tutorial
(``3d_classification/densenet_training_array``): ``monai.networks.nets.DenseNet121(spatial_dims=3,
in_channels=1, out_channels=C)``, a ``DataLoader`` over the same tensors (batch, shuffle),
``torch.optim.Adam``, ``torch.nn.CrossEntropyLoss`` and ``loss.item()`` every step. Both run the
same network (DenseNet121's classifier is the same 1024 → C linear layer as the head), data,
optimizer and learning rate, on the same device and threads.

Fixed costs (building, the engine's final checkpoint) cancel out: per step is
``(T(n2) - T(n1)) / (n2 - n1)``. Sides alternate within each repeat, so a slow spell of a shared
machine hits both; the median (and best) of the repeats gives the ratio.

Run: ``.venv/bin/python benchmarks/monai_densenet3d_overhead.py [--volume 32] [--batch 4]
[--steps 2 8] [--repeats 3] [--threads N]``
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time

import torch
from step_overhead import framework, per_step_seconds

from modalforge.engine import seed_everything
from modalforge.spec import parse_spec
from modalforge_datasets.synthetic import SyntheticDataset


def arguments() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--volume", type=int, default=32, help="volume edge (voxels), ≥ 32")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--samples", type=int, default=32, help="training-set size")
    ap.add_argument("--classes", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-5, help="the tutorial's Adam rate")
    ap.add_argument("--steps", type=int, nargs=2, default=(2, 8), metavar=("N1", "N2"))
    ap.add_argument("--repeats", type=int, default=3)
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


def handwritten(args: argparse.Namespace, steps: int) -> float:
    """MONAI's tutorial loop, over the synthetic reader's training tensors."""
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
    start = time.perf_counter()
    step = 0
    while step < steps:
        for inputs, labels in train_loader:
            inputs, labels = inputs.to(device), labels.to(device)
            optimizer.zero_grad()
            outputs = model(inputs)
            loss = loss_function(outputs, labels)
            loss.backward()
            optimizer.step()
            loss.item()  # the tutorial adds it to epoch_loss every step
            step += 1
            if step == steps:
                break
    return time.perf_counter() - start


def main() -> None:
    args = arguments()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    spec = build_spec(args)
    sides = {
        "framework": functools.partial(framework, spec),
        "hand-written": functools.partial(handwritten, args),
    }
    n1, n2 = args.steps
    per_step = per_step_seconds(sides, (n1, n2), args.repeats)
    med = {k: statistics.median(v) for k, v in per_step.items()}
    best = {k: min(v) for k, v in per_step.items()}
    v = args.volume
    print(
        f"DenseNet121-3D, volume 1×{v}×{v}×{v}, batch {args.batch}, {args.device}, torch threads "
        f"{torch.get_num_threads()}, steps {n1}->{n2}, {args.repeats} repeats"
    )
    for name, values in per_step.items():
        runs = ", ".join(f"{x * 1e3:.1f}" for x in values)
        print(
            f"  {name:<13} median {med[name] * 1e3:8.1f} ms/step, best {best[name] * 1e3:8.1f}"
            f" (runs: {runs})"
        )
    ratio = med["framework"] / med["hand-written"]
    print(
        f"  overhead ratio framework / hand-written: {ratio:.3f} (median), "
        f"{best['framework'] / best['hand-written']:.3f} (best)"
    )


if __name__ == "__main__":
    main()
