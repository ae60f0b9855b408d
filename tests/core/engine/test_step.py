import pytest
import torch
from torch import nn

from modalforge.engine.runtime import Precision
from modalforge.engine.step import StepContext

CPU = torch.device("cpu")


def _ctx(param, clip=None, precision="fp32"):
    opt = torch.optim.SGD([param], lr=1.0)  # update == -gradient: easy to check
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (s + 1))
    return StepContext(
        {"sgd": opt}, {"sgd": sched}, precision=Precision(precision, CPU), clip_grad_norm=clip
    )


def test_step_clips_the_global_norm_and_reports_the_raw_norm():
    p = nn.Parameter(torch.zeros(4))
    ctx = _ctx(p, clip=0.5)
    grad = torch.tensor([3.0, 4.0, 0.0, 0.0])  # norm 5
    ctx.backward((p * grad).sum())
    ctx.step("sgd")
    assert float(ctx.grad_norms["sgd"]) == pytest.approx(5.0)
    assert float(p.detach().norm()) == pytest.approx(0.5, rel=1e-5)  # the clipped update
    torch.testing.assert_close(p.detach(), -grad / 10, rtol=1e-5, atol=1e-6)
    assert p.grad is None  # zeroed after the step


def test_no_clipping_below_the_threshold_and_schedule_advances():
    p = nn.Parameter(torch.zeros(2))
    ctx = _ctx(p, clip=10.0)
    ctx.backward((p * torch.tensor([1.0, 1.0])).sum())
    ctx.step("sgd")
    torch.testing.assert_close(p.detach(), torch.tensor([-1.0, -1.0]))
    assert ctx.lr("sgd") == pytest.approx(0.5)  # LambdaLR stepped once: 1 / 2


def test_fp16_scaler_unscales_before_the_step():
    p = nn.Parameter(torch.zeros(2))
    try:
        ctx = _ctx(p, precision="fp16")
    except Exception as exc:  # noqa: BLE001 - PyTorch without CPU fp16 autocast
        pytest.skip(f"no fp16 on CPU: {exc}")
    if ctx.scaler is None:
        pytest.skip("no CPU GradScaler in this PyTorch")
    ctx.backward((p * torch.tensor([0.25, -0.5])).sum())
    assert float(p.grad[0]) == pytest.approx(0.25 * ctx.scaler.get_scale())  # scaled
    ctx.step("sgd")
    ctx.finish()
    torch.testing.assert_close(p.detach(), torch.tensor([-0.25, 0.5]))


def test_unknown_optimizer_name_lists_the_configured_ones():
    ctx = _ctx(nn.Parameter(torch.zeros(1)))
    with pytest.raises(KeyError, match="'sgd'"):
        ctx.step("generator")
