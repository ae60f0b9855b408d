"""The text-conditional GAN: its parts against closed forms, training through the engine, resume,
the condition encoder (frozen, loaded from a CLIP checkpoint) and bad input."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from modalforge.engine import NonFiniteLossError, load_checkpoint, save_checkpoint, train
from modalforge.errors import ModalforgeError, SpecError
from modalforge.pipeline import build_pipeline
from modalforge.spec import load_spec, parse_spec
from modalforge_generators.ema import EMA
from modalforge_generators.gan import TextConditionalGAN
from modalforge_generators.gan_losses import (
    discriminator_loss,
    generator_loss,
    mode_seeking_loss,
)
from modalforge_generators.gan_nets import num_resamplings, translate
from modalforge_generators.sampling import SamplingError
from modalforge_generators.text_condition import drop_tokens
from tests.plugins.modalforge_generators.dark_bright import (
    TEXT,
    gan_spec,
    make_gan,
    registry,
)

RECIPE = Path(__file__).parents[3] / "apps/modalforge_apps/recipes/digits_gan.yaml"


# ---------------------------------------------------------------- parts vs closed forms
@pytest.mark.parametrize("arch", ["conv", "mlp"])
def test_every_discriminator_layer_is_spectrally_normalised(arch):
    torch.manual_seed(0)
    gan = make_gan(arch=arch)
    layers = [m for m in gan.discriminator.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(layers) >= 3
    assert all(hasattr(m, "parametrizations") and "weight" in m.parametrizations for m in layers)
    with torch.no_grad():  # make every raw weight's largest singular value well above 1
        for m in layers:
            m.parametrizations.weight.original.mul_(5.0)
    gan.train()
    x, text = torch.rand(4, 1, 8, 8), torch.randn(4, gan.condition_encoder.output.dim)
    for _ in range(30):  # one power iteration per forward in train mode
        gan.discriminator(x, text)
    gan.eval()
    for m in layers:
        w = m.weight.detach()
        sigma = torch.linalg.matrix_norm(w.reshape(w.shape[0], -1), ord=2)
        assert sigma.item() == pytest.approx(1.0, abs=2e-3)
        raw = m.parametrizations.weight.original.detach()
        assert torch.linalg.matrix_norm(raw.reshape(raw.shape[0], -1), ord=2) > 2.0


@pytest.mark.parametrize("arch", ["conv", "mlp"])
def test_projection_discriminator_is_psi_plus_inner_product(arch):
    torch.manual_seed(1)
    gan = make_gan(arch=arch).eval()
    d = gan.discriminator
    x, text = torch.rand(5, 1, 8, 8), torch.randn(5, gan.condition_encoder.output.dim)
    with torch.no_grad():
        phi = d.features(x)
        psi = phi @ d.psi.weight.T + d.psi.bias
        embed = text @ d.embed.weight.T
        expected = psi.squeeze(1) + (embed * phi).sum(1)
        got = d(x, text)
        # the text only enters through the inner product: D(x, c1) - D(x, c2) = <e1 - e2, φ(x)>
        other = torch.randn_like(text)
        diff = d(x, text) - d(x, other)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(diff, ((embed - other @ d.embed.weight.T) * phi).sum(1))


def test_losses_equal_their_closed_forms():
    real = torch.tensor([2.0, 0.5, -1.0])
    fake = torch.tensor([-2.0, 0.3, 1.5])
    mis = torch.tensor([0.0, -3.0, 0.5])
    # hinge: mean relu(1 - real) + mean relu(1 + fake) + w * mean relu(1 + mismatch)
    hinge = (0 + 0.5 + 2.0) / 3 + (0 + 1.3 + 2.5) / 3 + 0.5 * (1.0 + 0 + 1.5) / 3
    assert discriminator_loss("hinge", real, fake, mis, weight=0.5).item() == pytest.approx(hinge)
    assert generator_loss("hinge", fake).item() == pytest.approx(-(-2.0 + 0.3 + 1.5) / 3)

    def sp(v: float) -> float:
        return math.log1p(math.exp(v))

    ns = sum(sp(-r) for r in real.tolist()) / 3 + sum(sp(f) for f in fake.tolist()) / 3
    ns_mis = ns + 2.0 * sum(sp(m) for m in mis.tolist()) / 3
    assert discriminator_loss("non_saturating", real, fake).item() == pytest.approx(ns)
    got = discriminator_loss("non_saturating", real, fake, mis, weight=2.0)
    assert got.item() == pytest.approx(ns_mis)
    g_ns = sum(-math.log(1 / (1 + math.exp(-f))) for f in fake.tolist()) / 3
    assert generator_loss("non_saturating", fake).item() == pytest.approx(g_ns)

    a, b = torch.zeros(2, 3), torch.full((2, 3), 0.5)
    za, zb = torch.zeros(2, 4), torch.full((2, 4), 2.0)
    assert mode_seeking_loss(a, b, za, zb).item() == pytest.approx(1 / (0.25 + 1e-5))


def test_ema_update_equals_the_closed_form():
    torch.manual_seed(0)
    live = nn.Linear(3, 2)
    ema = EMA(live, decay=0.9, warmup=False)
    p0 = [p.detach().clone() for p in live.parameters()]
    with torch.no_grad():
        for p in live.parameters():
            p.add_(1.0)
    ema.update(live)
    for e, q, p in zip(ema.module.parameters(), p0, live.parameters(), strict=True):
        torch.testing.assert_close(e, 0.9 * q + 0.1 * p)
    assert int(ema.updates) == 1 and "updates" in ema.state_dict()

    warm = EMA(live, decay=0.99, warmup=True)  # d_n = min(0.99, (1 + n) / (10 + n))
    start = [p.detach().clone() for p in warm.module.parameters()]
    expected = start
    for n in range(3):
        with torch.no_grad():
            for p in live.parameters():
                p.mul_(-0.5)
        d = min(0.99, (1 + n) / (10 + n))
        assert warm.current_decay() == pytest.approx(d)
        warm.update(live)
        live_p = [p.detach() for p in live.parameters()]
        expected = [d * e + (1 - d) * p for e, p in zip(expected, live_p, strict=True)]
    for e, x in zip(warm.module.parameters(), expected, strict=True):
        torch.testing.assert_close(e, x)
    assert not any(p.requires_grad for p in warm.parameters())


def test_translation_shifts_by_whole_pixels_and_keeps_gradients():
    torch.manual_seed(0)
    x = torch.zeros(16, 1, 8, 8)
    x[:, :, 3, 4] = 1.0
    x.requires_grad_(True)
    y = translate(x, 0.25)  # shifts up to 2 pixels
    assert y.shape == x.shape
    ones = (y.detach() == 1.0).nonzero()[:, 2:]
    assert len(ones) == 16 and (y.detach().sum((1, 2, 3)) == 1).all()
    assert ((ones - torch.tensor([3, 4])).abs() <= 2).all() and (ones != torch.tensor([3, 4])).any()
    (y * y.detach()).sum().backward()  # gradient flows back to the lit pixel only
    assert (x.grad[:, 0, 3, 4] == 1).all() and x.grad.sum() == 16


def test_token_dropout_deletes_inner_tokens_and_closes_up():
    ids = torch.tensor([[9, 1, 2, 3, 4, 8, 0, 0], [9, 5, 8, 0, 0, 0, 0, 0]])
    torch.manual_seed(0)
    out = drop_tokens(ids, 0.5, sot=9, eot=8)
    for row, src in zip(out.tolist(), ids.tolist(), strict=True):
        kept = [t for t in row if t != 0]
        assert kept[0] == 9 and kept[-1] == 8 and row[: len(kept)] == kept
        inner = [t for t in src[1:] if t not in (0, 8)]
        assert all(t in inner for t in kept[1:-1])
        assert kept[1:-1] == [t for t in inner if t in kept[1:-1]]  # order kept
    assert (drop_tokens(ids, 0.0, 9, 8) == ids).all()
    assert (drop_tokens(ids, 0.999999, 9, 8)[:, :2] == torch.tensor([[9, 8], [9, 8]])).all()


def test_resampling_counts_fit_the_image_size():
    assert [num_resamplings(s, s) for s in (8, 32, 28, 7, 4)] == [2, 3, 2, 0, 1]


# ---------------------------------------------------------------- sampling
@pytest.mark.parametrize(
    ("arch", "shape"), [("conv", (1, 8, 8)), ("conv", (3, 32, 32)), ("mlp", (3, 32, 32))]
)
def test_sample_shape_range_and_determinism(arch, shape):
    torch.manual_seed(0)
    gan = make_gan(arch=arch, image_shape=shape).train()
    prompts = ["a red circle", "a blue square", "a handwritten seven"]
    a = gan.sample(prompts, 4, generator=torch.Generator().manual_seed(3))
    assert a.shape == (3, 4, *shape) and not a.requires_grad
    assert a.min() >= 0 and a.max() <= 1
    assert gan.training and gan.discriminator.training  # mode restored after sampling
    b = gan.sample(prompts, 4, generator=torch.Generator().manual_seed(3))
    c = gan.sample(prompts, 4, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, c)
    # sampling uses the EMA generator unless told otherwise; it differs after a G update
    with torch.no_grad():
        for p in gan.generator.parameters():
            p.add_(0.1)
    d = gan.sample(prompts, 4, generator=torch.Generator().manual_seed(3))
    live = gan.sample(prompts, 4, generator=torch.Generator().manual_seed(3), use_ema=False)
    torch.testing.assert_close(d, a, rtol=0, atol=0)
    assert not torch.equal(live, a)


def test_bad_sample_requests_raise_clear_errors():
    gan = make_gan()
    with pytest.raises(SamplingError, match="at least one prompt") as exc:
        gan.sample([], 2)
    assert isinstance(exc.value, ValueError) and isinstance(exc.value, ModalforgeError)
    with pytest.raises(SamplingError, match="num_samples must be a positive integer"):
        gan.sample(["a one"], 0)
    with pytest.raises(SamplingError, match="one str"):
        gan.sample("a one", 2)
    with pytest.raises(SamplingError, match="prompt 1 is empty"):
        gan.sample(["a one", "  "], 2)
    with pytest.raises(SamplingError, match="context_length=24"):
        gan.sample(["a one", "x" * 40], 2)
    with pytest.raises(SamplingError, match="not a str"):
        gan.sample(["a one", 3], 2)


# ---------------------------------------------------------------- construction errors
def test_bad_configuration_names_the_field():
    with pytest.raises(SpecError, match=r"model\.encoders\.text") as exc:
        make_gan(encoders={})
    assert "clip_text" in str(exc.value)
    with pytest.raises(SpecError, match=r"model\.generator\.params\.ema_decay"):
        make_gan(ema_decay=1.0)
    with pytest.raises(SpecError, match=r"model\.generator\.params\.d_steps"):
        make_gan(d_steps=0)
    with pytest.raises(SpecError, match=r"model\.generator\.params\.condition.*no modality"):
        make_gan(condition="caption")
    with pytest.raises(SpecError, match=r"model\.generator\.params\.image.*not an image"):
        make_gan(image="text")


def test_spec_validation_rejects_unknown_loss():
    spec = gan_spec(gan={"loss": "wasserstein"})
    with pytest.raises(SpecError, match=r"model\.generator\.params\.loss"):
        build_pipeline(parse_spec(spec), registry())


# ---------------------------------------------------------------- the condition encoder
def _save_clip_run(run: Path, encoder: nn.Module) -> None:
    """A checkpoint laid out as a contrastive pipeline's: ``encoders.<m>.`` + ``projections.``."""
    clip = nn.Module()
    clip.encoders = nn.ModuleDict({"text": encoder, "image": nn.Linear(4, 4)})
    clip.projections = nn.ModuleDict({"text": nn.Linear(8, 8, bias=False)})
    save_checkpoint(run, model=clip, step=5, epoch=1)


