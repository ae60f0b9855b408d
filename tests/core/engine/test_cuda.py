"""GPU paths: fused AdamW, side-stream prefetch, bf16/fp16 autocast. Skipped without CUDA."""

import pytest
import torch

from modalforge.engine import Trainer, evaluate, train
from modalforge.engine.runtime import prefetch_to_device
from tests.core.engine.helpers import make_pipeline

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.parametrize("precision", ["bf16", "fp16", "fp32"])
def test_trains_on_cuda(tmp_path, precision):
    pipeline = make_pipeline({"epochs": 3, "device": "cuda", "precision": precision})
    trainer = Trainer(pipeline, tmp_path)
    assert trainer.optimizers == {}  # built in fit
    result = trainer.fit()
    assert trainer.optimizers["model"].defaults["fused"] is True
    assert (trainer.precision.scaler is not None) == (precision == "fp16")
    assert next(pipeline.model.parameters()).is_cuda
    assert result.metrics["accuracy"] >= 0.9
    cpu = make_pipeline({"device": "cpu"}, init_seed=3)  # a CUDA checkpoint loads on the CPU
    assert evaluate(cpu, tmp_path)["accuracy"] == pytest.approx(result.metrics["accuracy"])


def test_cuda_resume_equals_uninterrupted(tmp_path):
    cfg = {"epochs": 3, "device": "cuda", "precision": "bf16", "keep_checkpoints": 5}
    full = make_pipeline(cfg)
    train(full, tmp_path / "full")
    resumed = make_pipeline(cfg, init_seed=5)
    train(resumed, tmp_path / "res", resume=tmp_path / "full" / "checkpoints" / "step_00000008")
    for p, q in zip(full.model.parameters(), resumed.model.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_prefetch_yields_device_batches_in_order():
    batches = [{"x": torch.full((4,), float(i)).pin_memory(), "name": str(i)} for i in range(5)]
    out = list(prefetch_to_device(batches, torch.device("cuda")))
    assert [int(b["x"][0]) for b in out] == list(range(5))
    assert all(b["x"].is_cuda for b in out) and out[2]["name"] == "2"
