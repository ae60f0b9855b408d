"""The text-conditional diffusion generator: sampling and guidance, loss weights against closed
forms, training through the engine, resume, the condition encoder and bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from modalforge.engine import NonFiniteLossError, load_checkpoint, train
from modalforge.errors import ModalforgeError, SpecError
from modalforge.pipeline import build_pipeline
from modalforge.spec import load_spec, parse_spec
from modalforge_generators.diffusion import TextConditionalDiffusion
from modalforge_generators.noise_schedule import ddim_sample
from modalforge_generators.sampling import SamplingError
from tests.plugins.modalforge_generators.dark_bright import (
    TEXT,
    gan_spec,
    make_diffusion,
    registry,
)

RECIPE = Path(__file__).parents[3] / "apps/modalforge_apps/recipes/digits_diffusion.yaml"
PROMPTS = ["a red circle", "a blue square", "a handwritten seven"]


def diffusion_spec(params: dict | None = None, **kw: object) -> dict:
    return gan_spec(params, generator="diffusion", **kw)


def _perturb(model: TextConditionalDiffusion) -> None:
    """Non-zero output layers (they start at zero) and a non-zero null embedding."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    model.ema.module.load_state_dict(model.denoiser.state_dict())


# ---------------------------------------------------------------- sampling
@pytest.mark.parametrize(
    ("arch", "shape"), [("conv", (1, 8, 8)), ("conv", (3, 32, 32)), ("mlp", (3, 8, 8))]
)
def test_sample_shape_range_and_determinism(arch, shape):
    torch.manual_seed(0)
    # 9 images in batches of 4: the noise of each batch comes from the same generator
    model = make_diffusion(
        image_shape=shape, arch=arch, width=8, mults=[1, 2], blocks=1, sample_batch=4
    )
    _perturb(model)
    model.train()
    a = model.sample(PROMPTS, 3, generator=torch.Generator().manual_seed(3), steps=4)
    assert a.shape == (3, 3, *shape) and not a.requires_grad
    assert a.min() >= 0 and a.max() <= 1
    assert model.training and model.denoiser.training  # mode restored after sampling
    b = model.sample(PROMPTS, 3, generator=torch.Generator().manual_seed(3), steps=4)
    c = model.sample(PROMPTS, 3, generator=torch.Generator().manual_seed(4), steps=4)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, c)
    # stochastic (eta > 0) sampling also draws its step noise from the generator
    s1 = model.sample(PROMPTS, 2, generator=torch.Generator().manual_seed(3), steps=4, eta=1.0)
    s2 = model.sample(PROMPTS, 2, generator=torch.Generator().manual_seed(3), steps=4, eta=1.0)
    torch.testing.assert_close(s1, s2, rtol=0, atol=0)
    assert not torch.equal(s1, a[:, :2])
    # the EMA denoiser samples unless told otherwise
    with torch.no_grad():
        for p in model.denoiser.parameters():
            p.add_(0.1)
    d = model.sample(PROMPTS, 3, generator=torch.Generator().manual_seed(3), steps=4)
    live = model.sample(
        PROMPTS, 3, generator=torch.Generator().manual_seed(3), steps=4, use_ema=False
    )
    torch.testing.assert_close(d, a, rtol=0, atol=0)
    assert not torch.equal(live, a)


def _reference(model: TextConditionalDiffusion, prompts: list[str], scale: float, seed: int):
    """Guided DDIM built by hand: ε̂ = ε(null) + scale · (ε(text) − ε(null))."""
    net = model.ema
    text = model.embed_prompts(prompts, torch.device("cpu"))
    null = model.null_text.expand_as(text)
    g = torch.Generator().manual_seed(seed)
    shape = (len(prompts), *model.image_shape)

    def predict(x, t):  # noqa: ANN001, ANN202
        cond, uncond = net(x, t, text), net(x, t, null)
        return uncond + scale * (cond - uncond)

    x = ddim_sample(model.schedule, predict, lambda: torch.randn(shape, generator=g), steps=5)
    return ((x + 1) / 2).clamp(0, 1)


@pytest.mark.parametrize("scale", [0.0, 1.0, 3.0])
def test_classifier_free_guidance_mixes_conditional_and_null_predictions(scale):
    torch.manual_seed(0)
    model = make_diffusion()
    _perturb(model)
    model.eval()
    with torch.no_grad():
        got = model.sample(
            PROMPTS, 1, generator=torch.Generator().manual_seed(7), steps=5, guidance_scale=scale
        )
        want = _reference(model, PROMPTS, scale, 7)
    torch.testing.assert_close(got[:, 0], want, rtol=0, atol=1e-5)
    # guidance 0 is the unconditional model: with the same noise, the prompt makes no difference
    one, other = (
        model.sample([p], 2, generator=torch.Generator().manual_seed(1), guidance_scale=scale)
        for p in PROMPTS[:2]
    )
    assert torch.equal(one, other) == (scale == 0.0)


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_min_snr_weights_equal_their_closed_form(prediction):
    model = make_diffusion(prediction=prediction, min_snr_gamma=5.0, timesteps=1000)
    t = torch.tensor([0, 100, 500, 900, 999])
    snr = model.schedule.abar[t] / (1 - model.schedule.abar[t])
    want = torch.minimum(snr, torch.tensor(5.0)) / (snr if prediction == "eps" else snr + 1)
    torch.testing.assert_close(model._loss_weights(t), want)
    # at the noisiest step (SNR ≈ 0 < γ) ε keeps full weight and v almost none
    want_last = 1.0 if prediction == "eps" else 0.0
    assert model._loss_weights(t)[-1].item() == pytest.approx(want_last, abs=1e-6)
    assert torch.equal(make_diffusion()._loss_weights(t), torch.ones(5))