def test_condition_checkpoint_loads_the_exact_weights(tmp_path):
    torch.manual_seed(7)
    source = make_gan().condition_encoder
    _save_clip_run(tmp_path / "clip", source)
    torch.manual_seed(8)
    gan = make_gan(condition_checkpoint=str(tmp_path / "clip"))
    got = gan.condition_encoder.state_dict()
    assert got.keys() == source.state_dict().keys()
    for k, v in source.state_dict().items():
        torch.testing.assert_close(got[k], v, rtol=0, atol=0)
    fresh = make_gan().condition_encoder.state_dict()
    assert not torch.equal(fresh["token_embedding.weight"], got["token_embedding.weight"])


def test_condition_checkpoint_errors_name_the_param(tmp_path):
    field = r"model\.generator\.params\.condition_checkpoint"
    with pytest.raises(SpecError, match=field + ".*does not exist") as exc:
        make_gan(condition_checkpoint=str(tmp_path / "nowhere"))
    assert exc.value.hint and "contrastive" in exc.value.hint
    other = nn.Module()
    other.encoders = nn.ModuleDict({"image": nn.Linear(4, 4)})
    save_checkpoint(tmp_path / "image_only", model=other, step=1, epoch=1)
    with pytest.raises(SpecError, match=field + ".*no weights under 'encoders.text.'"):
        make_gan(condition_checkpoint=str(tmp_path / "image_only"))
    _save_clip_run(tmp_path / "wider", make_gan(text_width=32).condition_encoder)
    with pytest.raises(SpecError, match=field + ".*shape-mismatched"):
        make_gan(condition_checkpoint=str(tmp_path / "wider"))


