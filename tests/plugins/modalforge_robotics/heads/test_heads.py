"""Action heads: sized from (in_dim, target shape), gradients reach every parameter, ``act``
gives the chunk to execute, each learns a fixed features → chunk mapping, bad params are clear."""

from __future__ import annotations

import pytest
import torch

from modalforge.contracts import Target
from modalforge.errors import SpecError
from modalforge.pipeline.build import instantiate
from modalforge.pipeline.model import MultimodalModel
from modalforge.registry import Registrar, Registry
from modalforge.spec.params import validate_params
from modalforge_robotics.heads import (
    ActionBinsCELoss,
    ActionGMMNLLLoss,
    ActionHead,
    ActionMSELoss,
    BinnedActionHead,
    GMMActionHead,
    MLPActionHead,
    register,
)
from modalforge_robotics.heads.binned import bin_centres

K, A = 4, 3
TARGET = Target("regression", K * A, shape=(K, A))


def _heads(in_dim: int = 10, target: Target = TARGET):
    return [
        (MLPActionHead(in_dim, target, hidden_dims=[16]), ActionMSELoss(target)),
        (MLPActionHead(in_dim, target, hidden_dims=[], tanh=True), ActionMSELoss(target)),
        (GMMActionHead(in_dim, target, modes=3, hidden_dims=[16]), ActionGMMNLLLoss(target)),
        (BinnedActionHead(in_dim, target, bins=16, hidden_dims=[16]), ActionBinsCELoss(target)),
    ]


@pytest.mark.parametrize("k, a", [(1, 1), (4, 3), (8, 7)])
def test_output_shapes_from_in_dim_and_target_shape(k, a):
    target = Target("regression", k * a, shape=(k, a))
    want = {
        "action": (2, k, a),
        "action_gmm": (2, k, 3, 2 * a + 1),
        "action_logits": (2, k, a, 16),
    }
    for head, _ in _heads(5, target):
        assert isinstance(head, ActionHead) and (head.horizon, head.action_dim) == (k, a)
        out = {head.output_key: head(torch.randn(2, 5))}
        assert tuple(out[head.output_key].shape) == want[head.output_key]
        for sample in (False, True):
            chunk = head.act(out, sample=sample, generator=torch.Generator().manual_seed(0))
            assert chunk.shape == (2, k, a)
            assert chunk.min() >= -1 and chunk.max() <= 1


@pytest.mark.parametrize("index", range(4))
def test_gradients_reach_every_parameter(index):
    torch.manual_seed(0)
    head, loss = _heads()[index]
    batch = {"target": torch.rand(6, K, A) * 2 - 1}
    loss({head.output_key: head(torch.randn(6, 10))}, batch).total.backward()
    for name, p in head.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_mse_head_tanh_bounds_and_act_clamps():
    head = MLPActionHead(4, TARGET, hidden_dims=[], tanh=True)
    with torch.no_grad():
        head.net[-1].weight.fill_(10.0)
    out = head(torch.ones(2, 4))
    assert out.abs().max() <= 1
    plain = MLPActionHead(4, TARGET, hidden_dims=[])
    big = {"action": torch.full((1, K, A), 3.0)}
    assert torch.equal(plain.act(big), torch.ones(1, K, A))
    assert torch.equal(plain.act(big, sample=True), plain.act(big))  # a point estimate


def _gmm_packed(means, stds, logits):
    return torch.cat([means, stds, logits.unsqueeze(-1)], dim=-1)


def test_gmm_act_takes_the_most_likely_modes_mean_and_samples_near_it():
    head = GMMActionHead(4, TARGET, modes=2, hidden_dims=[])
    means = torch.stack([torch.full((1, K, A), -0.5), torch.full((1, K, A), 0.5)], dim=2)
    stds = torch.full((1, K, 2, A), 1e-3)
    logits = torch.tensor([[[0.0, 3.0], [3.0, 0.0], [0.0, 3.0], [3.0, 0.0]]])
    out = {"action_gmm": _gmm_packed(means, stds, logits)}
    want = torch.tensor([0.5, -0.5, 0.5, -0.5]).reshape(1, K, 1).expand(1, K, A)
    assert torch.equal(head.act(out), want)
    # sampling: modes drawn by weight (softmax(3, 0) = 0.953), actions within a few stds
    many = {"action_gmm": out["action_gmm"].expand(4000, -1, -1, -1)}
    g = torch.Generator().manual_seed(0)
    drawn = head.act(many, sample=True, generator=g)
    picked_likely = ((drawn - want).abs() < 0.01).all(dim=-1).float().mean()
    assert abs(picked_likely.item() - torch.tensor([3.0, 0.0]).softmax(0)[0].item()) < 0.02
    other = ((drawn + want).abs() < 0.01).all(dim=-1)
    assert ((drawn - want).abs() < 0.01).all(dim=-1).logical_or(other).all()
    again = head.act(many, sample=True, generator=torch.Generator().manual_seed(0))
    assert torch.equal(drawn, again)


