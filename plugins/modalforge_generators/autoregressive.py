"""``dalle``: DALL·E's second stage, a decoder-only transformer over [caption tokens; image codes].

The caption (``text`` modality, raw strings) is tokenised by the model itself (``preprocess``),
the image by a frozen, pre-trained ``vqvae`` loaded from ``tokenizer_checkpoint`` (see
:mod:`.frozen_tokenizer`) into a grid of codes read in raster order. One causal transformer reads
``[t_1 .. t_L, i_1 .. i_{n-1}]``, text and image tokens with their own embeddings and positional
embeddings, and predicts each image code from everything before it; the loss is cross-entropy
on the image codes, plus ``text_loss_weight`` × the next-token loss on the caption (DALL·E used
1/8). Padding after the caption's end-of-text token is one dedicated token id.

Classifier-free guidance: with ``cond_drop_prob`` the caption of a training sample is replaced by
the empty caption; sampling with ``guidance_scale`` s > 1 mixes ``uncond + s · (cond − uncond)``
logits. :meth:`sample` decodes all prompts × samples at once with a key/value cache.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from modalforge.contracts import Encoder, Generator
from modalforge.engine.schedule import param_groups
from modalforge.errors import SpecError
from modalforge.modality import Modality
from modalforge.text.tokenizers import CaptionTokenizer, build_tokenizer
from modalforge_generators.frozen_tokenizer import load_frozen_vqvae
from modalforge_generators.sampling import SamplingError, check_sampling, sample_tokens
from modalforge_generators.transformer import CausalTransformer
from modalforge_generators.vqvae import image_modality

if TYPE_CHECKING:
    from modalforge.engine.step import StepContext

FIELD = "model.generator.params"


class DalleTransformer(Generator):
    """Text-to-image by autoregression over a frozen VQ-VAE's codes (DALL·E, Ramesh et al. 2021).

    ``tokenizer_checkpoint``: the ``vqvae`` run (or one of its checkpoints) whose codes are
    modelled; its architecture is read from the run's ``spec.yaml`` (or ``tokenizer_spec``).
    The VQ-VAE is frozen (never optimised, always in eval mode) and saved in this model's
    checkpoints, so they hold everything needed to decode. Captions are tokenised with
    ``tokenizer`` (``bytes``, or CLIP's BPE from ``tokenizer_dir``) to ``context_length``.
    ``temperature``, ``top_k``, ``top_p`` and ``guidance_scale`` are the defaults of
    :meth:`sample`.
    """

    def __init__(
        self,
        modalities: dict[str, Modality],
        tokenizer_checkpoint: str,
        tokenizer_spec: str | None = None,
        encoders: dict[str, Encoder] | None = None,
        image: str = "image",
        text: str = "text",
        tokenizer: Literal["bytes", "clip_bpe"] = "bytes",
        context_length: int = 32,
        tokenizer_dir: str | None = None,
        width: int = 256,
        layers: int = 4,
        heads: int = 4,
        mlp_ratio: float = 4.0,
        dropout: float = 0.1,
        text_loss_weight: float = 0.0,
        cond_drop_prob: float = 0.0,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        guidance_scale: float = 1.0,
    ) -> None:
        super().__init__()
        if encoders:
            raise SpecError(
                "model.encoders",
                f"'dalle' reads caption tokens itself; it takes no condition encoders (got "
                f"{', '.join(encoders)})",
                hint="remove model.encoders; set the tokenizer under model.generator.params",
            )
        if text not in modalities or not modalities[text].is_raw:
            have = ", ".join(m.describe() for m in modalities.values()) or "none"
            raise SpecError(
                f"{FIELD}.text",
                f"needs a caption modality {text!r} of raw strings (dtype 'str'); the data set "
                f"has: {have}",
                hint="use an image–caption data set such as digits_captions, or set `text` to "
                "its caption modality",
            )
        self._check_numbers(width, layers, heads, dropout, text_loss_weight, cond_drop_prob)
        try:
            check_sampling(temperature, top_k, top_p)
        except ValueError as exc:
            raise SpecError(FIELD, str(exc)) from None
        if guidance_scale < 0:
            raise SpecError(f"{FIELD}.guidance_scale", f"must be >= 0, got {guidance_scale}")
        img = image_modality(modalities, image, f"{FIELD}.image")
        self.image, self.text = image, text
        self.caption_tokenizer: CaptionTokenizer = build_tokenizer(
            tokenizer,
            context_length=context_length,
            vocab_size=2**31 - 1,  # no tower size to fit: the embedding takes the tokenizer's
            tokenizer_dir=tokenizer_dir,
            field=FIELD,
        )
        self.image_tokenizer = load_frozen_vqvae(
            tokenizer_checkpoint, img, field=FIELD, spec_path=tokenizer_spec
        )
        self.text_loss_weight = text_loss_weight
        self.cond_drop_prob = cond_drop_prob
        self.defaults = {
            "temperature": temperature,
            "top_k": top_k,
            "top_p": top_p,
            "guidance_scale": guidance_scale,
        }
        self.context_length = context_length
        self.text_vocab = self.caption_tokenizer.vocab_size
        self.pad_id = self.text_vocab  # one extra text id: padding after the end of text
        self.num_codes = self.image_tokenizer.codebook_size
        self.num_image_tokens = self.image_tokenizer.num_tokens
        self.text_embedding = nn.Embedding(self.text_vocab + 1, width)
        self.text_positions = nn.Parameter(torch.randn(context_length, width) * 0.01)
        self.image_embedding = nn.Embedding(self.num_codes, width)
        self.image_positions = nn.Parameter(torch.randn(self.num_image_tokens, width) * 0.01)
        self.transformer = CausalTransformer(width, layers, heads, mlp_ratio, dropout)
        self.image_head = nn.Linear(width, self.num_codes)
        self.text_head = nn.Linear(width, self.text_vocab) if text_loss_weight > 0 else None
        nn.init.normal_(self.text_embedding.weight, std=0.02)
        nn.init.normal_(self.image_embedding.weight, std=0.02)
        self.register_buffer("empty_caption", self.caption_tokenizer(""), persistent=False)

    @staticmethod
    def _check_numbers(width, layers, heads, dropout, text_w, drop_p) -> None:  # noqa: ANN001
        for name, value in (("width", width), ("layers", layers), ("heads", heads)):
            if value < 1:
                raise SpecError(f"{FIELD}.{name}", f"must be positive, got {value}")
        if width % heads:
            raise SpecError(f"{FIELD}.heads", f"width {width} is not divisible by heads {heads}")
        for name, value in (("dropout", dropout), ("cond_drop_prob", drop_p)):
            if not 0.0 <= value < 1.0:
                raise SpecError(f"{FIELD}.{name}", f"must be in [0, 1), got {value}")
        if text_w < 0:
            raise SpecError(f"{FIELD}.text_loss_weight", f"must be >= 0, got {text_w}")

    # ------------------------------------------------------------------ contract
    def preprocess(self, modality: str) -> Callable[[Any], Tensor] | None:
        """The caption tokenizer for the text modality (str → ``(context_length,)`` ids)."""
        return self.caption_tokenizer if modality == self.text else None

    def train(self, mode: bool = True) -> DalleTransformer:
        """Train the transformer; the frozen tokenizer stays in eval mode."""
        super().train(mode)
        self.image_tokenizer.eval()
        return self

    def trainable_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """Named parameters outside the frozen tokenizer."""
        return [(n, p) for n, p in self.named_parameters() if not n.startswith("image_tokenizer.")]

    def configure_optimizers(
        self, lr: float, weight_decay: float
    ) -> dict[str, torch.optim.Optimizer]:
        """AdamW over the transformer only (the frozen image tokenizer is left out)."""
        return {
            "model": torch.optim.AdamW(
                param_groups(self.trainable_parameters(), weight_decay), lr=lr, betas=(0.9, 0.95)
            )
        }

    # ------------------------------------------------------------------ the model
    def text_input(self, ids: Tensor) -> Tensor:
        """Caption ids with every position after the first end-of-text replaced by the pad id."""
        ids = ids.long()
        if ids.ndim != 2 or ids.shape[1] != self.context_length:
            raise ValueError(
                f"caption ids must be (B, {self.context_length}), got {tuple(ids.shape)}"
            )
        is_eot = ids == self.caption_tokenizer.eot
        after = (is_eot.long().cumsum(1) - is_eot.long()) > 0
        return ids.masked_fill(after, self.pad_id)

    def _embed_text(self, ids: Tensor) -> Tensor:
        return self.text_embedding(ids) + self.text_positions

    def _embed_image(self, codes: Tensor, start: int = 0) -> Tensor:
        return self.image_embedding(codes) + self.image_positions[start : start + codes.shape[1]]

    def logits(self, text_ids: Tensor, codes: Tensor) -> tuple[Tensor, Tensor]:
        """Teacher-forced logits: image ``(B, n, num_codes)`` for every code and text
        ``(B, L - 1, text_vocab)`` for caption tokens 2..L. ``codes`` is ``(B, n)``."""
        text = self.text_input(text_ids)
        x = torch.cat([self._embed_text(text), self._embed_image(codes[:, :-1])], dim=1)
        h = self.transformer(x)
        length = self.context_length
        image_logits = self.image_head(h[:, length - 1 :])
        if self.text_head is None:
            return image_logits, h.new_zeros(h.shape[0], 0, self.text_vocab)
        return image_logits, self.text_head(h[:, : length - 1])

    def forward(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Teacher-forced logits of a batch: ``image_logits`` and the ``codes`` they predict."""
        codes = self.image_tokenizer.encode(batch[self.image]).flatten(1)
        image_logits, text_logits = self.logits(batch[self.text], codes)
        return {"image_logits": image_logits, "text_logits": text_logits, "codes": codes}

    def training_step(self, batch: Mapping[str, Tensor], ctx: StepContext) -> dict[str, Tensor]:
        codes = self.image_tokenizer.encode(batch[self.image]).flatten(1)
        text = batch[self.text].long()
        if self.cond_drop_prob > 0:
            drop = torch.rand(text.shape[0], device=text.device) < self.cond_drop_prob
            text = torch.where(drop[:, None], self.empty_caption.to(text.device), text)
        with ctx.autocast():
            image_logits, text_logits = self.logits(text, codes)
        image_loss = F.cross_entropy(image_logits.float().flatten(0, 1), codes.flatten())
        values = {"image_loss": image_loss.detach()}
        loss = image_loss
        if self.text_head is not None:
            target = self.text_input(text)[:, 1:]
            text_loss = F.cross_entropy(
                text_logits.float().flatten(0, 1),
                target.masked_fill(target == self.pad_id, -100).flatten(),
            )
            loss = (loss + self.text_loss_weight * text_loss) / (1 + self.text_loss_weight)
            values["text_loss"] = text_loss.detach()
        ctx.backward(loss)
        ctx.step("model")
        return {"loss": loss.detach(), **values}

    # ------------------------------------------------------------------ sampling
    def _settings(self, **given: Any) -> dict[str, Any]:
        """Sampling settings: given values, else the configured defaults."""
        out = {k: (self.defaults[k] if v is None else v) for k, v in given.items()}
        check_sampling(out["temperature"], out["top_k"], out["top_p"])
        if out["guidance_scale"] < 0:
            raise SamplingError(
                f"guidance_scale must be >= 0, got {out['guidance_scale']}",
                hint="1 switches guidance off; 2-4 strengthens the prompt",
            )
        return out

    @torch.no_grad()
    def sample_codes(
        self,
        condition: Sequence[str],
        num_samples: int,
        generator: torch.Generator | None = None,
        *,
        temperature: float | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
        guidance_scale: float | None = None,
    ) -> Tensor:
        """Code grids ``LongTensor (P, num_samples, h, w)`` for P prompts; see :meth:`sample`."""
        prompts = _check_prompts(condition, num_samples)
        opts = self._settings(
            temperature=temperature, top_k=top_k, top_p=top_p, guidance_scale=guidance_scale
        )
        scale = float(opts.pop("guidance_scale"))
        device = self.image_positions.device
        ids = self.caption_tokenizer(prompts).to(device).repeat_interleave(num_samples, dim=0)
        batch = ids.shape[0]
        guided = scale != 1.0
        if guided:
            ids = torch.cat([ids, self.empty_caption.to(device).expand(batch, -1)])
        was_training = self.training
        self.eval()
        try:
            codes = self._decode_loop(ids, batch, scale if guided else None, generator, opts)
        finally:
            self.train(was_training)
        h, w = self.image_tokenizer.grid
        return codes.view(len(prompts), num_samples, h, w)

    def _decode_loop(self, ids, batch, scale, generator, opts) -> Tensor:  # noqa: ANN001
        n = self.num_image_tokens
        x = self._embed_text(self.text_input(ids))
        cache = self.transformer.new_cache(
            x.shape[0], self.context_length + n - 1, device=x.device, dtype=x.dtype
        )
        hidden = self.transformer(x, cache)[:, -1]
        codes = torch.empty(batch, n, dtype=torch.long, device=x.device)
        for j in range(n):
            logits = self.image_head(hidden).float()
            if scale is not None:
                cond, uncond = logits.chunk(2)
                logits = uncond + scale * (cond - uncond)
            codes[:, j] = sample_tokens(logits, generator, **opts)
            if j == n - 1:
                break
            step = codes[:, j : j + 1]
            if scale is not None:
                step = torch.cat([step, step])
            hidden = self.transformer(self._embed_image(step, start=j), cache)[:, -1]
        return codes

    @torch.no_grad()
    def sample(
        self,
        condition: Sequence[str],
        num_samples: int,
        generator: torch.Generator | None = None,
        *,
        temperature: float | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
        guidance_scale: float | None = None,
    ) -> Tensor:
        """Images ``(P, num_samples, C, H, W)`` in ``[0, 1]`` for P prompt strings.

        All ``P × num_samples`` sequences are decoded together, one code per step with a
        key/value cache; draws come from ``generator`` (reproducible when seeded). Settings left
        ``None`` take the model's configured defaults; ``top_k=0`` / ``top_p=1`` /
        ``guidance_scale=1`` switch those off. An empty prompt is allowed (the unconditional
        model when trained with ``cond_drop_prob``); an overlong one is truncated with a warning.
        """
        codes = self.sample_codes(
            condition,
            num_samples,
            generator,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            guidance_scale=guidance_scale,
        )
        p, n, h, w = codes.shape
        images = self.image_tokenizer.decode(codes.view(p * n, h, w))
        return images.view(p, n, *images.shape[1:])


def _check_prompts(condition: object, num_samples: int) -> list[str]:
    if isinstance(condition, str):
        raise SamplingError(
            f"condition must be a list of prompt strings, got the single string {condition!r}",
            hint=f"wrap it in a list: [{condition!r}]",
        )
    if not isinstance(condition, Sequence) or not all(isinstance(c, str) for c in condition):
        raise SamplingError(
            f"condition must be a sequence of prompt strings, got {type(condition).__name__}",
            hint='pass e.g. ["a handwritten seven"]',
        )
    if not condition:
        raise SamplingError(
            "no prompts given: condition is empty", hint="pass at least one prompt string"
        )
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise SamplingError(
            f"num_samples must be a positive integer, got {num_samples!r}",
            hint="ask for at least one sample per prompt",
        )
    return list(condition)