def test_frozen_condition_encoder_gets_no_gradient_and_stays_in_eval(tmp_path):
    pipeline = build_pipeline(
        parse_spec(gan_spec(gan={"freeze_condition": True}, epochs=2)), registry()
    )
    gan = pipeline.model
    encoder = gan.condition_encoder
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    opts = gan.configure_optimizers(0.01, 0.0)
    ids = {id(p) for o in opts.values() for g in o.param_groups for p in g["params"]}
    assert not ids & {id(p) for p in encoder.parameters()}
    seen_grads: list[bool] = []
    hook = encoder.register_forward_hook(
        lambda m, i, out: seen_grads.append(out.requires_grad or m.training)
    )
    train(pipeline, tmp_path)
    hook.remove()
    assert seen_grads and not any(seen_grads)  # no autograd graph, eval mode, every call
    assert all(p.grad is None for p in encoder.parameters())
    for k, v in encoder.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    gan.train()
    assert gan.generator.training and not encoder.training


def test_trainable_condition_encoder_learns_with_the_discriminator():
    gan = make_gan()
    opts = gan.configure_optimizers(0.01, 0.0)
    d_ids = {id(p) for g in opts["discriminator"].param_groups for p in g["params"]}
    g_ids = {id(p) for g in opts["generator"].param_groups for p in g["params"]}
    enc = {id(p) for p in gan.condition_encoder.parameters()}
    assert enc <= d_ids and not enc & g_ids
    assert not {id(p) for p in gan.ema.parameters()} & (d_ids | g_ids)


