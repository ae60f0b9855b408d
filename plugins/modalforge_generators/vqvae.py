"""``vqvae``: a VQ-VAE image tokenizer (van den Oord et al. 2017), the first stage of DALL·E.

A conv encoder downsamples ``(C, H, W)`` images by ``downsample`` (a power of two) to a grid of
``code_dim`` vectors, each replaced by its nearest codebook entry (:mod:`.quantizer`); a conv
decoder maps the codes back to images (clipped to ``[0, 1]`` when decoding; the training
loss sees the unclipped output, so no saturated sigmoid stalls it). It trains as its own stage,
through the engine, with one optimizer (``model``): reconstruction MSE + ``commitment`` × the
commitment loss (+ the codebook loss when ``quantizer: straight_through``). The codebook learns by
EMA by default, and dead codes are restarted on encoder outputs.

The second stage (``dalle``) loads it frozen, turns images into code grids with :meth:`encode`
and its sampled grids back into images with :meth:`decode`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from modalforge.contracts import Generator
from modalforge.engine.schedule import param_groups
from modalforge.errors import SpecError
from modalforge.modality import Modality
from modalforge_generators.quantizer import VectorQuantizer, code_statistics

if TYPE_CHECKING:
    from modalforge.engine.step import StepContext

FIELD = "model.generator.params"


class ResBlock(nn.Module):
    """``x + conv1x1(relu(conv3x3(relu(x))))``, as in the VQ-VAE paper."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.net(x)


def image_modality(modalities: Mapping[str, Modality], name: str, field: str) -> Modality:
    """The ``(C, H, W)`` image modality ``name``, or a :class:`SpecError` naming ``field``."""
    if name not in modalities:
        have = ", ".join(m.describe() for m in modalities.values()) or "none"
        raise SpecError(
            field,
            f"the data set has no modality {name!r} (it has: {have})",
            hint="set it to the name of the data set's image modality",
        )
    mod = modalities[name]
    if len(mod.shape) != 3 or any(not isinstance(s, int) or s <= 0 for s in mod.shape):
        raise SpecError(
            field,
            f"modality {mod.describe()} is not an image of fixed shape (C, H, W)",
            hint="use an image modality with a fixed size (e.g. data set param image_size)",
        )
    return mod


def ignore_sample(sample: object) -> Tensor:
    """An unused raw sample (e.g. a caption) → an empty tensor (collates to ``(B, 0)``)."""
    return torch.zeros(0)


