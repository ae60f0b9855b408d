"""Bring your own weights: CLIP and SigLIP towers of a transformers model in a local folder.

``hf_clip_image`` / ``hf_clip_text`` read a folder saved from ``CLIPModel`` (``save_pretrained``),
``hf_siglip_image`` / ``hf_siglip_text`` one saved from ``SiglipModel``. They return the projected
embeddings of ``get_image_features`` / ``get_text_features``, and bring the folder's image
processor and tokenizer as ``preprocess()``. The model is read once for both towers
(:mod:`modalforge_clip.cache`); each encoder keeps only its own tower.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from modalforge.contracts import Encoder, FeatureSpec
from modalforge.errors import SpecError
from modalforge.modality import Modality, ModalityKind
from modalforge_clip.cache import PAIR_CACHE, file_key
from modalforge_clip.preprocess import HFImagePreprocess
from modalforge_transformers.local import (
    check_model_dir,
    load_model,
    model_type,
    transformers_module,
)
from modalforge_transformers.tokenize import HFTokenize, PadCollate

MODEL_CLASSES = {"clip": "CLIPModel", "siglip": "SiglipModel"}
PROCESSOR_CLASSES = {"clip": "CLIPImageProcessor", "siglip": "SiglipImageProcessor"}


class HFTower(Encoder):
    """One tower of a transformers CLIP-family model; subclasses pick the tower."""

    family: ClassVar[str]
    side: ClassVar[str]

    def __init__(self, modality: Modality, model_dir: str, freeze: bool = False) -> None:
        super().__init__(modality)
        self.field = f"model.encoders.{modality.name}.params"
        self.path = _check_family(model_dir, self.family, self.side, f"{self.field}.model_dir")
        self.precheck(modality)  # before the (possibly long) load
        files = ("config.json", "model.safetensors", "pytorch_model.bin")
        key = (self.family, file_key(*(self.path / f for f in files)))
        model = PAIR_CACHE.take(key, self.side, lambda: self._load())
        scale = model.logit_scale
        bias = getattr(model, "logit_bias", None)
        #: the model's learned logit scale (natural log of the multiplier) and bias (SigLIP)
        self.logit_scale = float(scale.detach().reshape(-1)[0])
        self.logit_bias = None if bias is None else float(bias.detach().reshape(-1)[0])
        self.config = model.config
        self.freeze = freeze
        self._output = FeatureSpec(self.attach(model))
        if freeze:
            self.requires_grad_(False)
            self.eval()

    def precheck(self, modality: Modality) -> None:
        """Check the modality against the folder's config.json, before loading the weights."""

    def _load(self) -> Any:
        cls = getattr(transformers_module(), MODEL_CLASSES[self.family])
        return load_model(self.path, f"{self.field}.model_dir", cls=cls)

    def attach(self, model: Any) -> int:
        """Keep this side's modules of ``model``; return the embedding size."""
        raise NotImplementedError

    def embed(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    @property
    def output(self) -> FeatureSpec:
        return self._output

    def train(self, mode: bool = True) -> HFTower:
        """A frozen tower stays in eval mode."""
        return super().train(mode and not self.freeze)

    def forward(self, x: Tensor) -> Tensor:
        with torch.no_grad() if self.freeze else contextlib.nullcontext():
            return self.embed(x)


class HFImageTower(HFTower):
    """Pixel values ``(B, 3, S, S)`` → image embeddings (``get_image_features``)."""

    accepts = (ModalityKind.IMAGE2D,)
    side = "image"

    def __init__(self, modality: Modality, model_dir: str, freeze: bool = False) -> None:
        super().__init__(modality, model_dir, freeze)
        self.image_size = int(self.config.vision_config.image_size)

    def precheck(self, modality: Modality) -> None:
        vision = json.loads((self.path / "config.json").read_text()).get("vision_config") or {}
        _check_image_modality(modality, int(vision.get("image_size", 224)), self.field)

    def preprocess(self) -> HFImagePreprocess:
        """The folder's image processor (resize, crop, normalise) → ``(3, S, S)``."""
        transformers = transformers_module()
        config = self.path / "preprocessor_config.json"
        if config.is_file():
            try:
                processor = transformers.AutoImageProcessor.from_pretrained(
                    str(self.path), local_files_only=True
                )
            except Exception as exc:  # noqa: BLE001 - a damaged file is the user's to fix
                raise SpecError(
                    f"{self.field}.model_dir",
                    f"cannot read the image processor {config}: {str(exc).splitlines()[0]}",
                    hint="save it again with `processor.save_pretrained(folder)`, or remove the "
                    "file to use the model family's defaults at its image size",
                ) from None
        else:  # a model saved without its processor: the family's defaults at its image size
            size = self.image_size
            cls = getattr(transformers, PROCESSOR_CLASSES[self.family])
            if self.family == "clip":
                processor = cls(
                    size={"shortest_edge": size}, crop_size={"height": size, "width": size}
                )
            else:
                processor = cls(size={"height": size, "width": size})
        return HFImagePreprocess(processor)


class HFTextTower(HFTower):
    """Token ids ``(B, L)`` → text embeddings (``get_text_features``).

    ``max_length`` defaults to the model's ``max_position_embeddings``. SigLIP captions are
    padded to it (SigLIP was trained on text padded to its full length, without an attention
    mask); towers with ``dynamic_padding`` (CLIP) pad each batch to its longest caption instead.
    """

    accepts = (ModalityKind.TEXT,)
    side = "text"
    #: whether the embedding is independent of padding after the caption, so batches can be
    #: padded to their longest caption rather than to max_length
    dynamic_padding: ClassVar[bool] = False

    def __init__(
        self,
        modality: Modality,
        model_dir: str,
        max_length: int | None = None,
        freeze: bool = False,
    ) -> None:
        super().__init__(modality, model_dir, freeze)
        limit = int(self.config.text_config.max_position_embeddings)
        length = max_length or limit
        if not 2 <= length <= limit:
            raise SpecError(
                f"{self.field}.max_length",
                f"must be from 2 to the model's max_position_embeddings ({limit}), got {length}",
            )
        padding = "longest" if self.dynamic_padding else "max_length"
        self.tokenize = HFTokenize(
            self.path, length, field=f"{self.field}.model_dir", padding=padding
        )
        if modality.is_raw:  # captions need the tokenizer: fail now, not in a loader worker
            _ = self.tokenize.tokenizer

    def preprocess(self) -> HFTokenize:
        """The folder's tokenizer: caption → ``input_ids (L,)``: ``L = max_length`` (padded), or
        the caption's own length for towers with ``dynamic_padding`` (see :meth:`collate`)."""
        return self.tokenize

    def collate(self) -> PadCollate | None:
        """Pads a batch of captions to the longest (``None``: fixed-length samples stack)."""
        if not self.dynamic_padding:
            return None
        if self.padding_is_inert():
            return self.tokenize.collate()
        return self.tokenize.collate(length=self.tokenize.max_length)

    def padding_is_inert(self) -> bool:
        """Whether padding after the caption leaves the embedding unchanged."""
        return False


class HFClipImageEncoder(HFImageTower):
    """Image tower of a transformers ``CLIPModel`` saved in ``model_dir``."""

    family = "clip"

    def attach(self, model: Any) -> int:
        self.vision_model: nn.Module = model.vision_model
        self.visual_projection: nn.Module = model.visual_projection
        return int(model.visual_projection.out_features)

    def embed(self, x: Tensor) -> Tensor:
        return self.visual_projection(self.vision_model(pixel_values=x).pooler_output)


class HFClipTextEncoder(HFTextTower):
    """Text tower of a transformers ``CLIPModel`` saved in ``model_dir``."""

    family = "clip"

    def attach(self, model: Any) -> int:
        self.text_model: nn.Module = model.text_model
        self.text_projection: nn.Module = model.text_projection
        return int(model.text_projection.out_features)

    def embed(self, x: Tensor) -> Tensor:
        return self.text_projection(self.text_model(input_ids=x.long()).pooler_output)

    dynamic_padding = True

    def padding_is_inert(self) -> bool:
        """CLIP's text model is causal and pools at the end-of-text token, so tokens after it
        change nothing, provided the pooled position does not move: transformers finds the first
        ``eos_token_id``, or, for configs with the old ``eos_token_id == 2``, the largest id
        (``argmax``), which stays the caption's own end token while the padding id is not
        larger."""
        if int(getattr(self.config.text_config, "eos_token_id", 2) or 2) != 2:
            return True
        tok = self.tokenize.tokenizer
        eos = tok.eos_token_id
        return eos is not None and self.tokenize.pad_id <= int(eos)


class HFSiglipImageEncoder(HFImageTower):
    """Image tower of a transformers ``SiglipModel`` saved in ``model_dir``."""

    family = "siglip"

    def attach(self, model: Any) -> int:
        self.vision_model = model.vision_model
        return int(model.config.vision_config.hidden_size)

    def embed(self, x: Tensor) -> Tensor:
        return self.vision_model(pixel_values=x).pooler_output


class HFSiglipTextEncoder(HFTextTower):
    """Text tower of a transformers ``SiglipModel`` saved in ``model_dir``."""

    family = "siglip"

    def attach(self, model: Any) -> int:
        self.text_model = model.text_model
        head = getattr(model.text_model, "head", None)
        return int(head.out_features if head is not None else model.config.text_config.hidden_size)

    def embed(self, x: Tensor) -> Tensor:
        return self.text_model(input_ids=x.long()).pooler_output


ENCODERS: dict[tuple[str, str], type[HFTower]] = {
    ("clip", "image"): HFClipImageEncoder,
    ("clip", "text"): HFClipTextEncoder,
    ("siglip", "image"): HFSiglipImageEncoder,
    ("siglip", "text"): HFSiglipTextEncoder,
}


def load_clip_pair(
    model_dir: str,
    *,
    image_modality: Modality | None = None,
    text_modality: Modality | None = None,
    freeze: bool = False,
) -> tuple[HFImageTower, HFTextTower, float, float | None]:
    """``(image_encoder, text_encoder, logit_scale, logit_bias)`` of a saved CLIP or SigLIP model.

    The family comes from the folder's ``config.json``; the model is read once. ``logit_scale``
    is the stored natural log of the logit multiplier (use ``exp``); ``logit_bias`` is SigLIP's
    bias, ``None`` for CLIP. The modalities default to raw images and captions, so both
    encoders' ``preprocess()`` take PIL images and strings.
    """
    path = check_model_dir(model_dir, "model_dir")
    family = model_type(path)
    if family not in MODEL_CLASSES:
        raise SpecError(
            "model_dir",
            f"{model_dir} holds a {family or 'unknown'!r} model, not CLIP or SigLIP",
            hint="give a folder saved from transformers' CLIPModel or SiglipModel",
        )
    image_modality = image_modality or Modality("image", "image2d", (3, None, None), "image")
    text_modality = text_modality or Modality("text", "text", (None,), "str")
    image = ENCODERS[(family, "image")](image_modality, str(path), freeze=freeze)
    text = ENCODERS[(family, "text")](text_modality, str(path), freeze=freeze)
    return image, text, text.logit_scale, text.logit_bias  # type: ignore[return-value]


def _check_family(model_dir: str, family: str, side: str, field: str) -> Path:
    path = check_model_dir(model_dir, field)
    kind = model_type(path)
    if kind != family:
        other = f"; use hf_{kind}_{side} for it" if kind in MODEL_CLASSES else ""
        raise SpecError(
            field,
            f"{model_dir} holds a {kind or 'unknown'!r} model, not a {family!r} model{other}",
            hint=f"give a folder saved from transformers' {MODEL_CLASSES[family]}",
        )
    return path


def _check_image_modality(modality: Modality, size: int, field: str) -> None:
    channels = modality.channels
    if channels is not None and channels != 3:
        raise SpecError(
            field.rsplit(".", 1)[0],
            f"the model reads RGB images, but modality {modality.describe()} has {channels} "
            "channels",
            hint="declare the images as dtype 'image' (PIL, converted to RGB) or give 3 channels",
        )
    if modality.is_raw:
        return
    h, w = modality.shape[-2:]
    if (h, w) != (size, size) and None not in (h, w):
        raise SpecError(
            field.rsplit(".", 1)[0],
            f"the model reads {size}×{size} images, but modality {modality.describe()} is {h}×{w}",
            hint="resize the data to the model's size, or declare it as dtype 'image' so the "
            "encoder's preprocess() resizes it",
        )
