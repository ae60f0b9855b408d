"""Action losses against closed forms, torch.distributions and F.cross_entropy; padded steps are
ignored; the target reaches the loss through the engine's collate with ``action_is_pad``."""

from __future__ import annotations

import pytest
import torch
import torch.distributions as D
import torch.nn.functional as F

from modalforge.contracts import Target
from modalforge.engine.data import collate_samples
from modalforge.errors import DataError, SpecError
from modalforge_robotics.heads import (
    ACTION_PAD_KEY,
    ActionBinsCELoss,
    ActionGMMNLLLoss,
    ActionMSELoss,
    BinnedActionHead,
    GMMActionHead,
)
from modalforge_robotics.heads.binned import bin_centres, bin_index
from modalforge_robotics.heads.gmm import split_gmm

K, A = 4, 3
TARGET = Target("regression", K * A, shape=(K, A))


def _batch(b: int = 5, pad: bool = False, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    batch = {"target": torch.rand(b, K, A, generator=g) * 2 - 1}
    if pad:
        is_pad = torch.zeros(b, K, dtype=torch.bool)
        is_pad[0, 2:] = True
        is_pad[3, 1:] = True
        batch[ACTION_PAD_KEY] = is_pad
    return batch


def test_mse_l1_smooth_l1_match_closed_forms():
    batch = _batch()
    pred = torch.randn(5, K, A)
    diff = pred - batch["target"]
    out = {"action": pred}
    assert torch.allclose(ActionMSELoss(TARGET)(out, batch).total, diff.square().mean())
    assert torch.allclose(ActionMSELoss(TARGET, kind="l1")(out, batch).total, diff.abs().mean())
    beta = 0.3
    huber = torch.where(diff.abs() < beta, 0.5 * diff.square() / beta, diff.abs() - 0.5 * beta)
    loss = ActionMSELoss(TARGET, kind="smooth_l1", beta=beta)(out, batch)
    assert torch.allclose(loss.total, huber.mean())
    assert set(loss.parts) == {"action_mse"}


def test_flat_targets_are_reshaped_from_the_target_shape():
    batch = _batch()
    pred = torch.randn(5, K, A)
    flat = {"target": batch["target"].reshape(5, K * A)}
    got = ActionMSELoss(TARGET)({"action": pred}, flat).total
    assert torch.allclose(got, (pred - batch["target"]).square().mean())


def _gmm_params(b: int = 5, modes: int = 3, seed: int = 1) -> torch.Tensor:
    torch.manual_seed(seed)
    head = GMMActionHead(6, TARGET, modes=modes, hidden_dims=[8])
    return head(torch.randn(b, 6)).detach()


def test_gmm_nll_matches_mixture_same_family():
    params = _gmm_params()
    batch = _batch()
    means, stds, logits = split_gmm(params, A)
    mixture = D.MixtureSameFamily(
        D.Categorical(logits=logits), D.Independent(D.Normal(means, stds), 1)
    )
    want = -mixture.log_prob(batch["target"]).mean()
    got = ActionGMMNLLLoss(TARGET)({"action_gmm": params}, batch).total
    assert torch.allclose(got, want, atol=1e-5)


def test_bins_ce_matches_f_cross_entropy_and_the_smoothing_closed_form():
    torch.manual_seed(2)
    bins = 16
    logits = torch.randn(5, K, A, bins)
    batch = _batch()
    labels = bin_index(batch["target"], bins)
    want = F.cross_entropy(logits.reshape(-1, bins), labels.reshape(-1))
    got = ActionBinsCELoss(TARGET)({"action_logits": logits}, batch).total
    assert torch.allclose(got, want)
    eps = 0.2
    logp = logits.log_softmax(-1)
    nll = -logp.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    smooth = (1 - eps) * nll + eps * (-logp.mean(-1))
    got = ActionBinsCELoss(TARGET, label_smoothing=eps)({"action_logits": logits}, batch).total
    assert torch.allclose(got, smooth.mean())


def test_bin_round_trip_within_half_a_bin():
    for bins in (2, 7, 256):
        values = torch.cat([torch.rand(10_000) * 2 - 1, torch.tensor([-1.0, 1.0, 0.0])])
        back = bin_centres(bins)[bin_index(values, bins)]
        assert (back - values).abs().max() <= 1.0 / bins + 1e-6  # half of width 2 / bins
    assert bin_index(torch.tensor([-3.0, 3.0]), 8).tolist() == [0, 7]  # outside: end bins


def _losses_and_outputs(b: int):
    torch.manual_seed(3)
    return [
        (ActionMSELoss(TARGET, kind="l1"), {"action": torch.randn(b, K, A)}),
        (ActionGMMNLLLoss(TARGET), {"action_gmm": _gmm_params(b)}),
        (ActionBinsCELoss(TARGET), {"action_logits": torch.randn(b, K, A, 8)}),
    ]


@pytest.mark.parametrize("index", range(3))
def test_padded_steps_are_ignored(index):
    loss, outputs = _losses_and_outputs(5)[index]
    batch = _batch(pad=True)
    base = loss(outputs, batch).total
    changed = dict(batch, target=batch["target"].clone())
    changed["target"][batch[ACTION_PAD_KEY]] = torch.rand(5, A)[:1] * 2 - 1  # new padded values
    assert torch.equal(loss(outputs, changed).total, base)
    # the padded loss is the mean over the valid steps only
    no_pad = {"target": batch["target"]}
    loss.shape = None  # per-step chunks (1, 1, A) below, not the data set's (k, A)
    each = [
        loss({k: v[i : i + 1, j : j + 1] for k, v in outputs.items()},
             {"target": no_pad["target"][i : i + 1, j : j + 1]}).total
        for i in range(5) for j in range(K) if not batch[ACTION_PAD_KEY][i, j]
    ]  # fmt: skip
    assert torch.allclose(base, torch.stack(each).mean(), atol=1e-5)


def test_pad_and_target_survive_the_engine_collate():
    samples = [
        {"state": torch.randn(2), "target": torch.rand(K, A), ACTION_PAD_KEY: torch.arange(K) > i}
        for i in range(3)
    ]
    batch = collate_samples(samples)
    assert batch["target"].shape == (3, K, A)
    assert batch[ACTION_PAD_KEY].dtype == torch.bool and batch[ACTION_PAD_KEY].shape == (3, K)
    loss = ActionMSELoss(TARGET)({"action": torch.zeros(3, K, A)}, batch).total
    valid = ~batch[ACTION_PAD_KEY]
    assert torch.allclose(loss, batch["target"][valid].square().mean())


def test_all_padded_batch_gives_zero_not_nan():
    batch = _batch(b=2)
    batch[ACTION_PAD_KEY] = torch.ones(2, K, dtype=torch.bool)
    assert ActionMSELoss(TARGET)({"action": torch.randn(2, K, A)}, batch).total.item() == 0.0


def test_loss_errors_name_the_field_and_fix():
    with pytest.raises(SpecError, match=r"loss\.params\.output_key.*'action'") as info:
        ActionMSELoss(TARGET)({"logits": torch.zeros(1)}, _batch())
    assert "head: mse_action" in str(info.value)
    with pytest.raises(DataError, match="'target'"):
        ActionMSELoss(TARGET)({"action": torch.zeros(5, K, A)}, {})
    with pytest.raises(DataError, match=r"predicts action chunks \(5, 2, 3\)"):
        ActionMSELoss(TARGET)({"action": torch.zeros(5, 2, A)}, _batch())
    with pytest.raises(DataError, match=r"with \(k, A\) = \(4, 3\), got \(5, 6\)"):
        ActionMSELoss(TARGET)({"action": torch.zeros(5, K, A)}, {"target": torch.zeros(5, 6)})
    with pytest.raises(DataError, match="values per mode"):
        ActionGMMNLLLoss(TARGET)({"action_gmm": torch.zeros(5, K, 2, 5)}, _batch())
    bad_pad = dict(_batch(), **{ACTION_PAD_KEY: torch.zeros(5, K + 1, dtype=torch.bool)})
    with pytest.raises(DataError, match=ACTION_PAD_KEY):
        ActionMSELoss(TARGET)({"action": torch.zeros(5, K, A)}, bad_pad)
    with pytest.raises(SpecError, match=r"^loss: .*classification|loss: .*multiclass"):
        ActionMSELoss(Target("multiclass", 3))
    with pytest.raises(SpecError, match=r"loss: .*no shape"):
        ActionBinsCELoss(Target("regression", 6))
    with pytest.raises(SpecError, match=r"loss\.params\.kind"):
        ActionMSELoss(TARGET, kind="l3")
    with pytest.raises(SpecError, match=r"loss\.params\.beta"):
        ActionMSELoss(TARGET, kind="smooth_l1", beta=0.0)
    with pytest.raises(SpecError, match=r"loss\.params\.label_smoothing"):
        ActionBinsCELoss(TARGET, label_smoothing=1.0)


def test_binned_loss_reads_the_heads_logits():
    head = BinnedActionHead(6, TARGET, bins=8, hidden_dims=[])
    out = {head.output_key: head(torch.randn(5, 6))}
    assert ActionBinsCELoss(TARGET)(out, _batch()).total.shape == ()
