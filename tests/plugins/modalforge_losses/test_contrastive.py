"""``clip`` and ``siglip`` equal open_clip's losses, clamp their scale, are world-size invariant."""

from __future__ import annotations

import math

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F

from modalforge.engine.schedule import param_groups
from modalforge.errors import SpecError
from modalforge.registry import Registrar, Registry
from modalforge_losses import ClipLoss, SigLipLoss


@pytest.fixture(scope="module")
def open_clip_loss():
    """Imported here, not at module level: the 2-process test's workers re-import this module."""
    return pytest.importorskip("open_clip.loss")


def _embeddings(n: int = 8, dim: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    a = F.normalize(torch.randn(n, dim, generator=g), dim=-1).requires_grad_()
    b = F.normalize(torch.randn(n, dim, generator=g), dim=-1).requires_grad_()
    return a, b


def _outputs(a: torch.Tensor, b: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"embed.image": a, "embed.text": b}


def _grads(loss: torch.Tensor, *tensors: torch.Tensor) -> list[torch.Tensor]:
    return list(torch.autograd.grad(loss, tensors))


def test_clip_equals_open_clip_with_gradients(open_clip_loss):
    a, b = _embeddings()
    ours = ClipLoss(logit_scale_init=2.0)
    out = ours(_outputs(a, b), {})
    mine = _grads(out.total, a, b, ours.logit_scale)

    scale = torch.tensor(2.0, requires_grad=True)
    ref = open_clip_loss.ClipLoss()(a, b, scale.exp())
    theirs = _grads(ref, a, b, scale)

    torch.testing.assert_close(out.total, ref)
    for m, t in zip(mine, theirs, strict=True):
        torch.testing.assert_close(m, t)
    assert set(out.parts) == {"contrastive", "logit_scale"}
    torch.testing.assert_close(out.parts["logit_scale"], torch.tensor(math.exp(2.0)))
    assert not out.parts["logit_scale"].requires_grad


def test_clip_default_scale_is_one_over_0_07_and_perfect_pairs_give_low_loss():
    loss = ClipLoss()
    torch.testing.assert_close(loss.logit_scale.exp(), torch.tensor(1 / 0.07))
    e = torch.eye(4)
    assert loss(_outputs(e, e), {}).total < 1e-5
    assert loss(_outputs(e, e.roll(1, 0)), {}).total > 10


def test_siglip_equals_open_clip_with_gradients(open_clip_loss):
    a, b = _embeddings(seed=1)
    ours = SigLipLoss()
    out = ours(_outputs(a, b), {})
    mine = _grads(out.total, a, b, ours.logit_scale, ours.logit_bias)

    scale = torch.tensor(math.log(10), requires_grad=True)
    bias = torch.tensor(-10.0, requires_grad=True)
    ref = open_clip_loss.SigLipLoss()(a, b, scale.exp(), bias)
    theirs = _grads(ref, a, b, scale, bias)

    torch.testing.assert_close(out.total, ref)
    for m, t in zip(mine, theirs, strict=True):
        torch.testing.assert_close(m, t)
    assert set(out.parts) == {"contrastive", "logit_scale", "logit_bias"}


def test_scale_is_clamped_after_an_optimizer_step():
    loss = ClipLoss(logit_scale_init=1.0)
    with torch.no_grad():
        loss.logit_scale.fill_(7.0)
    loss.after_optimizer_step()
    assert loss.logit_scale.item() == pytest.approx(math.log(100))
    with torch.no_grad():
        loss.logit_scale.fill_(-1.0)
    loss.after_optimizer_step()
    assert loss.logit_scale.item() == 0.0
    custom = SigLipLoss(max_logit_scale=2.0)
    with torch.no_grad():
        custom.logit_scale.fill_(3.0)
    custom.after_optimizer_step()
    assert custom.logit_scale.item() == 2.0
    unclamped = ClipLoss(max_logit_scale=None)
    with torch.no_grad():
        unclamped.logit_scale.fill_(9.0)
    unclamped.after_optimizer_step()
    assert unclamped.logit_scale.item() == 9.0


def test_fixed_scale_is_a_buffer_and_scales_are_never_weight_decayed():
    fixed = SigLipLoss(learnable_scale=False, learnable_bias=False)
    assert list(fixed.parameters()) == []
    assert set(dict(fixed.named_buffers())) == {"logit_scale", "logit_bias"}
    named = [(f"loss.{n}", p) for n, p in SigLipLoss().named_parameters()]
    groups = param_groups(named, weight_decay=0.1)
    assert [g["group"] for g in groups] == ["no_decay"]
    assert groups[0]["param_names"] == ["loss.logit_scale", "loss.logit_bias"]


def test_pair_is_a_spec_param_and_errors_name_it():
    registry = Registry()
    Registrar(registry, "test").loss("clip", ClipLoss)
    params = registry.get("loss", "clip").params_model.model_validate({"pair": ["depth", "image"]})
    assert tuple(params.pair) == ("depth", "image")
    loss = ClipLoss(pair=("depth", "image"))
    a, b = _embeddings(4)
    with pytest.raises(SpecError, match=r"loss\.params\.pair.*'embed\.depth'"):
        loss(_outputs(a, b), {})
    with pytest.raises(SpecError, match=r"loss\.params\.pair"):
        ClipLoss(pair=("image", "image"))


# --------------------------------------------------------------------------- 1 vs 2 processes
GLOBAL_BATCH, DIM, FEATURES = 8, 5, 7


def _problem() -> tuple[torch.Tensor, torch.Tensor, torch.nn.Linear, torch.nn.Linear]:
    """A fixed global batch and two tiny projections (identical in every process)."""
    g = torch.Generator().manual_seed(3)
    xa = torch.randn(GLOBAL_BATCH, FEATURES, generator=g)
    xb = torch.randn(GLOBAL_BATCH, FEATURES, generator=g)
    torch.manual_seed(4)
    return xa, xb, torch.nn.Linear(FEATURES, DIM), torch.nn.Linear(FEATURES, DIM)


def _loss_and_grads(cls: type, rows: slice) -> tuple[float, dict[str, torch.Tensor]]:
    """Loss on ``rows`` of the global batch, and gradients of projections and loss params."""
    xa, xb, pa, pb = _problem()
    loss = cls()
    out = loss(_outputs(F.normalize(pa(xa[rows]), dim=-1), F.normalize(pb(xb[rows]), dim=-1)), {})
    out.total.backward()
    named = {f"a.{n}": p for n, p in pa.named_parameters()}
    named |= {f"b.{n}": p for n, p in pb.named_parameters()}
    named |= {f"loss.{n}": p for n, p in loss.named_parameters()}
    return out.total.item(), {n: p.grad for n, p in named.items()}


SPLITS = {"equal": (0, 4, 8), "unequal": (0, 3, 8)}  # rows of process 0 and 1


def _worker(rank: int, world: int, init_file: str, result_file: str) -> None:
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world
    )
    try:
        results = {}
        for split, bounds in SPLITS.items():
            for cls in (ClipLoss, SigLipLoss):
                rows = slice(bounds[rank], bounds[rank + 1])
                value, grads = _loss_and_grads(cls, rows)
                # What DDP does: average the gradients (and the engine logs the mean loss).
                flat = torch.cat([torch.tensor([value])] + [g.reshape(-1) for g in grads.values()])
                torch.distributed.all_reduce(flat)
                results[split, cls.name] = flat / world
        if rank == 0:
            torch.save(results, result_file)
    finally:
        torch.distributed.destroy_process_group()


def test_two_gloo_processes_give_the_single_process_loss_and_gradients(tmp_path):
    """Also when the processes hold different numbers of rows (3 and 5 of 8)."""
    world = 2
    mp.spawn(
        _worker,
        args=(world, str(tmp_path / "init"), str(tmp_path / "result.pt")),
        nprocs=world,
        join=True,
    )
    results = torch.load(tmp_path / "result.pt")
    for cls in (ClipLoss, SigLipLoss):
        value, grads = _loss_and_grads(cls, slice(None))
        single = torch.cat([torch.tensor([value])] + [g.reshape(-1) for g in grads.values()])
        for split in SPLITS:
            torch.testing.assert_close(
                results[split, cls.name], single, rtol=1e-5, atol=1e-6, msg=f"{split} {cls.name}"
            )