class _RecordingContext:
    """The part of the engine's StepContext a training step uses, recording the steps."""

    def __init__(self) -> None:
        self.steps: list[str] = []

    def autocast(self):  # noqa: ANN202
        import contextlib

        return contextlib.nullcontext()

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def step(self, name: str) -> None:
        self.steps.append(name)


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_training_loss_is_the_mse_to_the_target_at_random_steps(prediction):
    torch.manual_seed(0)
    model = make_diffusion(prediction=prediction, cond_drop_prob=0.0, min_snr_gamma=None)
    _perturb(model)
    images = torch.rand(6, 1, 8, 8)
    captions = ["dark", "bright", "dark", "bright", "dark", "bright"]
    tokens = torch.stack(
        [torch.as_tensor(model.condition_encoder.preprocess()(c)) for c in captions]
    )
    ctx = _RecordingContext()
    torch.manual_seed(3)
    loss = model.training_step({"image": images, TEXT: tokens}, ctx)["loss"]
    assert ctx.steps == ["denoiser"] and int(model.ema.updates) == 1
    # replay the step's draws: t, then ε
    torch.manual_seed(3)
    t = torch.randint(0, model.schedule.timesteps, (6,))
    eps = torch.randn(6, 1, 8, 8)
    x0 = images * 2 - 1
    a = model.schedule.abar[t][:, None, None, None]
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps
    target = eps if prediction == "eps" else a.sqrt() * eps - (1 - a).sqrt() * x0
    with torch.no_grad():
        out = model.denoiser(x_t, t, model.condition_encoder(tokens))
    assert loss.item() == pytest.approx(F.mse_loss(out, target).item(), rel=1e-5)
    assert all(p.grad is not None for p in model.condition_encoder.parameters() if p.requires_grad)
    assert all(p.grad is None for p in model.ema.parameters())


def test_bad_sample_requests_raise_clear_errors():
    model = make_diffusion()
    with pytest.raises(SamplingError, match="at least one prompt") as exc:
        model.sample([], 2)
    assert isinstance(exc.value, ModalforgeError)
    with pytest.raises(SamplingError, match="num_samples must be a positive integer"):
        model.sample(["dark"], 0)
    with pytest.raises(SamplingError, match="prompt 1 is empty"):
        model.sample(["dark", " "], 1)
    with pytest.raises(SamplingError, match="context_length=24"):
        model.sample(["x" * 40], 1)
    with pytest.raises(SamplingError, match=r"integer in \[1, 100\], got 0"):
        model.sample(["dark"], 1, steps=0)
    with pytest.raises(SamplingError, match=r"integer in \[1, 100\], got 101"):
        model.sample(["dark"], 1, steps=101)
    with pytest.raises(SamplingError, match="eta must be in"):
        model.sample(["dark"], 1, eta=1.5)
    with pytest.raises(SamplingError, match="guidance_scale must be >= 0"):
        model.sample(["dark"], 1, guidance_scale=-1.0)
    unguided = make_diffusion(cond_drop_prob=0.0)
    assert unguided.defaults["guidance_scale"] == 1.0
    with pytest.raises(SamplingError, match="cond_drop_prob > 0"):
        unguided.sample(["dark"], 1, guidance_scale=2.0)


def test_bad_configuration_names_the_field():
    with pytest.raises(SpecError, match=r"model\.encoders\.text") as exc:
        make_diffusion(encoders={})
    assert "diffusion generator" in str(exc.value) and "clip_text" in str(exc.value)
    with pytest.raises(SpecError, match=r"params\.guidance_scale.*cond_drop_prob"):
        make_diffusion(cond_drop_prob=0.0, guidance_scale=3.0)
    with pytest.raises(SpecError, match=r"params\.sample_steps"):
        make_diffusion(timesteps=100, sample_steps=200)
    with pytest.raises(SpecError, match=r"params\.mults"):
        make_diffusion(mults=[])
    with pytest.raises(SpecError, match=r"params\.prediction"):
        make_diffusion(prediction="x0")
    with pytest.raises(SpecError, match=r"params\.image.*not an image"):
        make_diffusion(image="text")
    with pytest.raises(SpecError, match=r"params\.token_dropout"):
        make_diffusion(token_dropout=1.0)


