"""A model with its own training step (a GAN with two optimizers) through the engine."""

import pytest
import torch
from safetensors.torch import load_file

from modalforge.engine import load_checkpoint, train
from modalforge.errors import SpecError
from tests.core.engine.helpers import GAN_SECTIONS, Points, make_pipeline

GAN_TRAIN = {
    "epochs": 12,
    "lr": 0.01,
    "log_every_steps": 16,
    "keep_checkpoints": 10,
    "clip_grad_norm": 5.0,
}


def _center_distance(model) -> float:
    with torch.no_grad():
        mean = model.sample(None, 2000, generator=torch.Generator().manual_seed(0)).mean(0)
    return float((mean - torch.tensor(Points.CENTER)).norm())


def test_gan_learns_the_point_cloud_and_checkpoints_both_optimizers(tmp_path):
    pipeline = make_pipeline(GAN_TRAIN, **GAN_SECTIONS)
    start = _center_distance(pipeline.model)
    result = train(pipeline, tmp_path)
    assert result.steps == 12 * 8 and result.metrics == {}
    assert start > 1.5 and _center_distance(pipeline.model) < 0.5 * start

    opt_file = load_file(result.checkpoint / "optimizer.safetensors")
    assert any(k.startswith("generator.state.") for k in opt_file)
    assert any(k.startswith("discriminator.state.") for k in opt_file)

    fresh = make_pipeline(GAN_TRAIN, **GAN_SECTIONS, init_seed=4).model
    opts = fresh.configure_optimizers(0.01, 0.0)
    load_checkpoint(tmp_path, model=fresh, optimizers=opts)
    for name, opt in opts.items():
        sd = opt.state_dict()["state"]
        assert sd, f"{name} state not restored"
        for idx, st in sd.items():
            torch.testing.assert_close(st["exp_avg"], opt_file[f"{name}.state.{idx}.exp_avg"])
    for p, q in zip(pipeline.model.parameters(), fresh.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_gan_resume_equals_uninterrupted(tmp_path):
    cfg = {**GAN_TRAIN, "epochs": 3}
    full = make_pipeline(cfg, **GAN_SECTIONS)
    train(full, tmp_path / "full")
    resumed = make_pipeline(cfg, **GAN_SECTIONS, init_seed=11)
    train(resumed, tmp_path / "res", resume=tmp_path / "full" / "checkpoints" / "step_00000008")
    for p, q in zip(full.model.parameters(), resumed.model.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_custom_steps_do_not_accumulate(tmp_path):
    with pytest.raises(SpecError, match="train.grad_accum_steps"):
        train(make_pipeline({"grad_accum_steps": 2}, **GAN_SECTIONS), tmp_path)
