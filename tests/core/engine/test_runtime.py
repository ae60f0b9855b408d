import random

import numpy as np
import pytest
import torch

from modalforge.engine.runtime import (
    Precision,
    capture_rng_state,
    move_to_device,
    restore_rng_state,
    seed_everything,
    select_device,
)
from modalforge.errors import SpecError

needs_no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA path")


def test_auto_and_cpu_devices():
    assert select_device("cpu") == torch.device("cpu")
    auto = select_device("auto")
    if torch.cuda.is_available():
        assert auto.type == "cuda"
    elif not torch.backends.mps.is_available():
        assert auto == torch.device("cpu")


@needs_no_cuda
@pytest.mark.parametrize("name", ["cuda", "cuda:1"])
def test_unavailable_cuda_is_a_spec_error_with_fix(name):
    with pytest.raises(SpecError, match=r"train\.device.*not available") as info:
        select_device(name)
    assert "fix:" in str(info.value) and "train.device=auto" in str(info.value)


def test_unknown_device_names_are_spec_errors():
    with pytest.raises(SpecError, match="train.device"):
        select_device("gpu0")
    with pytest.raises(SpecError, match="train.device"):
        select_device("xla")


def test_seed_everything_makes_python_numpy_torch_repeat():
    def draw():
        return random.random(), float(np.random.rand()), torch.rand(3).tolist()

    seed_everything(123)
    a = draw()
    seed_everything(123)
    assert draw() == a


def test_rng_state_round_trips_through_json():
    import json

    seed_everything(5)
    state = json.loads(json.dumps(capture_rng_state()))
    a = (random.random(), float(np.random.rand()), torch.rand(4).tolist())
    seed_everything(99)
    restore_rng_state(state)
    assert (random.random(), float(np.random.rand()), torch.rand(4).tolist()) == a


def test_fp32_does_not_autocast_and_bf16_does_on_cpu():
    cpu = torch.device("cpu")
    x = torch.randn(4, 4)
    with Precision("fp32", cpu).context():
        assert (x @ x).dtype == torch.float32
    bf16 = Precision("bf16", cpu)
    assert bf16.scaler is None
    with bf16.context():
        assert (x @ x).dtype == torch.bfloat16


def test_fp16_on_cpu_autocasts_or_explains():
    try:
        p = Precision("fp16", torch.device("cpu"))
    except SpecError as exc:  # an older PyTorch without CPU fp16 autocast
        assert "train.precision" in str(exc) and "fix:" in str(exc)
        return
    with p.context():
        assert (torch.randn(2, 2) @ torch.randn(2, 2)).dtype == torch.float16


def test_unknown_precision():
    with pytest.raises(SpecError, match="train.precision"):
        Precision("fp8", torch.device("cpu"))


def test_move_to_device_handles_nested_batches():
    batch = {
        "image": torch.ones(2),
        "masks": {"image": torch.ones(2, dtype=torch.bool)},
        "text": ["a", "b"],
        "pair": (torch.zeros(1), 3),
    }
    moved = move_to_device(batch, torch.device("cpu"))
    assert moved["masks"]["image"].dtype == torch.bool
    assert moved["text"] == ["a", "b"] and moved["pair"][1] == 3
    assert isinstance(moved["pair"], tuple)