# ---------------------------------------------------------------- through the engine
def _prompt_means(gan: TextConditionalGAN) -> list[float]:
    images = gan.sample(["dark", "bright"], 64, generator=torch.Generator().manual_seed(0))
    return images.mean(dim=(1, 2, 3, 4)).tolist()


def test_gan_learns_the_condition_through_the_engine(tmp_path):
    # constant images per prompt: nothing to diversify, so no mode-seeking term
    spec = gan_spec(epochs=50, gan={"diversity_weight": 0.0})
    pipeline = build_pipeline(parse_spec(spec), registry())
    dark, bright = _prompt_means(pipeline.model)
    assert abs(bright - dark) < 0.05  # untrained: the prompt makes no difference
    result = train(pipeline, tmp_path)
    dark, bright = _prompt_means(pipeline.model)
    assert dark < 0.35 and bright > 0.65, (dark, bright)  # data: 0.2 vs 0.8
    assert {"d_loss", "g_loss", "d_real", "d_fake", "d_mismatch"} <= set(_last_train_log(tmp_path))
    assert result.checkpoint is not None


def _last_train_log(run: Path) -> dict:
    import json

    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [json.loads(x) for x in lines if json.loads(x)["split"] == "train"][-1]


def test_checkpoint_resume_equals_uninterrupted(tmp_path):
    spec = gan_spec(
        epochs=3, gan={"r1_gamma": 1.0, "augment": "translation", "diversity_weight": 0.1}
    )
    spec["model"]["generator"]["params"]["token_dropout"] = 0.1
    full = build_pipeline(parse_spec(spec), registry())
    train(full, tmp_path / "full")
    torch.manual_seed(123)  # other initial weights: the resume must restore everything
    resumed = build_pipeline(parse_spec(spec), registry())
    first = sorted((tmp_path / "full" / "checkpoints").glob("step_*"))[0]
    train(resumed, tmp_path / "res", resume=first)
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    assert any(k.startswith("ema.module.") for k in a) and "ema.updates" in a
    assert any(k.startswith("encoders.text.") for k in a)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
    # a fresh model loads the final checkpoint and samples exactly what the trained one does
    torch.manual_seed(5)
    loaded = build_pipeline(parse_spec(spec), registry()).model
    load_checkpoint(tmp_path / "full", model=loaded)
    g = torch.Generator()
    torch.testing.assert_close(
        loaded.sample(["dark"], 3, generator=g.manual_seed(1)),
        full.model.sample(["dark"], 3, generator=g.manual_seed(1)),
        rtol=0,
        atol=0,
    )


