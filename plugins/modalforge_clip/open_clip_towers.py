"""``open_clip_image`` / ``open_clip_text``: towers of an open_clip model from a local checkpoint.

Needs the optional package open-clip-torch. Nothing is downloaded: the architecture is a built-in
open_clip config (``model_name``, e.g. ``ViT-B-32``) or a local folder
(``local-dir:/path`` with ``open_clip_config.json``), created with ``pretrained=None``, and the
weights come from ``checkpoint`` (``.safetensors``, or a ``torch.save``d state dict read with
``weights_only=True``) through ``open_clip.load_checkpoint``. Both towers share one load.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from modalforge.contracts import Encoder, FeatureSpec
from modalforge.deps import require
from modalforge.errors import CheckpointError, SpecError
from modalforge.modality import Modality, ModalityKind
from modalforge.weights import check_weights_file, inspect_weights
from modalforge_clip.cache import PAIR_CACHE, file_key
from modalforge_clip.preprocess import OpenClipImagePreprocess, OpenClipTokenize


def open_clip_module() -> Any:
    return require("open_clip", package="open-clip-torch")


class OpenClipTower(Encoder):
    """One tower of an open_clip ``CLIP`` / ``CustomTextCLIP`` model."""

    side: ClassVar[str]

    def __init__(
        self, modality: Modality, model_name: str, checkpoint: str, freeze: bool = False
    ) -> None:
        super().__init__(modality)
        open_clip = open_clip_module()
        field = f"model.encoders.{modality.name}.params"
        self.model_name = model_name
        config = _model_config(open_clip, model_name, f"{field}.model_name")
        path = _check_checkpoint(checkpoint, f"{field}.checkpoint")
        key = ("open_clip", model_name, file_key(path))
        model = PAIR_CACHE.take(
            key, self.side, lambda: _load(open_clip, model_name, path, f"{field}.checkpoint")
        )
        self.logit_scale = float(model.logit_scale.detach().reshape(-1)[0])
        bias = getattr(model, "logit_bias", None)
        self.logit_bias = None if bias is None else float(bias.detach().reshape(-1)[0])
        self.attach(model)
        self.freeze = freeze
        self._output = FeatureSpec(int(config["embed_dim"]))
        if freeze:
            self.requires_grad_(False)
            self.eval()

    def attach(self, model: Any) -> None:
        raise NotImplementedError

    @property
    def output(self) -> FeatureSpec:
        return self._output

    def train(self, mode: bool = True) -> OpenClipTower:
        return super().train(mode and not self.freeze)

    def _grad(self) -> contextlib.AbstractContextManager[Any]:
        return torch.no_grad() if self.freeze else contextlib.nullcontext()


class OpenClipImageEncoder(OpenClipTower):
    """Image tower (``model.visual``) of an open_clip model: images → ``encode_image``."""

    accepts = (ModalityKind.IMAGE2D,)
    side = "image"

    def attach(self, model: Any) -> None:
        self.visual: nn.Module = model.visual

    def forward(self, x: Tensor) -> Tensor:
        with self._grad():
            return self.visual(x)

    def preprocess(self) -> OpenClipImagePreprocess:
        """open_clip's eval transform of this model (resize, centre crop, normalise)."""
        transform = require("open_clip.transform", package="open-clip-torch")
        cfg = transform.PreprocessCfg(**self.visual.preprocess_cfg)
        return OpenClipImagePreprocess(transform.image_transform_v2(cfg, is_train=False))


class OpenClipTextEncoder(OpenClipTower):
    """Text tower of an open_clip model: token ids ``(B, context_length)`` → ``encode_text``."""

    accepts = (ModalityKind.TEXT,)
    side = "text"

    def attach(self, model: Any) -> None:
        self.text: nn.Module = _text_view(model)

    def forward(self, x: Tensor) -> Tensor:
        with self._grad():
            text = self.text
            if hasattr(text, "encode_text"):
                return text.encode_text(x.long())
            return text(x.long())

    def preprocess(self) -> OpenClipTokenize:
        """open_clip's tokenizer of this model: caption → ``LongTensor (context_length,)``."""
        open_clip = open_clip_module()
        try:
            return OpenClipTokenize(open_clip.get_tokenizer(self.model_name))
        except Exception as exc:  # noqa: BLE001 - e.g. a Hub tokenizer that is not cached
            raise SpecError(
                f"model.encoders.{self.modality.name}.params.model_name",
                f"cannot build open_clip's tokenizer for {self.model_name!r} offline: {exc}",
                hint="pre-tokenise the captions, or use a model with CLIP's built-in tokenizer",
            ) from exc


def _text_view(model: nn.Module) -> nn.Module:
    """The text side of a model: ``model.text`` (``CustomTextCLIP``), else a shallow copy of the
    ``CLIP`` model without its vision tower and logit scale (sharing the text parameters)."""
    if isinstance(getattr(model, "text", None), nn.Module):
        return model.text
    view = copy.copy(model)
    view._modules = {k: m for k, m in model._modules.items() if k != "visual"}
    view._parameters = {
        k: p for k, p in model._parameters.items() if k not in ("logit_scale", "logit_bias")
    }
    view._buffers = dict(model._buffers)
    return view


