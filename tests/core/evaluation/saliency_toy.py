"""Tiny classifiers trained through the real engine on data whose class lives in a known region.

Class 1 ("lesion") images and volumes hold a bright block in one corner, class 0 ("clear") ones do
not; everything else is noise. A model that learned the task must look at that corner, so a
saliency map of a class-1 sample must be concentrated there. A second, tabular modality (pure
noise) makes the multimodal variant: it must stay fixed while the image is explained.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import yaml

CLASSES = ["clear", "lesion"]
BLOCK = 5  # side of the bright block, from index 0 on every spatial axis


def region(shape: tuple[int, ...]) -> torch.Tensor:
    """Boolean mask ``shape`` of the block that defines class 1."""
    mask = torch.zeros(shape, dtype=torch.bool)
    mask[tuple(slice(0, BLOCK) for _ in shape)] = True
    return mask


def write_data(path: Path, spatial: tuple[int, ...], n: int = 48, seed: int = 0) -> Path:
    """``path`` (.npz): ``image`` (n, 1, *spatial), ``labs`` (n, 3) noise, ``target`` (n,)."""
    rng = np.random.default_rng(seed)
    target = np.arange(n) % 2
    image = rng.normal(0.0, 0.3, (n, 1, *spatial)).astype(np.float32)
    for i in np.flatnonzero(target == 1):
        image[(i, 0, *[slice(0, BLOCK)] * len(spatial))] += 2.0
    labs = rng.normal(size=(n, 3)).astype(np.float32)
    np.savez(path, image=image, labs=labs, target=target.astype(np.int64))
    return path


def spec(
    data: Path,
    *,
    volume: bool = False,
    tabular: bool = False,
    epochs: int = 20,
    cnn: dict | None = None,
    regression: bool = False,
) -> dict:
    """A supervised spec: ``cnn`` on ``image`` (+ an ``mlp`` on ``labs`` with concat fusion)."""
    kinds = {"image": "volume3d" if volume else "image2d"}
    cnn = cnn or {"widths": [8, 16], "norm": "batch"}
    encoders = {"image": {"name": "cnn", "params": cnn}}
    if tabular:
        kinds["labs"] = "tabular"
        encoders["labs"] = {"name": "mlp", "params": {"hidden_dims": [8], "out_dim": 8}}
    model: dict = {"encoders": encoders, "head": "classification"}
    if tabular:
        model["fusion"] = "concat"
    target = {"class_names": CLASSES}
    if regression:
        target = {"target_kind": "regression"}
        model["head"] = "regression"
    content = {
        "name": "saliency-toy",
        "seed": 0,
        "data": {
            "dataset": {
                "name": "tensor_file",
                "params": {
                    "path": str(data),
                    "modality_kinds": kinds,
                    **target,
                    "test_fraction": 0.25,
                },
            },
            "batch_size": 12,
        },
        "model": model,
        "loss": "cross_entropy",
        "metrics": ["accuracy"],
        "train": {
            "epochs": epochs,
            "lr": 0.01,
            "device": "cpu",
            "progress": False,
            "tensorboard": False,
            "checkpoint_every_epochs": epochs,
            "eval_every_epochs": epochs,
            "log_every_steps": 100,
        },
    }
    if regression:
        content.update(loss="mse", metrics=[])
    return content


def write_spec(path: Path, content: dict) -> Path:
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    return path


def train_run(tmp: Path, *, volume: bool = False, tabular: bool = False) -> tuple[Path, Path]:
    """Train the toy through the real engine: (spec file, run folder)."""
    from modalforge.engine import seed_everything, train
    from modalforge.pipeline import build_pipeline
    from modalforge.plugin import get_registry
    from modalforge.spec import PipelineSpec

    spatial = (16, 16, 16) if volume else (16, 16)
    data = write_data(tmp / "data.npz", spatial)
    content = spec(data, volume=volume, tabular=tabular)
    seed_everything(0)
    pipeline = build_pipeline(PipelineSpec.model_validate(content), get_registry())
    result = train(pipeline, tmp / "run")
    assert result.metrics["accuracy"] == 1.0, result.metrics  # the task is learned
    return write_spec(tmp / "spec.yaml", content), tmp / "run"


def hand_set_run(tmp: Path, *, volume: bool = False, **spec_args) -> tuple[Path, Path]:
    """An untrained one-stage ``cnn`` (no norm) whose head votes ``lesion`` for any activation,
    saved as a real checkpoint: (spec file, run folder). Its Grad-CAM map of ``lesion`` is the
    channel sum of the ReLU'd conv output, so it is non-zero and non-uniform on noise."""
    from modalforge.engine import save_checkpoint
    from modalforge.pipeline import build_pipeline
    from modalforge.plugin import get_registry
    from modalforge.spec import PipelineSpec

    spatial = (16, 16, 16) if volume else (16, 16)
    data = write_data(tmp / "data.npz", spatial, n=16)
    cnn = {"widths": [4], "norm": "none"}
    content = spec(data, volume=volume, cnn=cnn, **spec_args)
    torch.manual_seed(0)
    pipeline = build_pipeline(PipelineSpec.model_validate(content), get_registry())
    model = pipeline.model
    if content["loss"] == "cross_entropy":
        linear = model.head.net[-1]
        with torch.no_grad():
            linear.weight.zero_()  # the image's 4 channels come first in a concat fusion
            linear.weight[:, :4] = torch.tensor([[-1.0] * 4, [1.0] * 4])
            linear.bias.zero_()
    save_checkpoint(tmp / "run", model=model, step=0, epoch=0, spec_name=content["name"])
    return write_spec(tmp / "spec.yaml", content), tmp / "run"
