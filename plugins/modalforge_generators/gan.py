"""``text_gan``: a text-conditional GAN with a projection discriminator.

Images are generated from noise and the embedding of a prompt by any registered text encoder
given as the condition encoder (``model.encoders.<text modality>``, e.g. ``clip_text``).

Guards against mode collapse and against ignoring the condition. On by default:

- **Spectral norm** on every discriminator layer (Miyato et al. 2018): each D layer is
  1-Lipschitz, so D's gradients to G stay informative and training does not blow up.
- **Projection discriminator** (Miyato & Koyama 2018): ``D(x, c) = ψ(φ(x)) + <embed(c), φ(x)>``
  scores image–text agreement directly, the strongest known way to make D use the condition.
- **Mismatched-text negatives** (GAN-INT-CLS, Reed et al. 2016; ``mismatch_weight``): a real
  image paired with another batch sample's caption is a negative for D, so D must check that
  an image shows what the text says, not only that it looks real; it is also what trains a
  jointly learned text encoder.
- **Hinge loss** (``loss: non_saturating`` is the original GAN objective).
- **Noise and condition in every generator layer** (FiLM-modulated norms in the conv generator,
  concatenation in the MLP one), so neither is washed out by depth.
- **Mode seeking** (MSGAN, Mao et al. 2019; ``diversity_weight``): G is penalised when two
  noises give similar images for one prompt. Without it G collapsed to one image per digit.
- **EMA generator** (``ema_decay``): :meth:`sample` uses an exponential moving average of G's
  weights, smoother and more faithful than the last iterate.

Off by default (set them when the data call for it):

- **Caption token dropout** (``token_dropout``, needs a caption tokenizer such as
  ``clip_text``'s): random tokens of training captions are deleted, so a text encoder trained
  on a few templates generalises to prompts that differ slightly from them (on the digits,
  "a handwritten seven" without the captions' full stop dropped from 99% to 50% accuracy
  without it).
- **DiffAugment translation** (``augment: translation``): random shifts of real and generated
  images before D, so D cannot memorise a small data set.
- **R1 penalty** on real images (``r1_gamma``): a zero-centred gradient penalty that damps D's
  oscillations.

The condition encoder may be trained with the discriminator (its mismatch objective teaches it
the text), frozen (``freeze_condition``: no gradients, always in eval mode), and initialised from
a CLIP run (``condition_checkpoint``). The generator reads the embedding detached: were G allowed
to move the encoder it could blur the embeddings D relies on to judge the condition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
from torch import Tensor

from modalforge.contracts import Encoder, Generator
from modalforge.engine.schedule import param_groups
from modalforge.errors import SpecError
from modalforge.modality import Modality
from modalforge_generators.ema import EMA
from modalforge_generators.gan_losses import (
    discriminator_loss,
    generator_loss,
    mode_seeking_loss,
    r1_penalty,
)
from modalforge_generators.gan_nets import (
    ConvGenerator,
    MLPGenerator,
    ProjectionDiscriminator,
    conv_features,
    mlp_features,
    translate,
)
from modalforge_generators.text_condition import (
    PARAMS,
    TextConditioned,
    check_prompts,
    fixed_size_image,
)


class TextConditionalGAN(TextConditioned, Generator):
    """Noise + projected text embedding → image, trained against a projection discriminator.

    Parameters (see the module docstring for the anti-collapse measures):

    - ``image`` / ``condition``: modality names (default: the data set's only image / text one).
    - ``arch``: ``conv`` (FiLM-conditioned upsampling convs; any size, e.g. 32×32 RGB) or
      ``mlp`` (fast for tiny images such as 8×8 digits). ``g_width`` / ``d_width``: channels
      (conv) or hidden units (mlp); ``mlp_layers``: hidden layers of the MLPs.
    - ``latent_dim``: noise size; ``cond_dim``: size the text embedding is projected to in G.
    - ``loss``: ``hinge`` or ``non_saturating``; ``d_steps``: D updates per G update (same
      real batch, fresh noise and mismatches); ``g_lr_mult`` / ``d_lr_mult`` scale
      ``train.lr``; ``betas``: Adam's (0.0 or 0.5, 0.999 are usual for GANs).
    - ``ema_decay`` (``ema_warmup``: ramp ``min(decay, (1+n)/(10+n))``): the sampling generator.
    - ``mismatch_weight``, ``diversity_weight``, ``r1_gamma``, ``augment``/``translation``,
      ``token_dropout``: the regularisers of the module docstring (0 / none switches off).
    - ``freeze_condition``, ``condition_checkpoint``: the condition encoder's treatment.

    Two optimizers, ``generator`` and ``discriminator`` (AdamW; ``train.weight_decay`` on
    weights only). A training step makes ``d_steps`` D updates, then one G update (reading the
    text embeddings of the last D update, detached) and one EMA update; it returns the losses,
    which the engine checks for NaN/inf at each log interval.
    """

    def __init__(
        self,
        modalities: Mapping[str, Modality],
        encoders: Mapping[str, Encoder] | None = None,
        image: str | None = None,
        condition: str | None = None,
        latent_dim: int = 64,
        cond_dim: int = 64,
        arch: Literal["conv", "mlp"] = "conv",
        g_width: int = 64,
        d_width: int = 64,
        mlp_layers: int = 2,
        loss: Literal["hinge", "non_saturating"] = "hinge",
        d_steps: int = 1,
        g_lr_mult: float = 1.0,
        d_lr_mult: float = 1.0,
        betas: tuple[float, float] = (0.0, 0.999),
        ema_decay: float = 0.999,
        ema_warmup: bool = True,
        mismatch_weight: float = 1.0,
        diversity_weight: float = 0.1,
        r1_gamma: float = 0.0,
        augment: Literal["none", "translation"] = "none",
        translation: float = 0.125,
        token_dropout: float = 0.0,
        freeze_condition: bool = False,
        condition_checkpoint: str | None = None,
    ) -> None:
        super().__init__()
        _check_params(
            latent_dim=latent_dim,
            cond_dim=cond_dim,
            g_width=g_width,
            d_width=d_width,
            mlp_layers=mlp_layers,
            d_steps=d_steps,
            g_lr_mult=g_lr_mult,
            d_lr_mult=d_lr_mult,
        )
        for name, value, ok, need in (
            ("ema_decay", ema_decay, 0.0 <= ema_decay < 1.0, "in [0, 1)"),
            ("mismatch_weight", mismatch_weight, mismatch_weight >= 0, ">= 0"),
            ("diversity_weight", diversity_weight, diversity_weight >= 0, ">= 0"),
            ("r1_gamma", r1_gamma, r1_gamma >= 0, ">= 0"),
            ("translation", translation, 0.0 <= translation < 0.5, "in [0, 0.5)"),
            ("betas", betas, all(0.0 <= b < 1.0 for b in betas), "each in [0, 1)"),
        ):
            if not ok:
                raise SpecError(f"{PARAMS}.{name}", f"must be {need}, got {value}")
        img = fixed_size_image(modalities, image)
        self.setup_text_condition(
            modalities,
            encoders,
            condition,
            condition_checkpoint=condition_checkpoint,
            freeze_condition=freeze_condition,
            token_dropout=token_dropout,
            who="the text-conditional GAN",
        )
        enc = self.condition_encoder
        self.image_key = img.name
        self.image_shape: tuple[int, int, int] = tuple(img.shape)  # type: ignore[assignment]
        self.loss_kind = loss
        self.d_steps = d_steps
        self.lr_mults = {"generator": g_lr_mult, "discriminator": d_lr_mult}
        self.betas = (float(betas[0]), float(betas[1]))
        self.mismatch_weight = mismatch_weight
        self.diversity_weight = diversity_weight
        self.r1_gamma = r1_gamma
        self.translation = translation if augment == "translation" else 0.0
        text_dim = enc.output.dim
        shape = self.image_shape
        if arch == "conv":
            self.generator = ConvGenerator(shape, text_dim, latent_dim, cond_dim, g_width)
            features = conv_features(shape, d_width, self.generator.ups)
        else:
            self.generator = MLPGenerator(
                shape, text_dim, latent_dim, cond_dim, g_width, mlp_layers
            )
            features = mlp_features(shape, d_width, mlp_layers)
        self.discriminator = ProjectionDiscriminator(features, text_dim)
        self.ema = EMA(self.generator, ema_decay, warmup=ema_warmup)

    @property
    def latent_dim(self) -> int:
        return self.generator.latent_dim

    # ------------------------------------------------------------------ training
    def configure_optimizers(
        self, lr: float, weight_decay: float
    ) -> dict[str, torch.optim.Optimizer]:
        """``generator``: G's weights; ``discriminator``: D's and a trainable condition
        encoder's."""
        d_named = list(self.discriminator.named_parameters(prefix="discriminator"))
        if not self.freeze_condition:
            d_named += list(self.encoders.named_parameters(prefix="encoders"))
        named = {
            "generator": list(self.generator.named_parameters(prefix="generator")),
            "discriminator": d_named,
        }
        return {
            name: torch.optim.AdamW(
                param_groups(params, weight_decay), lr=lr * self.lr_mults[name], betas=self.betas
            )
            for name, params in named.items()
        }

    def training_step(self, batch: Mapping[str, Tensor], ctx: Any) -> dict[str, Tensor]:  # noqa: ANN401
        real = batch[self.image_key]
        tokens = batch[self.text_key]
        tokens = self.training_tokens(tokens)
        n = real.shape[0]
        for _ in range(self.d_steps):
            logs, text = self._discriminator_step(real, tokens, ctx)
        self.discriminator.requires_grad_(False)
        try:
            with ctx.autocast():
                z = self._noise(n, real)
                fake = self.generator(z, text)
                g_loss = generator_loss(self.loss_kind, self.discriminator(self._aug(fake), text))
                total = g_loss
                if self.diversity_weight > 0:
                    z2 = self._noise(n, real)
                    fake2 = self.generator(z2, text)
                    g_loss2 = generator_loss(
                        self.loss_kind, self.discriminator(self._aug(fake2), text)
                    )
                    ms = mode_seeking_loss(fake, fake2, z, z2)
                    g_loss = 0.5 * (g_loss + g_loss2)
                    total = g_loss + self.diversity_weight * ms
                    logs["mode_seeking"] = ms.detach()
            ctx.backward(total)
            ctx.step("generator")
        finally:
            self.discriminator.requires_grad_(True)
        self.ema.update(self.generator)
        return {**logs, "g_loss": g_loss.detach()}

    def _discriminator_step(
        self,
        real: Tensor,
        tokens: Tensor,
        ctx: Any,  # noqa: ANN401
    ) -> tuple[dict[str, Tensor], Tensor]:
        """One D update; returns its logs and the (detached) text embeddings it used."""
        n = real.shape[0]
        with ctx.autocast():
            text = self.embed_text(tokens)
            with torch.no_grad():
                fake = self.generator(self._noise(n, real), text.detach())
            real_in = self._aug(real)
            if self.r1_gamma > 0:
                real_in = real_in.detach().requires_grad_(True)
            h_real = self.discriminator.phi(real_in)
            d_real = self.discriminator.score(h_real, text)
            d_fake = self.discriminator(self._aug(fake), text)
            d_mis = None
            if self.mismatch_weight > 0 and n > 1:
                d_mis = self.discriminator.score(h_real, text[_derangement(n, real.device)])
            d_loss = discriminator_loss(
                self.loss_kind, d_real, d_fake, d_mis, weight=self.mismatch_weight
            )
            logs = {"d_real": d_real.detach().mean(), "d_fake": d_fake.detach().mean()}
            if d_mis is not None:
                logs["d_mismatch"] = d_mis.detach().mean()
            total = d_loss
            if self.r1_gamma > 0:
                r1 = r1_penalty(d_real, real_in)
                total = d_loss + 0.5 * self.r1_gamma * r1
                logs["r1"] = r1.detach()
        ctx.backward(total)
        ctx.step("discriminator")
        return {"d_loss": d_loss.detach(), **logs}, text.detach()

    def _noise(self, n: int, like: Tensor) -> Tensor:
        return torch.randn(n, self.latent_dim, device=like.device, dtype=like.dtype)

    def _aug(self, x: Tensor) -> Tensor:
        return translate(x, self.translation) if self.translation > 0 else x

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def sample(
        self,
        condition: Sequence[str],
        num_samples: int,
        generator: torch.Generator | None = None,
        *,
        use_ema: bool = True,
    ) -> Tensor:
        """Images ``(P, num_samples, C, H, W)`` in ``[0, 1]`` for P prompts, in eval mode.

        Prompts are tokenized by the condition encoder's ``preprocess()``; an empty prompt list,
        an empty or overlong prompt, or ``num_samples < 1`` raise :class:`SamplingError` (a
        ``ValueError``). The noise is drawn from ``generator`` (on its device; the default RNG
        if ``None``), so equal generator states give equal images. ``use_ema=False`` samples the
        live generator instead of its EMA.
        """
        prompts = check_prompts(condition, num_samples)
        device = next(self.generator.parameters()).device
        was_training = self.training
        self.eval()
        try:
            text = self.embed_prompts(prompts, device)
            p, n = len(prompts), num_samples
            z = torch.randn(
                p * n, self.latent_dim, generator=generator,
                device=generator.device if generator is not None else "cpu",
            )  # fmt: skip
            net = self.ema if use_ema else self.generator
            images = net(z.to(device), text.repeat_interleave(n, dim=0))
        finally:
            self.train(was_training)
        return images.view(p, n, *self.image_shape)


def _derangement(n: int, device: torch.device) -> Tensor:
    """A random permutation with no fixed point (each sample gets another sample's text)."""
    perm = torch.randperm(n, device=device)
    shift = torch.randint(1, n, (), device=device)
    out = torch.empty_like(perm)
    out[perm] = perm[(torch.arange(n, device=device) + shift) % n]
    return out


def _check_params(**values: float) -> None:
    for name, value in values.items():
        if value <= 0:
            raise SpecError(f"{PARAMS}.{name}", f"must be positive, got {value}")