def test_non_finite_loss_stops_with_a_clear_error_and_keeps_the_checkpoint(tmp_path, monkeypatch):
    spec = gan_spec(epochs=4, log_every_steps=1, gan={"diversity_weight": 0.0})
    pipeline = build_pipeline(parse_spec(spec), registry())
    gan = pipeline.model
    calls = {"n": 0}
    original = type(gan.discriminator).score

    def score(self, h, text):  # noqa: ANN001, ANN202
        calls["n"] += 1
        out = original(self, h, text)
        return out * float("nan") if calls["n"] > 40 else out

    monkeypatch.setattr(type(gan.discriminator), "score", score)
    # 4 D scores per step (real, generated, mismatched; generated in the G update): step 11 is bad
    with pytest.raises(NonFiniteLossError, match="NaN or infinite at step 11") as exc:
        train(pipeline, tmp_path)
    assert "last good checkpoint" in str(exc.value) and "step_00000008" in str(exc.value)
    monkeypatch.undo()
    torch.manual_seed(1)
    fresh = build_pipeline(parse_spec(spec), registry()).model
    state = load_checkpoint(tmp_path, model=fresh)
    assert state["step"] == 8
    assert all(
        torch.isfinite(v).all() for v in fresh.state_dict().values() if v.is_floating_point()
    )


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    pipeline = build_pipeline(parse_spec(gan_spec(epochs=1)), registry())
    train(pipeline, tmp_path)
    other = build_pipeline(parse_spec(gan_spec(gan={"arch": "mlp"})), registry()).model
    with pytest.raises(ModalforgeError, match="different model architecture"):
        load_checkpoint(tmp_path, model=other)


def test_digits_recipe_trains_through_the_engine_with_the_installed_plugins(tmp_path):
    spec = load_spec(RECIPE, ["train.max_steps=3", "train.progress=false"])
    pipeline = build_pipeline(spec)
    gan = pipeline.model
    assert isinstance(gan, TextConditionalGAN)
    assert gan.image_shape == (1, 8, 8) and gan.text_key == TEXT
    before = {k: v.clone() for k, v in gan.state_dict().items()}
    result = train(pipeline, tmp_path)
    assert result.steps == 3 and int(gan.ema.updates) == 3
    after = gan.state_dict()
    for part in ("generator.", "discriminator.", "encoders.text.", "ema.module."):
        assert any(not torch.equal(before[k], after[k]) for k in after if k.startswith(part))
    out = gan.sample(["a handwritten seven"], 2, generator=torch.Generator().manual_seed(0))
    assert out.shape == (1, 2, 1, 8, 8)
    assert F.mse_loss(out[0, 0], out[0, 1]) > 0  # noise matters
