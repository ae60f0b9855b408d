import math

import pytest
import torch
from torch import nn

from modalforge.engine.config import TrainConfig
from modalforge.engine.schedule import build_adamw, build_scheduler, param_groups, warmup_cosine


def closed_form(step: int, lr: float, warmup: int, total: int, ratio: float) -> float:
    if step < warmup:
        return lr * (step + 1) / warmup
    t = (step - warmup) / (total - 1 - warmup)
    return lr * (ratio + (1 - ratio) * 0.5 * (1 + math.cos(math.pi * t)))


@pytest.mark.parametrize(("warmup", "total", "ratio"), [(0, 10, 0.0), (3, 20, 0.1), (5, 7, 0.5)])
def test_lambda_lr_follows_warmup_cosine_closed_form(warmup, total, ratio):
    cfg = TrainConfig(lr=0.3, warmup_steps=warmup, min_lr_ratio=ratio)
    p = nn.Parameter(torch.zeros(2, 2))
    opt = build_adamw([("w", p)], cfg, torch.device("cpu"))
    sched = build_scheduler(opt, cfg, total)
    seen = []
    for _ in range(total):
        seen.append(opt.param_groups[0]["lr"])  # the lr this optimizer step uses
        opt.step()
        sched.step()
    expected = [closed_form(s, 0.3, warmup, total, ratio) for s in range(total)]
    assert seen == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert seen[-1] == pytest.approx(0.3 * ratio)  # decays exactly to min_lr_ratio * lr
    if warmup:
        assert seen[warmup - 1] == pytest.approx(0.3)  # warm-up ends at the peak
        assert seen[0] == pytest.approx(0.3 / warmup)


def test_schedule_is_constant_after_the_last_planned_step():
    assert warmup_cosine(50, warmup=2, total=10, min_ratio=0.2) == pytest.approx(0.2)


class WithNorms(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(5, 4)
        self.proj = nn.Linear(4, 4)
        self.norm = nn.LayerNorm(4)
        self.logit_scale = nn.Parameter(torch.ones([]))
        self.temperature = nn.Parameter(torch.ones(1, 1))  # 2-D but a temperature
        self.frozen = nn.Parameter(torch.ones(3, 3), requires_grad=False)


def test_no_decay_for_biases_norms_and_temperatures():
    groups = param_groups(WithNorms().named_parameters(), weight_decay=0.1)
    by_name = {g["group"]: g for g in groups}
    assert by_name["decay"]["weight_decay"] == 0.1
    assert by_name["no_decay"]["weight_decay"] == 0.0
    assert sorted(by_name["decay"]["param_names"]) == ["emb.weight", "proj.weight"]
    assert sorted(by_name["no_decay"]["param_names"]) == [
        "logit_scale",
        "norm.bias",
        "norm.weight",
        "proj.bias",
        "temperature",
    ]


def test_adamw_decays_weights_only():
    cfg = TrainConfig(lr=0.1, weight_decay=0.5)
    lin = nn.Linear(3, 3)
    before_w, before_b = lin.weight.detach().clone(), lin.bias.detach().clone()
    opt = build_adamw(lin.named_parameters(), cfg, torch.device("cpu"))
    for p in lin.parameters():
        p.grad = torch.zeros_like(p)  # zero gradient: only decoupled decay can move a weight
    opt.step()
    torch.testing.assert_close(lin.weight.detach(), before_w * (1 - 0.1 * 0.5))
    torch.testing.assert_close(lin.bias.detach(), before_b)
    assert not opt.defaults.get("fused")  # fused AdamW is for CUDA only