def _model_config(open_clip: Any, model_name: str, field: str) -> dict[str, Any]:
    if model_name.startswith(("hf-hub:", "hf_hub:")):
        raise SpecError(
            field,
            "models from the Hugging Face Hub are not downloaded",
            hint="download the model yourself, then use local-dir:/path (open_clip_config.json) "
            "or a built-in name, with checkpoint: the weights file",
        )
    if model_name.startswith("local-dir:"):
        folder = Path(model_name[len("local-dir:") :])
        cfg_file = folder / "open_clip_config.json"
        if not cfg_file.is_file():
            raise SpecError(
                field,
                f"{folder} has no open_clip_config.json",
                hint="give a folder holding open_clip's config (with a model_cfg entry)",
            )
        try:
            config = json.loads(cfg_file.read_text())["model_cfg"]
        except (ValueError, KeyError, TypeError) as exc:
            raise SpecError(field, f"{cfg_file} has no valid model_cfg: {exc}") from exc
        return dict(config)
    config = open_clip.get_model_config(model_name)
    if config is None:
        close = difflib.get_close_matches(model_name, open_clip.list_models(), n=5, cutoff=0.5)
        suggestion = f"; close matches: {', '.join(close)}" if close else ""
        raise SpecError(
            field,
            f"open_clip has no model config named {model_name!r}{suggestion}",
            hint='list them with `python -c "import open_clip; print(open_clip.list_models())"`',
        )
    return dict(config)


def _check_checkpoint(checkpoint: str, field: str) -> Path:
    """The checkpoint's path, once it is known to be a readable state dict (before any build)."""
    hint = "give the local weights file of this open_clip model (.safetensors or .pt)"
    path = check_weights_file(checkpoint, field, what="checkpoint", hint=hint)
    inspect_weights(path, field, what="checkpoint", hint=hint)
    return path


def _load(open_clip: Any, model_name: str, path: Path, field: str) -> nn.Module:
    """The model with random weights, then the checkpoint loaded into it; every tensor must fit."""
    try:
        with _quiet():  # open_clip warns that the (about to be loaded) model is random
            model = open_clip.create_model(
                model_name,
                pretrained=None,
                load_weights=False,
                pretrained_image=False,
                pretrained_text=False,
            )
    except Exception as exc:  # noqa: BLE001 - e.g. a config whose text tower is on the Hub
        raise SpecError(
            field.rsplit(".", 1)[0] + ".model_name",
            f"cannot build open_clip model {model_name!r} offline: {_first_lines(exc)}",
            hint="use a config whose towers are built locally (no hf_model_name text tower)",
        ) from exc
    try:
        incompatible = open_clip.load_checkpoint(model, str(path), strict=False)
    except Exception as exc:  # noqa: BLE001 - unreadable file or mismatched shapes
        reason = _shape_mismatches(open_clip, model, path) or _first_lines(exc)
        raise CheckpointError(
            f"{field}: cannot load {path} into open_clip model {model_name!r}: {reason}",
            hint="the checkpoint must come from the same architecture (model_name)",
        ) from exc
    missing = list(getattr(incompatible, "missing_keys", []))
    unexpected = list(getattr(incompatible, "unexpected_keys", []))
    if missing or unexpected:
        parts = [
            f"{label}: {', '.join(keys[:6])}"
            + (f" and {len(keys) - 6} more" if len(keys) > 6 else "")
            for label, keys in (("missing", missing), ("unexpected", unexpected))
            if keys
        ]
        raise CheckpointError(
            f"{field}: {path} does not match open_clip model {model_name!r} ({'; '.join(parts)})",
            hint="the checkpoint must come from the same architecture (model_name)",
        )
    return model.eval()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    previous = logging.root.manager.disable
    logging.disable(max(previous, logging.WARNING))
    try:
        yield
    finally:
        logging.disable(previous)


def _shape_mismatches(open_clip: Any, model: nn.Module, path: Path) -> str:
    """``size mismatch: key (file shape) vs (model shape), ...``, or "" if none can be listed."""
    try:
        factory = open_clip.factory
        state = factory.load_state_dict(str(path), weights_only=True)
        if "positional_embedding" in state and not hasattr(model, "positional_embedding"):
            state = factory.convert_to_custom_text_state_dict(state)
    except Exception:  # noqa: BLE001 - the caller reports the original error instead
        return ""
    own = model.state_dict()
    diffs = [
        f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    if not diffs:
        return ""
    more = f" and {len(diffs) - 6} more" if len(diffs) > 6 else ""
    return "size mismatch (file vs model): " + ", ".join(diffs[:6]) + more


def _first_lines(exc: BaseException, n: int = 6) -> str:
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    return " ".join(lines[:n]) if lines else type(exc).__name__
