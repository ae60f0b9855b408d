"""``timm`` encoder: a timm model without its classifier, pooled features (and tokens) out."""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from modalforge.contracts import Encoder, FeatureSpec
from modalforge.deps import require
from modalforge.errors import CheckpointError, SpecError
from modalforge.modality import Modality, ModalityKind
from modalforge_timm.lock import lock_groups, set_eval
from modalforge_timm.weights import check_weights_cover, check_weights_file, precheck_cover


class TimmEncoder(Encoder):
    """Any timm model (``model_name``) as an encoder of images or depth maps.

    The classifier is removed (``num_classes=0``), so :meth:`forward` gives the model's pooled
    features; input channels come from the modality. ``weights_file`` loads local weights
    (``.safetensors`` or ``.pth``) through timm's own loader, which also adapts the first
    convolution to the modality's channels. ``img_size`` defaults to the modality's size for models
    that take one (ViTs); convolutional models accept any size. ``freeze`` locks the tower (its
    weights and normalisation statistics); an optional ``proj_dim`` projection stays trainable.

    ``freeze`` with ``unlocked_groups: N`` locks all but the last ``N`` layer groups (timm's
    ``group_matcher``: stem, blocks or stages, final norm), as LiT and open_clip's
    ``lock_image_unlocked_groups`` do; ``freeze_bn_stats`` then also keeps the running statistics
    of the locked batch norms. ``grad_checkpointing`` recomputes activations in the backward pass
    to save memory (non-reentrant, so it also works when the first groups are locked).
    """

    accepts = (ModalityKind.IMAGE2D, ModalityKind.DEPTH)

    def __init__(
        self,
        modality: Modality,
        model_name: str,
        pretrained: bool = False,
        weights_file: str | None = None,
        global_pool: str | None = None,
        proj_dim: int | None = None,
        img_size: int | None = None,
        drop_rate: float = 0.0,
        grad_checkpointing: bool = False,
        freeze: bool = False,
        unlocked_groups: int = 0,
        freeze_bn_stats: bool = False,
    ) -> None:
        super().__init__(modality)
        timm = require("timm", package="timm")
        field = f"model.encoders.{modality.name}.params"
        check_model_name(timm, model_name, f"{field}.model_name")
        if global_pool == "":
            raise SpecError(
                f"{field}.global_pool",
                "an encoder needs pooled features",
                hint="leave global_pool unset for the model's default, or use 'avg'",
            )
        file_keys = None
        if weights_file is not None:  # readable and a state dict, before anything is built
            file_keys = check_weights_file(weights_file, f"{field}.weights_file")
        _check_lock(field, freeze, unlocked_groups, freeze_bn_stats)
        if proj_dim is not None and proj_dim <= 0:
            raise SpecError(f"{field}.proj_dim", f"must be positive, got {proj_dim}")
        self.model_name = model_name
        self.freeze = freeze and unlocked_groups == 0  # the whole tower: eval mode, no grad
        self._frozen_norms: list[str] = []

        kwargs: dict[str, Any] = {
            "pretrained": pretrained or weights_file is not None,
            "num_classes": 0,
            "in_chans": int(modality.channels or 3),
            "global_pool": global_pool,
            "drop_rate": drop_rate,
        }
        if weights_file is not None:
            kwargs["pretrained_cfg_overlay"] = {"file": str(weights_file)}
        size = _size_for(modality, img_size)
        if file_keys is not None:
            bare = {k: v for k, v in kwargs.items() if k != "pretrained_cfg_overlay"}
            precheck_cover(
                lambda: _create(
                    timm,
                    model_name,
                    {**bare, "pretrained": False},
                    size,
                    explicit=img_size is not None,
                    field=field,
                    weights_file=None,
                ),
                file_keys,
                weights_file,
                f"{field}.weights_file",
            )
        self.model = _create(
            timm,
            model_name,
            kwargs,
            size,
            explicit=img_size is not None,
            field=field,
            weights_file=weights_file,
        )
        if file_keys is not None:
            check_weights_cover(self.model, file_keys, weights_file, f"{field}.weights_file")
        if grad_checkpointing:
            if not hasattr(self.model, "set_grad_checkpointing"):
                raise SpecError(
                    f"{field}.grad_checkpointing",
                    f"timm model {model_name!r} does not support gradient checkpointing",
                    hint="set grad_checkpointing: false",
                )
            self.model.set_grad_checkpointing(True)
        if self.freeze:
            self.model.requires_grad_(False)
            self.model.eval()
        elif freeze:
            locked_norms = lock_groups(
                self.model, unlocked_groups, f"{field}.unlocked_groups", model_name=model_name
            )
            self._frozen_norms = locked_norms if freeze_bn_stats else []
            set_eval(self.model, self._frozen_norms)

        pooled_dim = int(getattr(self.model, "head_hidden_size", None) or self.model.num_features)
        self.token_dim = int(self.model.num_features)
        self.proj: nn.Module = nn.Identity()
        if proj_dim is not None:
            self.proj = nn.Linear(pooled_dim, proj_dim)
        # Tokens come from forward_features; they share the pooled features' width only when the
        # model has no extra pre-logits layer (MobileNetV3 and MambaOut have one).
        self._output = FeatureSpec(proj_dim or pooled_dim, tokens=self.token_dim == pooled_dim)

    @property
    def output(self) -> FeatureSpec:
        return self._output

    def train(self, mode: bool = True) -> TimmEncoder:
        """Keep a frozen tower (or its locked batch norms) in eval mode: statistics stay."""
        super().train(mode)
        if self.freeze:
            self.model.eval()
        elif mode and self._frozen_norms:
            set_eval(self.model, self._frozen_norms)
        return self

    def _tower(self) -> contextlib.AbstractContextManager[Any]:
        return torch.no_grad() if self.freeze else contextlib.nullcontext()

    def forward(self, x: Tensor) -> Tensor:
        with self._tower():
            pooled = self.model(x)
        return self.proj(pooled)

    def forward_tokens(self, x: Tensor) -> Tensor:
        """``forward_features`` as ``(B, T, D)``: ViT tokens as they are, feature maps flattened."""
        if not self._output.tokens:
            raise NotImplementedError(
                f"timm model {self.model_name!r} has a pre-logits layer; its feature-map tokens "
                "do not share the pooled features' width"
            )
        with self._tower():
            feats = self.model.forward_features(x)
        if feats.ndim == 4:
            if getattr(self.model, "output_fmt", "NCHW") == "NHWC":
                feats = feats.flatten(1, 2)
            else:
                feats = feats.flatten(2).transpose(1, 2)
        elif feats.ndim != 3:
            raise RuntimeError(f"unexpected forward_features shape {tuple(feats.shape)}")
        return self.proj(feats)

    def preprocess(self) -> Callable[[object], Tensor]:
        """timm's eval transform (resize, crop, normalise) for a PIL image or a ``uint8`` array."""
        from modalforge_timm.preprocess import TimmPreprocess

        return TimmPreprocess.for_model(self.model, self.modality)


