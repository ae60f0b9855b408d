"""``diffusion``: a denoising diffusion model conditioned on a text embedding (DALL·E 2 flavour).

DALL·E 2 (Ramesh et al. 2022) decodes images by diffusion conditioned on CLIP embeddings. Here
the condition is the embedding of the prompt by any registered text encoder given as the
condition encoder (``model.encoders.<text modality>``, e.g. ``clip_text``; trained jointly with
the denoiser, frozen, or initialised from a CLIP run), as in GLIDE/Imagen's text-conditional
decoders; there is no separate prior.

- **Training** (Ho et al. 2020): ``x_0`` is the image scaled to ``[-1, 1]``; a random step ``t``
  and noise ``ε`` give ``x_t = √ᾱ_t · x_0 + √(1 − ᾱ_t) · ε`` (cosine or linear schedule,
  :mod:`.noise_schedule`); the denoiser (a small U-Net, or an MLP for tiny images) predicts
  ``ε`` or ``v`` with a mean squared error, optionally weighted by min-SNR-γ (Hang et al. 2023).
- **Classifier-free guidance** (Ho & Salimans 2022): with ``cond_drop_prob`` a training
  sample's text embedding is replaced by a learned null embedding; sampling mixes
  ``uncond + s · (cond − uncond)`` with ``guidance_scale`` s (1: off).
- **Sampling**: DDIM (Song et al. 2021) over ``sample_steps`` of the ``timesteps`` training
  steps, ``eta`` 0 (deterministic given the initial noise) to 1 (DDPM-like); predicted ``x_0``
  is clipped to the data range at each step. All noise comes from the caller's
  ``torch.Generator``, so equal seeds give equal images.
- **EMA** of the denoiser's weights (``ema_decay``) is what :meth:`sample` uses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor, nn

from modalforge.contracts import Encoder, Generator
from modalforge.engine.schedule import param_groups
from modalforge.errors import SpecError
from modalforge.modality import Modality
from modalforge_generators.diffusion_nets import ConvDenoiser, MLPDenoiser
from modalforge_generators.ema import EMA
from modalforge_generators.noise_schedule import (
    NoiseSchedule,
    Prediction,
    Schedule,
    ddim_sample,
)
from modalforge_generators.sampling import SamplingError
from modalforge_generators.text_condition import (
    PARAMS,
    TextConditioned,
    check_prompts,
    fixed_size_image,
)

if TYPE_CHECKING:
    from modalforge.engine.step import StepContext


class TextConditionalDiffusion(TextConditioned, Generator):
    """Text embedding → image by iterative denoising (see the module docstring).

    Parameters:

    - ``image`` / ``condition``: modality names (default: the data set's only image / text one).
    - ``arch``: ``conv`` (U-Net: ``width`` channels × ``mults`` per resolution, ``blocks``
      residual blocks each) or ``mlp`` (``width`` units, ``mlp_layers`` residual blocks; fast for
      8×8 digits). ``emb_dim``: timestep/condition embedding size; ``dropout``.
    - ``timesteps``, ``schedule`` (``cosine``/``linear``), ``prediction`` (``v``: the default,
      predicts ``x_0`` well at the noisiest steps, which set an image's overall brightness and
      layout; ``eps``), ``min_snr_gamma`` (``None``: plain MSE).
    - ``cond_drop_prob``: the null-condition rate that makes guidance possible.
    - ``guidance_scale`` (default 2 when ``cond_drop_prob > 0``, else 1), ``sample_steps``,
      ``eta``: the defaults of :meth:`sample`. ``sample_batch``: images denoised together
      (a CPU runs a small U-Net fastest on ~32 at a time; guidance doubles the batch).
    - ``ema_decay`` / ``ema_warmup``; ``betas``: AdamW's.
    - ``token_dropout``, ``freeze_condition``, ``condition_checkpoint``: the condition encoder's
      treatment (:class:`~.text_condition.TextConditioned`).

    One optimizer, ``denoiser``: the denoiser, the null embedding and a trainable condition
    encoder (AdamW; ``train.weight_decay`` on weights only).
    """

    def __init__(
        self,
        modalities: Mapping[str, Modality],
        encoders: Mapping[str, Encoder] | None = None,
        image: str | None = None,
        condition: str | None = None,
        arch: Literal["conv", "mlp"] = "conv",
        width: int = 64,
        mults: Sequence[int] = (1, 2, 2),
        blocks: int = 2,
        mlp_layers: int = 3,
        emb_dim: int | None = None,
        dropout: float = 0.0,
        timesteps: int = 1000,
        schedule: Schedule = "cosine",
        prediction: Prediction = "v",
        min_snr_gamma: float | None = None,
        cond_drop_prob: float = 0.1,
        guidance_scale: float | None = None,
        sample_steps: int = 50,
        sample_batch: int = 32,
        eta: float = 0.0,
        ema_decay: float = 0.999,
        ema_warmup: bool = True,
        betas: tuple[float, float] = (0.9, 0.999),
        token_dropout: float = 0.0,
        freeze_condition: bool = False,
        condition_checkpoint: str | None = None,
    ) -> None:
        super().__init__()
        for name, value, ok, need in (
            ("width", width, width >= 1, ">= 1"),
            ("blocks", blocks, blocks >= 1, ">= 1"),
            ("mlp_layers", mlp_layers, mlp_layers >= 1, ">= 1"),
            ("mults", mults, len(mults) >= 1 and all(m >= 1 for m in mults), "positive ints"),
            ("emb_dim", emb_dim, emb_dim is None or emb_dim >= 2, ">= 2 (or null)"),
            ("dropout", dropout, 0.0 <= dropout < 1.0, "in [0, 1)"),
            ("timesteps", timesteps, timesteps >= 2, ">= 2"),
            ("sample_batch", sample_batch, sample_batch >= 1, ">= 1"),
            ("schedule", schedule, schedule in ("cosine", "linear"), "'cosine' or 'linear'"),
            ("prediction", prediction, prediction in ("eps", "v"), "'eps' or 'v'"),
            ("min_snr_gamma", min_snr_gamma, min_snr_gamma is None or min_snr_gamma > 0, "> 0"),
            ("cond_drop_prob", cond_drop_prob, 0.0 <= cond_drop_prob < 1.0, "in [0, 1)"),
            ("ema_decay", ema_decay, 0.0 <= ema_decay < 1.0, "in [0, 1)"),
            ("betas", betas, all(0.0 <= b < 1.0 for b in betas), "each in [0, 1)"),
            ("arch", arch, arch in ("conv", "mlp"), "'conv' or 'mlp'"),
        ):
            if not ok:
                raise SpecError(f"{PARAMS}.{name}", f"must be {need}, got {value!r}")
        img = fixed_size_image(modalities, image)
        self.setup_text_condition(
            modalities,
            encoders,
            condition,
            condition_checkpoint=condition_checkpoint,
            freeze_condition=freeze_condition,
            token_dropout=token_dropout,
            who="the diffusion generator",
        )
        self.image_key = img.name
        self.image_shape: tuple[int, int, int] = tuple(img.shape)  # type: ignore[assignment]
        self.cond_drop_prob = cond_drop_prob
        self.min_snr_gamma = min_snr_gamma
        self.sample_batch = sample_batch
        self.betas = (float(betas[0]), float(betas[1]))
        self.schedule = NoiseSchedule(timesteps, schedule, prediction)
        if guidance_scale is None:
            guidance_scale = 2.0 if cond_drop_prob > 0 else 1.0
        self.defaults: dict[str, Any] = {}
        self.defaults = self._settings(steps=sample_steps, guidance_scale=guidance_scale, eta=eta)
        text_dim = self.condition_encoder.output.dim
        if arch == "conv":
            self.denoiser: nn.Module = ConvDenoiser(
                self.image_shape, text_dim, width, tuple(mults), blocks, emb_dim, dropout
            )
        else:
            self.denoiser = MLPDenoiser(
                self.image_shape, text_dim, width, mlp_layers, emb_dim, dropout
            )
        # The "no prompt" condition of classifier-free guidance, learned with the denoiser.
        self.null_text = nn.Parameter(torch.zeros(text_dim))
        self.ema = EMA(self.denoiser, ema_decay, warmup=ema_warmup)

    # ------------------------------------------------------------------ training
    def configure_optimizers(
        self, lr: float, weight_decay: float
    ) -> dict[str, torch.optim.Optimizer]:
        """``denoiser``: its weights, the null embedding and a trainable condition encoder's."""
        named = list(self.denoiser.named_parameters(prefix="denoiser"))
        named.append(("null_text", self.null_text))
        if not self.freeze_condition:
            named += list(self.encoders.named_parameters(prefix="encoders"))
        groups = param_groups(named, weight_decay)
        return {"denoiser": torch.optim.AdamW(groups, lr=lr, betas=self.betas)}

    def training_step(self, batch: Mapping[str, Tensor], ctx: StepContext) -> dict[str, Tensor]:
        x0 = batch[self.image_key] * 2 - 1
        tokens = self.training_tokens(batch[self.text_key])
        n = x0.shape[0]
        with ctx.autocast():
            text = self.embed_text(tokens)
            if self.cond_drop_prob > 0:
                drop = torch.rand(n, device=text.device) < self.cond_drop_prob
                text = torch.where(drop[:, None], self.null_text.to(text.dtype), text)
            t = torch.randint(0, self.schedule.timesteps, (n,), device=x0.device)
            noise = torch.randn_like(x0)
            x_t = self.schedule.add_noise(x0, noise, t)
            out = self.denoiser(x_t, t, text)
            target = self.schedule.target(x0, noise, t)
            per_sample = (out.float() - target.float()).pow(2).flatten(1).mean(dim=1)
            loss = (self._loss_weights(t) * per_sample).mean()
        ctx.backward(loss)
        ctx.step("denoiser")
        self.ema.update(self.denoiser)
        return {"loss": loss.detach()}

    def _loss_weights(self, t: Tensor) -> Tensor:
        """min-SNR-γ weights, expressed for the chosen prediction; 1 without ``min_snr_gamma``."""
        if self.min_snr_gamma is None:
            return torch.ones(t.shape, device=t.device)
        snr = self.schedule.snr(t).float()
        clipped = snr.clamp(max=self.min_snr_gamma)
        return clipped / snr if self.schedule.prediction == "eps" else clipped / (snr + 1)

    # ------------------------------------------------------------------ sampling
    def _settings(self, **given: Any) -> dict[str, Any]:  # noqa: ANN401
        """Sampling settings: given values, else the defaults. Bad values are a SpecError
        naming the parameter when building, a SamplingError when sampling."""
        out = {k: (self.defaults[k] if v is None else v) for k, v in given.items()}
        steps, scale, eta = out["steps"], out["guidance_scale"], out["eta"]
        building = not self.defaults

        def fail(param: str, message: str, hint: str) -> Exception:
            if building:
                return SpecError(f"{PARAMS}.{param}", message, hint=hint)
            return SamplingError(message, hint=hint)

        timesteps = self.schedule.timesteps
        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= timesteps:
            raise fail(
                "sample_steps",
                f"sampling steps must be an integer in [1, {timesteps}], got {steps!r}",
                "25-100 DDIM steps are usual",
            )
        if scale < 0:
            raise fail("guidance_scale", f"guidance_scale must be >= 0, got {scale}", "1: off")
        if scale != 1 and self.cond_drop_prob == 0:
            raise fail(
                "guidance_scale",
                f"guidance_scale={scale} needs a model trained with cond_drop_prob > 0 (its "
                "null condition is untrained)",
                "use guidance_scale 1, or train with cond_drop_prob: 0.1",
            )
        if not 0.0 <= eta <= 1.0:
            raise fail("eta", f"eta must be in [0, 1], got {eta}", "0: DDIM, 1: DDPM-like")
        return {"steps": int(steps), "guidance_scale": float(scale), "eta": float(eta)}

    @torch.no_grad()
    def sample(
        self,
        condition: Sequence[str],
        num_samples: int,
        generator: torch.Generator | None = None,
        *,
        steps: int | None = None,
        guidance_scale: float | None = None,
        eta: float | None = None,
        use_ema: bool = True,
    ) -> Tensor:
        """Images ``(P, num_samples, C, H, W)`` in ``[0, 1]`` for P prompts, in eval mode.

        Settings left ``None`` take the configured defaults. Prompts are checked and tokenized
        like the GAN's (an empty or overlong prompt, or ``num_samples < 1``, is a
        :class:`SamplingError`). Initial and per-step noise come from ``generator`` (on its
        device; the default RNG if ``None``), drawn batch by batch of ``sample_batch`` images:
        equal seeds and batch sizes give equal images. ``use_ema=False`` samples the live
        denoiser.
        """
        prompts = check_prompts(condition, num_samples)
        opts = self._settings(steps=steps, guidance_scale=guidance_scale, eta=eta)
        device = self.null_text.device
        was_training = self.training
        self.eval()
        try:
            text = self.embed_prompts(prompts, device).repeat_interleave(num_samples, dim=0)
            net = self.ema if use_ema else self.denoiser
            images = torch.cat(
                [
                    self._denoise(net, text[i : i + self.sample_batch], generator, **opts)
                    for i in range(0, text.shape[0], self.sample_batch)
                ]
            )
        finally:
            self.train(was_training)
        return images.view(len(prompts), num_samples, *self.image_shape)

    def _denoise(
        self,
        net: nn.Module,
        text: Tensor,
        generator: torch.Generator | None,
        steps: int,
        guidance_scale: float,
        eta: float,
    ) -> Tensor:
        """The DDIM loop from pure noise; returns images in ``[0, 1]``."""
        n = text.shape[0]
        shape = (n, *self.image_shape)
        source = generator.device if generator is not None else "cpu"
        guided = guidance_scale != 1.0
        if guided:
            text = torch.cat([text, self.null_text.to(text.dtype).expand(n, -1)])

        def predict(x: Tensor, t: Tensor) -> Tensor:
            if not guided:
                return net(x, t, text)
            cond, uncond = net(torch.cat([x, x]), torch.cat([t, t]), text).chunk(2)
            return uncond + guidance_scale * (cond - uncond)

        def noise() -> Tensor:
            return torch.randn(shape, generator=generator, device=source).to(text)

        x = ddim_sample(self.schedule, predict, noise, steps=steps, eta=eta)
        return ((x + 1) / 2).clamp(0.0, 1.0)