class VQVAE(Generator):
    """VQ-VAE image tokenizer: ``encode`` images → code grids ``(B, h, w)``, ``decode`` back.

    ``downsample`` (1, 2, 4, ...) divides height and width; it must divide the image size.
    ``quantizer``: ``ema`` (codebook by exponential moving averages, ``ema_decay``) or
    ``straight_through`` (codebook by gradient). Codes used less than ``dead_threshold`` times per
    batch (moving average) are restarted on random encoder outputs. Images are read from the
    modality ``image`` in ``[0, 1]``.
    """

    def __init__(
        self,
        modalities: dict[str, Modality],
        image: str = "image",
        codebook_size: int = 64,
        code_dim: int = 32,
        hidden: int = 64,
        downsample: int = 2,
        res_blocks: int = 1,
        quantizer: Literal["ema", "straight_through"] = "ema",
        commitment: float = 0.25,
        ema_decay: float = 0.99,
        dead_threshold: float = 1.0,
    ) -> None:
        super().__init__()
        mod = image_modality(modalities, image, f"{FIELD}.image")
        channels, height, width = mod.shape
        steps = int(math.log2(downsample)) if downsample >= 1 else -1
        if downsample < 1 or 2**steps != downsample:
            raise SpecError(
                f"{FIELD}.downsample", f"must be a power of two (1, 2, 4, ...), got {downsample}"
            )
        if height % downsample or width % downsample:
            raise SpecError(
                f"{FIELD}.downsample",
                f"{downsample} does not divide the image size {height}x{width}",
                hint="use a downsampling factor that divides the height and width",
            )
        for name, value in (("code_dim", code_dim), ("hidden", hidden)):
            if value < 1:
                raise SpecError(f"{FIELD}.{name}", f"must be positive, got {value}")
        if res_blocks < 0 or commitment < 0:
            bad = "res_blocks" if res_blocks < 0 else "commitment"
            raise SpecError(f"{FIELD}.{bad}", "must be >= 0")
        self.image = image
        self.commitment = commitment
        self.shape = (channels, height, width)
        self.grid = (height // downsample, width // downsample)
        # Saved with the weights: the second stage checks its images against it.
        self.register_buffer("image_shape", torch.tensor([channels, height, width]))
        self.encoder = self._encoder(channels, hidden, code_dim, steps, res_blocks)
        self.decoder = self._decoder(channels, hidden, code_dim, steps, res_blocks)
        try:
            self.quantizer = VectorQuantizer(
                codebook_size,
                code_dim,
                ema=quantizer == "ema",
                decay=ema_decay,
                dead_threshold=dead_threshold,
            )
        except ValueError as exc:
            raise SpecError(FIELD, str(exc)) from None

    @staticmethod
    def _encoder(channels: int, hidden: int, code_dim: int, steps: int, blocks: int) -> nn.Module:
        layers: list[nn.Module] = [nn.Conv2d(channels, hidden, 3, padding=1)]
        for _ in range(steps):
            layers += [nn.ReLU(), nn.Conv2d(hidden, hidden, 4, stride=2, padding=1)]
        layers += [ResBlock(hidden) for _ in range(blocks)]
        layers += [nn.ReLU(), nn.Conv2d(hidden, code_dim, 1)]
        return nn.Sequential(*layers)

    @staticmethod
    def _decoder(channels: int, hidden: int, code_dim: int, steps: int, blocks: int) -> nn.Module:
        layers: list[nn.Module] = [nn.Conv2d(code_dim, hidden, 3, padding=1)]
        layers += [ResBlock(hidden) for _ in range(blocks)]
        for _ in range(steps):
            layers += [nn.ReLU(), nn.ConvTranspose2d(hidden, hidden, 4, stride=2, padding=1)]
        layers += [nn.ReLU(), nn.Conv2d(hidden, channels, 3, padding=1)]
        return nn.Sequential(*layers)

    @property
    def codebook_size(self) -> int:
        return self.quantizer.num_codes

    @property
    def num_tokens(self) -> int:
        """Codes per image, ``h * w``."""
        return self.grid[0] * self.grid[1]

    # ------------------------------------------------------------------ tokenizer API
    def _check_images(self, images: Tensor) -> None:
        want = self.shape  # a python tuple: no device sync in the training loop
        if images.ndim != 4 or tuple(images.shape[1:]) != want:
            raise ValueError(
                f"expected images (B, {', '.join(map(str, want))}), got {tuple(images.shape)}"
            )

    @torch.no_grad()
    def encode(self, images: Tensor) -> Tensor:
        """Images ``(B, C, H, W)`` in ``[0, 1]`` → codes ``LongTensor (B, h, w)``."""
        self._check_images(images)
        z = self.encoder(images * 2.0 - 1.0).float()
        b, d, h, w = z.shape
        return self.quantizer.nearest(z.permute(0, 2, 3, 1).reshape(-1, d)).view(b, h, w)

    @torch.no_grad()
    def decode(self, codes: Tensor) -> Tensor:
        """Codes ``(B, h, w)`` → images ``(B, C, H, W)`` in ``[0, 1]``."""
        if codes.ndim != 3 or tuple(codes.shape[1:]) != self.grid:
            raise ValueError(
                f"expected codes (B, {self.grid[0]}, {self.grid[1]}), got {tuple(codes.shape)}"
            )
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.codebook_size):
            lo, hi = int(codes.min()), int(codes.max())
            raise ValueError(f"codes must lie in [0, {self.codebook_size}), got {lo}..{hi}")
        q = self.quantizer.lookup(codes.long()).permute(0, 3, 1, 2)
        return self.decoder(q).float().clamp(0.0, 1.0)

    def forward(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Reconstruction with straight-through gradients and the VQ losses."""
        images = batch[self.image]
        self._check_images(images)
        z = self.encoder(images * 2.0 - 1.0).float()
        b, d, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, d)
        out = self.quantizer(flat)
        q = out.quantized.view(b, h, w, d).permute(0, 3, 1, 2)
        return {
            "reconstruction": self.decoder(q).float(),  # unclipped
            "codes": out.codes.view(b, h, w),
            "vectors": flat,
            "commitment": out.commitment,
            "codebook": out.codebook,
        }

    def preprocess(self, modality: str) -> Callable[[Any], Tensor] | None:
        """Raw modalities other than the image (captions) are not used: each sample becomes an
        empty tensor, so an image–caption data set trains the tokenizer as it is."""
        return None if modality == self.image else ignore_sample

    # ------------------------------------------------------------------ training
    def configure_optimizers(
        self, lr: float, weight_decay: float
    ) -> dict[str, torch.optim.Optimizer]:
        """AdamW; no decay on the codebook (nor biases)."""
        named = [(n, p) for n, p in self.named_parameters() if not n.startswith("quantizer.")]
        groups = param_groups(named, weight_decay)
        codebook = [p for p in self.quantizer.parameters() if p.requires_grad]
        if codebook:
            groups.append({"params": codebook, "weight_decay": 0.0, "group": "codebook"})
        return {"model": torch.optim.AdamW(groups, lr=lr)}

    def training_step(self, batch: Mapping[str, Tensor], ctx: StepContext) -> dict[str, Tensor]:
        images = batch[self.image]
        with ctx.autocast():
            out = self(batch)
        recon_mse = F.mse_loss(out["reconstruction"].float(), images.float())
        loss = recon_mse + out["codebook"] + self.commitment * out["commitment"]
        ctx.backward(loss)
        ctx.step("model")
        restarts = self.quantizer.update(out["vectors"], out["codes"].flatten())
        stats = code_statistics(out["codes"], self.codebook_size)
        return {
            "loss": loss.detach(),
            "recon_mse": recon_mse.detach(),
            "commitment": out["commitment"].detach(),
            "perplexity": stats["perplexity"],
            "code_usage": stats["usage"],
            "restarts": restarts,
        }

    def sample(
        self, condition: object, num_samples: int, generator: torch.Generator | None = None
    ) -> Tensor:
        """Not a sampler: a VQ-VAE has no prior over its codes (uniform codes decode to noise)."""
        raise SpecError(
            "model.generator",
            "a 'vqvae' is an image tokenizer, not a sampler: it has no prior over its codes",
            hint="train the transformer stage ('dalle') with tokenizer_checkpoint pointing at this "
            "run, and sample from that; to check reconstructions use decode(encode(images))",
        )