def _check_lock(field: str, freeze: bool, unlocked_groups: int, freeze_bn_stats: bool) -> None:
    if unlocked_groups < 0:
        raise SpecError(f"{field}.unlocked_groups", f"must be 0 or more, got {unlocked_groups}")
    if not freeze and (unlocked_groups or freeze_bn_stats):
        name = "unlocked_groups" if unlocked_groups else "freeze_bn_stats"
        raise SpecError(
            f"{field}.{name}",
            "applies to a locked tower only, but freeze is false",
            hint=f"set freeze: true to lock the tower (all but the last unlocked_groups), or "
            f"remove {name}",
        )


def check_model_name(timm: Any, name: str, field: str) -> None:
    if name.startswith(("hf-hub:", "hf_hub:", "local-dir:")):
        return
    if timm.is_model(name):
        return
    close = difflib.get_close_matches(name, timm.list_models(), n=5, cutoff=0.6)
    stem = name.rstrip("0123456789_.").split("_")[0] or "*"
    if not close:  # fall back to models of the same family, e.g. "resnet*" for "resnet999"
        close = timm.list_models(f"{stem}*")[:5]
    suggestion = f"; close matches: {', '.join(close)}" if close else ""
    raise SpecError(
        field,
        f"timm has no model named {name!r}{suggestion}",
        hint=f"list models with `python -c \"import timm; print(timm.list_models('{stem}*'))\"`",
    )


def _size_for(modality: Modality, img_size: int | None) -> int | tuple[int, int] | None:
    """The size passed to models that take ``img_size``: explicit, else the modality's (H, W)."""
    if img_size is not None:
        return img_size
    h, w = modality.shape[-2:]
    if h is None or w is None:
        return None
    return h if h == w else (h, w)


def _create(
    timm: Any,
    name: str,
    kwargs: dict[str, Any],
    size: int | tuple[int, int] | None,
    *,
    explicit: bool,
    field: str,
    weights_file: str | None,
) -> nn.Module:
    try:
        if size is None:
            return timm.create_model(name, **kwargs)
        try:
            return timm.create_model(name, img_size=size, **kwargs)
        except TypeError as exc:
            if "img_size" not in str(exc):
                raise
            if explicit:
                raise SpecError(
                    f"{field}.img_size",
                    f"timm model {name!r} takes no img_size (it accepts any input size)",
                    hint="remove img_size; resize images in the data instead",
                ) from None
            return timm.create_model(name, **kwargs)
    except (RuntimeError, KeyError) as exc:
        if weights_file is None:
            raise
        raise CheckpointError(
            f"{field}.weights_file: cannot load {weights_file} into timm model {name!r}: {exc}",
            hint="the file must hold a state dict of this architecture (same model_name)",
        ) from exc
