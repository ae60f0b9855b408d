"""Optimizers, schedules and per-component parameter groups: closed forms and references."""

import json
import math

import pytest
import torch
from torch import nn

from modalforge.engine import Trainer, train
from modalforge.engine.config import TrainConfig
from modalforge.engine.optim import (
    SGD,
    Adam,
    AdamW,
    Constant,
    Linear,
    StepDecay,
    WarmupCosine,
    grouped_params,
)
from modalforge.engine.schedule import build_optimizers, build_scheduler, build_schedulers
from modalforge.errors import CheckpointError, SpecError

CPU = torch.device("cpu")


def _lrs(opt, sched, steps: int) -> list[list[float]]:
    """The lr of every param group used by each of ``steps`` optimizer steps."""
    seen = []
    for _ in range(steps):
        seen.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    return seen


def _one_param_opt(lr: float = 0.2) -> torch.optim.Optimizer:
    return torch.optim.SGD([nn.Parameter(torch.zeros(2))], lr=lr)


# ---------------------------------------------------------------- schedules: closed forms
def linear_form(step: int, warmup: int, total: int, ratio: float) -> float:
    if step < warmup:
        return (step + 1) / warmup
    t = min(1.0, (step - warmup) / (total - 1 - warmup))
    return 1 - (1 - ratio) * t


def cosine_form(step: int, warmup: int, total: int, ratio: float) -> float:
    if step < warmup:
        return (step + 1) / warmup
    t = min(1.0, (step - warmup) / (total - 1 - warmup))
    return ratio + (1 - ratio) * 0.5 * (1 + math.cos(math.pi * t))


@pytest.mark.parametrize(("warmup", "total", "ratio"), [(0, 11, 0.0), (3, 13, 0.2), (4, 6, 0.5)])
def test_linear_and_cosine_follow_their_formulas(warmup, total, ratio):
    cfg = TrainConfig(lr=0.2, warmup_steps=warmup, min_lr_ratio=ratio)
    for scheduler, form in ((Linear(), linear_form), (WarmupCosine(), cosine_form)):
        opt = _one_param_opt()
        seen = [lrs[0] for lrs in _lrs(opt, build_scheduler(opt, cfg, total, scheduler), total)]
        expected = [0.2 * form(s, warmup, total, ratio) for s in range(total)]
        assert seen == pytest.approx(expected, rel=1e-12, abs=1e-15)
        assert seen[-1] == pytest.approx(0.2 * ratio)  # reaches min_lr_ratio at the last step
        assert scheduler.factor(total + 5, total, cfg) == pytest.approx(ratio)  # then stays


def test_linear_points_by_hand():
    cfg = TrainConfig(warmup_steps=2, min_lr_ratio=0.1)
    f = [Linear().factor(s, 12, cfg) for s in (0, 1, 2, 6, 11)]
    # warm-up 1/2, 2/2; then 1 → 0.1 over steps 2..11 (9 intervals): step 6 is 4/9 of the way.
    assert f == pytest.approx([0.5, 1.0, 1.0, 1 - 0.9 * 4 / 9, 0.1])