def test_optimizer_holds_denoiser_null_and_a_trainable_encoder_but_not_the_ema():
    model = make_diffusion()
    opt = model.configure_optimizers(0.01, 0.1)["denoiser"]
    ids = {id(p) for g in opt.param_groups for p in g["params"]}
    assert {id(p) for p in model.denoiser.parameters()} <= ids
    assert id(model.null_text) in ids
    assert {id(p) for p in model.condition_encoder.parameters()} <= ids
    assert not {id(p) for p in model.ema.parameters()} & ids
    frozen = make_diffusion(freeze_condition=True)
    opt = frozen.configure_optimizers(0.01, 0.1)["denoiser"]
    ids = {id(p) for g in opt.param_groups for p in g["params"]}
    assert not {id(p) for p in frozen.condition_encoder.parameters()} & ids
    frozen.train()
    assert frozen.denoiser.training and not frozen.condition_encoder.training


# ---------------------------------------------------------------- through the engine
def _prompt_means(model: TextConditionalDiffusion) -> list[float]:
    images = model.sample(["dark", "bright"], 32, generator=torch.Generator().manual_seed(0))
    return images.mean(dim=(1, 2, 3, 4)).tolist()


def test_diffusion_learns_the_condition_through_the_engine(tmp_path):
    spec = diffusion_spec({"width": 32}, epochs=100, log_every_steps=20, lr=0.002)
    pipeline = build_pipeline(parse_spec(spec), registry())
    dark, bright = _prompt_means(pipeline.model)
    assert abs(bright - dark) < 0.05  # untrained: the prompt makes no difference
    result = train(pipeline, tmp_path)
    dark, bright = _prompt_means(pipeline.model)
    assert dark < 0.35 and bright > 0.65, (dark, bright)  # data: 0.2 vs 0.8
    assert result.checkpoint is not None


def test_checkpoint_resume_equals_uninterrupted(tmp_path):
    spec = diffusion_spec({"token_dropout": 0.1, "min_snr_gamma": 5.0}, epochs=3)
    full = build_pipeline(parse_spec(spec), registry())
    train(full, tmp_path / "full")
    torch.manual_seed(123)  # other initial weights: the resume must restore everything
    resumed = build_pipeline(parse_spec(spec), registry())
    first = sorted((tmp_path / "full" / "checkpoints").glob("step_*"))[0]
    train(resumed, tmp_path / "res", resume=first)
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys() and "null_text" in a and "ema.updates" in a
    assert any(k.startswith("encoders.text.") for k in a)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
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
    spec = diffusion_spec(epochs=4, log_every_steps=1)
    pipeline = build_pipeline(parse_spec(spec), registry())
    denoiser = pipeline.model.denoiser
    calls = {"n": 0}
    original = type(denoiser).forward

    def forward(self, x, t, text):  # noqa: ANN001, ANN202
        calls["n"] += 1
        out = original(self, x, t, text)
        return out * float("nan") if calls["n"] > 10 else out

    monkeypatch.setattr(type(denoiser), "forward", forward)
    with pytest.raises(NonFiniteLossError, match="NaN or infinite at step 11") as exc:
        train(pipeline, tmp_path)
    assert "step_00000008" in str(exc.value)
    monkeypatch.undo()
    fresh = build_pipeline(parse_spec(spec), registry()).model
    assert load_checkpoint(tmp_path, model=fresh)["step"] == 8
    assert all(
        torch.isfinite(v).all() for v in fresh.state_dict().values() if v.is_floating_point()
    )


def test_checkpoint_of_another_generator_is_refused(tmp_path):
    train(build_pipeline(parse_spec(gan_spec(epochs=1)), registry()), tmp_path)
    other = build_pipeline(parse_spec(diffusion_spec()), registry()).model
    with pytest.raises(ModalforgeError, match="TextConditionalGAN"):
        load_checkpoint(tmp_path, model=other)


def test_digits_recipe_trains_through_the_engine_with_the_installed_plugins(tmp_path):
    spec = load_spec(RECIPE, ["train.max_steps=3", "train.progress=false"])
    pipeline = build_pipeline(spec)
    model = pipeline.model
    assert isinstance(model, TextConditionalDiffusion)
    assert model.image_shape == (1, 8, 8) and model.text_key == TEXT
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = train(pipeline, tmp_path)
    assert result.steps == 3 and int(model.ema.updates) == 3
    after = model.state_dict()
    for part in ("denoiser.", "encoders.text.", "ema.module.", "null_text"):
        assert any(not torch.equal(before[k], after[k]) for k in after if k.startswith(part))
    out = model.sample(["a handwritten seven"], 2, generator=torch.Generator().manual_seed(0))
    assert out.shape == (1, 2, 1, 8, 8)
    assert F.mse_loss(out[0, 0], out[0, 1]) > 0  # noise matters