def test_binned_act_returns_bin_centres_of_argmax_or_samples():
    head = BinnedActionHead(4, TARGET, bins=8, hidden_dims=[])
    logits = torch.randn(3, K, A, 8)
    centres = bin_centres(8)
    assert torch.equal(head.act({"action_logits": logits}), centres[logits.argmax(-1)])
    peaked = torch.full((1, K, A, 8), -30.0)
    peaked[..., 5] = 30.0
    g = torch.Generator().manual_seed(0)
    sampled = head.act({"action_logits": peaked}, sample=True, generator=g)
    assert torch.equal(sampled, torch.full((1, K, A), centres[5].item()))
    uniform = head.act({"action_logits": torch.zeros(20_000, 1, 1, 8)}, sample=True, generator=g)
    counts = torch.stack([(uniform == c).sum() for c in centres]).float() / 20_000
    assert (counts - 1 / 8).abs().max() < 0.015  # 1/8 each, binomial sd 0.0023


def _teacher(n: int, in_dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed mapping: features → a smooth chunk in [-1, 1] (tanh of a random linear map)."""
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(in_dim, K * A, generator=g) / in_dim**0.5
    x = torch.randn(n, in_dim, generator=g)
    return x, torch.tanh(1.5 * x @ weight).reshape(n, K, A)


FIT = [  # head, loss, bound on the loss after 300 steps, bound on act's mean absolute error
    # (measured on this seed: mse 5.5e-4 / 0.017, gmm -10.4 / 0.011, bins 0.19 / 0.017)
    (lambda: MLPActionHead(8, TARGET, hidden_dims=[64], tanh=True), ActionMSELoss, 2e-3, 0.04),
    (lambda: GMMActionHead(8, TARGET, modes=3, hidden_dims=[64]), ActionGMMNLLLoss, -3.0, 0.06),
    (lambda: BinnedActionHead(8, TARGET, bins=32, hidden_dims=[64]), ActionBinsCELoss, 0.6, 0.06),
]


@pytest.mark.parametrize("index", range(len(FIT)))
def test_each_head_learns_a_fixed_mapping(index):
    torch.manual_seed(0)
    make_head, make_loss, loss_bound, act_bound = FIT[index]
    head, loss = make_head(), make_loss(TARGET)
    x, y = _teacher(256, 8, seed=1)
    opt = torch.optim.Adam(head.parameters(), lr=3e-3)
    first = None
    for _ in range(300):
        value = loss({head.output_key: head(x)}, {"target": y}).total
        first = value.item() if first is None else first
        opt.zero_grad()
        value.backward()
        opt.step()
    head.eval()
    with torch.no_grad():
        final = loss({head.output_key: head(x)}, {"target": y}).total.item()
        err = (head.act({head.output_key: head(x)}) - y).abs().mean().item()
    assert final < loss_bound < first, (first, final)
    assert err < act_bound, err


def test_registered_components_and_typed_params():
    registry = Registry()
    register(Registrar(registry, "robotics"))
    assert set(registry.names("head")) == {
        "mse_action",
        "gmm_action",
        "binned_action",
        "diffusion_action",
    }
    assert set(registry.names("loss")) == {
        "action_mse",
        "action_gmm_nll",
        "action_bins_ce",
        "action_diffusion",
    }
    for component in registry:  # every signature is a valid, typed params schema
        fields = set(component.params_model.model_fields)
        assert "target" not in fields and "in_dim" not in fields, component.name
    info = registry.get("head", "gmm_action")
    params = validate_params(info, {"modes": 2}, "model.head")
    head = instantiate(info, params, "model.head", in_dim=6, target=TARGET)
    assert isinstance(head, GMMActionHead) and head.modes == 2
    with pytest.raises(SpecError, match=r"loss\.params\.kind"):
        validate_params(registry.get("loss", "action_mse"), {"kind": "l3"}, "loss")
    with pytest.raises(SpecError, match=r"model\.head\.params\.bins"):
        validate_params(registry.get("head", "binned_action"), {"bins": "many"}, "model.head")
    # the head plugs into the model as any head does; act reads the model's outputs
    model = MultimodalModel({"state": _Identity(6)}, None, head)
    chunk = head.act(model({"state": torch.randn(2, 6)}))
    assert chunk.shape == (2, K, A)


class _Identity(torch.nn.Module):
    """A stand-in encoder (the model only calls it)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: MLPActionHead(4, Target("multiclass", 3)), r"model\.head: .*multiclass"),
        (lambda: GMMActionHead(4, Target("regression", 6)), r"model\.head: .*no shape"),
        (
            lambda: BinnedActionHead(4, Target("regression", 6, shape=(1, 2, 3))),
            r"model\.head: .*shape \(1, 2, 3\)",
        ),
        (lambda: GMMActionHead(4, TARGET, modes=0), r"model\.head\.params\.modes"),
        (lambda: GMMActionHead(4, TARGET, min_std=0.0), r"model\.head\.params\.min_std"),
        (lambda: BinnedActionHead(4, TARGET, bins=1), r"model\.head\.params\.bins"),
        (lambda: MLPActionHead(4, TARGET, hidden_dims=[0]), r"model\.head\.params: widths"),
        (lambda: MLPActionHead(4, TARGET, dropout=1.0), r"model\.head\.params: dropout"),
    ],
)
def test_bad_targets_and_params_are_clear_errors(make, match):
    with pytest.raises(SpecError, match=match) as info:
        make()
    if "shape" in match:
        assert "Target('regression', k * A, shape=(k, A))" in str(info.value)