def test_constant_with_and_without_warmup():
    assert [Constant().factor(s, 10, TrainConfig()) for s in (0, 5, 9, 50)] == [1, 1, 1, 1]
    cfg = TrainConfig(warmup_steps=4)
    assert [Constant().factor(s, 10, cfg) for s in range(6)] == pytest.approx(
        [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    )


def test_step_decay_matches_torch_step_lr_after_the_warmup():
    cfg = TrainConfig(lr=0.4, warmup_steps=3)
    sched = StepDecay(step_size=4, gamma=0.5)
    opt = _one_param_opt(0.4)
    seen = [lrs[0] for lrs in _lrs(opt, build_scheduler(opt, cfg, 20, sched), 15)]
    assert seen[:3] == pytest.approx([0.4 / 3, 0.8 / 3, 0.4])
    ref_opt = _one_param_opt(0.4)
    ref = torch.optim.lr_scheduler.StepLR(ref_opt, step_size=4, gamma=0.5)
    assert seen[3:] == pytest.approx([lrs[0] for lrs in _lrs(ref_opt, ref, 12)], rel=1e-12)
    assert seen[3 + 8] == pytest.approx(0.4 * 0.25)  # two decays after 8 post-warm-up steps


# ---------------------------------------------------------------- optimizers
def _quadratic_steps(opt_factory, steps: int = 5) -> torch.Tensor:
    torch.manual_seed(0)
    w = nn.Parameter(torch.randn(3))
    target = torch.tensor([1.0, -2.0, 0.5])
    opt = opt_factory([w])
    for _ in range(steps):
        loss = ((w - target) ** 2).sum()
        loss.backward()
        opt.step()
        opt.zero_grad()
    return w.detach()


def test_sgd_momentum_matches_a_hand_computed_update():
    lr, mu = 0.1, 0.9
    cfg = TrainConfig(lr=lr, weight_decay=0.0)
    w0 = torch.tensor([0.5, -1.0])
    w = nn.Parameter(w0.clone())
    opt = SGD(momentum=mu).build(
        [{"params": [w], "weight_decay": 0.0}], lr=lr, train=cfg, device=CPU
    )
    # loss = sum(w^2) → g = 2w.  Step 1: b = g0, w1 = w0 - lr b.  Step 2: b = mu b + g1.
    for _ in range(2):
        (w**2).sum().backward()
        opt.step()
        opt.zero_grad()
    g0 = 2 * w0
    w1 = w0 - lr * g0
    b1 = mu * g0 + 2 * w1
    torch.testing.assert_close(w.detach(), w1 - lr * b1)


@pytest.mark.parametrize(
    "params",
    [
        {"momentum": 0.9},
        {"momentum": 0.8, "nesterov": True},
        {"momentum": 0.5, "dampening": 0.3},
        {"momentum": 0.0},
    ],
)
def test_sgd_equals_torch_sgd(params):
    cfg = TrainConfig(lr=0.05, weight_decay=0.01)

    def ours(ps):
        return SGD(**params).build(
            [{"params": ps, "weight_decay": 0.01}], lr=0.05, train=cfg, device=CPU
        )

    def ref(ps):
        return torch.optim.SGD(ps, lr=0.05, weight_decay=0.01, **params)

    torch.testing.assert_close(_quadratic_steps(ours), _quadratic_steps(ref), rtol=0, atol=0)


def test_nesterov_needs_momentum_and_no_dampening():
    with pytest.raises(ValueError, match="nesterov"):
        SGD(momentum=0.0, nesterov=True)
    with pytest.raises(ValueError, match="nesterov"):
        SGD(momentum=0.9, dampening=0.1, nesterov=True)


def test_adam_and_adamw_take_betas_from_train_unless_their_params_set_them():
    cfg = TrainConfig(lr=0.01, betas=(0.8, 0.95), eps=1e-6)
    p = [{"params": [nn.Parameter(torch.zeros(2, 2))], "weight_decay": 0.0}]
    opt = AdamW().build(p, lr=0.01, train=cfg, device=CPU)
    assert isinstance(opt, torch.optim.AdamW) and opt.defaults["betas"] == (0.8, 0.95)
    assert opt.defaults["eps"] == 1e-6
    own = Adam(betas=(0.5, 0.9), eps=1e-3).build(p, lr=0.01, train=cfg, device=CPU)
    assert type(own) is torch.optim.Adam and own.defaults["betas"] == (0.5, 0.9)
    assert own.defaults["eps"] == 1e-3


# ---------------------------------------------------------------- parameter groups
class Tower(nn.Module):
    def __init__(self, d: int = 4) -> None:
        super().__init__()
        self.proj = nn.Linear(d, d)
        self.norm = nn.LayerNorm(d)


class Fused(nn.Module):
    """The parameter layout of a MultimodalModel: encoders.<modality>, fusion, head."""

    def __init__(self) -> None:
        super().__init__()
        self.encoders = nn.ModuleDict({"text": Tower(), "image": Tower()})
        self.fusion = nn.Linear(8, 4)
        self.head = nn.Linear(4, 3)


class Temperature(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.logit_scale = nn.Parameter(torch.tensor(2.0))


def _by_group(groups):
    return {g["group"]: g for g in groups}


def test_a_text_tower_at_a_tenth_of_the_fusion_rate_through_the_schedule():
    cfg = TrainConfig(
        lr=0.01,
        warmup_steps=2,
        min_lr_ratio=0.1,
        param_groups={"encoders.text": {"lr_mult": 0.1}, "fusion": {"lr": 0.02}},
    )
    model, loss = Fused(), Temperature()
    opts = build_optimizers(model, loss, cfg, CPU)
    scheds = build_schedulers(opts, cfg, total_steps=10)
    opt = opts["model"]
    rate = {"": 0.01, "encoders.text": 0.001, "fusion": 0.02}
    for step in range(6):
        factor = cosine_form(step, 2, 10, 0.1)
        for group in opt.param_groups:
            assert group["lr"] == pytest.approx(rate[group["prefix"]] * factor, rel=1e-12)
        opt.step()
        scheds["model"].step()
    groups = _by_group(opt.param_groups)
    assert groups["encoders.text/decay"]["param_names"] == ["encoders.text.proj.weight"]
    assert sorted(groups["encoders.text/no_decay"]["param_names"]) == [
        "encoders.text.norm.bias",
        "encoders.text.norm.weight",
        "encoders.text.proj.bias",
    ]
    assert groups["encoders.text/no_decay"]["weight_decay"] == 0.0  # decay split inside a group
    assert "loss.logit_scale" in groups["no_decay"]["param_names"]  # the rest: default group
    assert "encoders.image.proj.weight" in groups["decay"]["param_names"]


def test_longest_prefix_wins_and_weight_decay_per_group():
    cfg = TrainConfig(
        lr=0.1,
        weight_decay=0.05,
        param_groups={
            "encoders": {"lr_mult": 0.5},
            "encoders.text.proj": {"lr_mult": 0.1, "weight_decay": 0.3},
        },
    )
    groups = _by_group(grouped_params(Fused(), None, cfg))
    assert groups["encoders.text.proj/decay"]["param_names"] == ["encoders.text.proj.weight"]
    assert groups["encoders.text.proj/decay"]["weight_decay"] == 0.3
    assert groups["encoders.text.proj/decay"]["lr"] == pytest.approx(0.01)
    assert "encoders.text.norm.weight" in groups["encoders/no_decay"]["param_names"]
    assert groups["encoders/decay"]["lr"] == pytest.approx(0.05)
    assert groups["encoders/decay"]["weight_decay"] == 0.05
    assert groups["decay"]["param_names"] == ["fusion.weight", "head.weight"]
    names = [n for g in groups.values() for n in g["param_names"]]
    assert sorted(names) == sorted(n for n, _ in Fused().named_parameters())  # each once


def test_a_prefix_matching_no_trainable_parameter_lists_the_prefixes():
    cfg = TrainConfig(param_groups={"encoders.txt": {"lr_mult": 0.1}})
    with pytest.raises(SpecError) as exc:
        grouped_params(Fused(), Temperature(), cfg)
    msg = str(exc.value)
    assert "train.param_groups.encoders.txt" in msg
    assert "encoders, encoders.text, encoders.image, fusion, head, loss" in msg
    # "encoders.t" is not a prefix of encoders.text.*: prefixes end at a dot.
    with pytest.raises(SpecError, match="train.param_groups.encoders.t"):
        grouped_params(Fused(), None, TrainConfig(param_groups={"encoders.t": {"lr_mult": 2}}))
    frozen = Fused()
    frozen.head.requires_grad_(False)
    with pytest.raises(SpecError, match="train.param_groups.head"):
        grouped_params(frozen, None, TrainConfig(param_groups={"head": {"lr_mult": 2}}))


def test_nested_param_groups_mean_dotted_prefixes():
    nested = TrainConfig(param_groups={"encoders": {"lr_mult": 0.5, "text": {"lr": 1e-4}}})
    assert set(nested.param_groups) == {"encoders", "encoders.text"}
    assert nested.param_groups["encoders.text"].lr == 1e-4
    with pytest.raises(ValueError, match="not both"):
        TrainConfig(param_groups={"head": {"lr": 0.1, "lr_mult": 2.0}})


# ---------------------------------------------------------------- through the trainer
def test_the_trainer_builds_the_spec_choices_and_logs_group_rates(tmp_path):
    from tests.core.engine.helpers import make_pipeline

    cfg = {
        "epochs": 1,
        "lr": 0.1,
        "optimizer": {"name": "sgd", "params": {"momentum": 0.5}},
        "scheduler": {"name": "step", "params": {"step_size": 3, "gamma": 0.5}},
        "param_groups": {"head": {"lr_mult": 0.1}},
        "log_every_steps": 4,
    }
    trainer = Trainer(make_pipeline(cfg), tmp_path)
    trainer.fit()
    opt = trainer.optimizers["model"]
    assert type(opt) is torch.optim.SGD and opt.defaults["momentum"] == 0.5
    after = 0.5 ** (8 // 3)  # 8 steps taken: the rate the next step would use
    assert {g["prefix"]: g["lr"] for g in opt.param_groups} == pytest.approx(
        {"": 0.1 * after, "head": 0.01 * after}
    )
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    first = next(r for r in rows if r["split"] == "train")
    assert first["step"] == 4 and first["lr"] == pytest.approx(0.1 * 0.5)  # after 4 steps
    assert first["lr_head"] == pytest.approx(0.01 * 0.5)


def test_resuming_with_another_optimizer_is_a_checkpoint_error(tmp_path):
    from tests.core.engine.helpers import make_pipeline

    train(make_pipeline({"epochs": 1}), tmp_path)
    with pytest.raises(CheckpointError) as exc:
        train(make_pipeline({"epochs": 2, "optimizer": "sgd"}), tmp_path, resume=tmp_path)
    msg = str(exc.value)
    assert "optimizer 'model' was AdamW" in msg and "this run's is SGD" in msg
    assert "train.optimizer" in msg
    with pytest.warns(UserWarning, match="schedule 'warmup_cosine'.*'constant'"):
        train(make_pipeline({"epochs": 2, "scheduler": "constant"}), tmp_path, resume=tmp_path)


def test_a_generators_optimizers_each_follow_the_schedule(tmp_path):
    from tests.core.engine.helpers import GAN_SECTIONS, make_pipeline

    cfg = {"epochs": 1, "lr": 0.01, "scheduler": "linear", "warmup_steps": 2, "min_lr_ratio": 0.5}
    trainer = Trainer(make_pipeline(cfg, **GAN_SECTIONS), tmp_path)
    trainer.fit()  # 256 points in batches of 32: 8 steps
    assert set(trainer.optimizers) == {"generator", "discriminator"}
    for opt in trainer.optimizers.values():  # after the last planned step: min_lr_ratio
        assert opt.param_groups[0]["lr"] == pytest.approx(0.01 * linear_form(8, 2, 8, 0.5))
    # The engine refuses an optimizer for it too, should a spec skip validation.
    with pytest.raises(SpecError, match="train.optimizer"):
        build_optimizers(trainer.model, None, TrainConfig(optimizer="sgd"), CPU, SGD())
