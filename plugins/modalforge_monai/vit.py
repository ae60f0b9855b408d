"""``monai_vit``: MONAI's Vision Transformer over 2-D images or 3-D volumes, pooled or as tokens."""

from __future__ import annotations

from typing import Literal

from torch import Tensor

from modalforge.contracts import FeatureSpec
from modalforge.deps import require
from modalforge.errors import SpecError
from modalforge.modality import Modality
from modalforge_monai.base import MonaiEncoder, as_plain


class MonaiViTEncoder(MonaiEncoder):
    """MONAI's ViT over images or volumes, sized from the modality: pooled vector or patch tokens.

    ``monai.networks.nets.ViT`` with ``classification=False``. Its ``img_size`` is the
    modality's spatial shape, which ``patch_size`` (one size, or one per axis) must divide; the
    sequence has ``prod(size // patch_size)`` tokens of width ``hidden_size`` (after the final
    layer norm). There is no class token (MONAI adds one only for classification), so the pooled
    vector of :meth:`forward` is the mean of the tokens. ``output: tokens`` declares the token
    sequence in the :class:`FeatureSpec` as well, so token fusions (``cross_attention``,
    ``bottleneck``) attend over the patches; ``output: pooled`` offers the vector only.
    ``out_dim`` projects either (token-wise for tokens). ``weights``: a local state dict of a
    ``ViT`` (a classification ViT's ``cls_token`` and ``classification_head`` are dropped) or of
    a UNETR (its ``vit.`` tensors are taken).
    """

    classifier_keys = ("classification_head.", "cls_token")
    subnet_keys = ("vit.",)

    def __init__(
        self,
        modality: Modality,
        patch_size: int | tuple[int, ...] = 16,
        hidden_size: int = 768,
        mlp_dim: int = 3072,
        num_layers: int = 12,
        num_heads: int = 12,
        dropout: float = 0.0,
        output: Literal["pooled", "tokens"] = "pooled",
        pos_embed_type: Literal["learnable", "sincos", "none"] = "learnable",
        qkv_bias: bool = False,
        out_dim: int | None = None,
        weights: str | None = None,
    ) -> None:
        super().__init__(modality)
        nets = require("monai.networks.nets", package="monai")
        require("einops", package="einops")  # MONAI imports it lazily, inside the blocks
        size = self.spatial_size()
        patch = check_patches(size, patch_size, f"{self.field}.patch_size", modality)
        for name, value in (
            ("hidden_size", hidden_size),
            ("mlp_dim", mlp_dim),
            ("num_layers", num_layers),
            ("num_heads", num_heads),
        ):
            if value <= 0:
                raise SpecError(f"{self.field}.{name}", f"must be positive, got {value}")
        if hidden_size % num_heads:
            raise SpecError(
                f"{self.field}.num_heads",
                f"hidden_size {hidden_size} is not divisible by num_heads {num_heads}",
                hint="choose num_heads dividing hidden_size (e.g. hidden_size 768, num_heads 12)",
            )
        if not 0.0 <= dropout < 1.0:
            raise SpecError(f"{self.field}.dropout", f"must be in [0, 1), got {dropout}")
        self.what = f"MONAI ViT ({modality.spatial_dims}-D, patches {patch}, width {hidden_size})"
        self.net = nets.ViT(
            in_channels=int(modality.channels or 1),
            img_size=size,
            patch_size=patch,
            hidden_size=hidden_size,
            mlp_dim=mlp_dim,
            num_layers=num_layers,
            num_heads=num_heads,
            pos_embed_type=pos_embed_type,
            classification=False,
            dropout_rate=dropout,
            spatial_dims=modality.spatial_dims,
            qkv_bias=qkv_bias,
        )
        # MONAI builds every block's cross-attention norm even without cross-attention; it never
        # gets a gradient, which DDP (and optimizers' bookkeeping) would trip over: lock it
        for block in self.net.blocks:
            if not getattr(block, "with_cross_attention", True):
                block.norm_cross_attn.requires_grad_(False)
        self.num_tokens = 1
        for s, p in zip(size, patch, strict=True):
            self.num_tokens *= s // p
        # dropout already acts inside the transformer: no second one on the pooled vector
        dim = self._finish(hidden_size, out_dim=out_dim, dropout=0.0, weights=weights)
        self._output = FeatureSpec(dim, tokens=output == "tokens")

    @property
    def output(self) -> FeatureSpec:
        return self._output

    def _tokens(self, x: Tensor) -> Tensor:
        return self.net(as_plain(x))[0]  # (B, T, hidden_size), after the final norm

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(self._tokens(x).mean(dim=1))

    def forward_tokens(self, x: Tensor) -> Tensor:
        """``(B, T, output.dim)``: one token per patch, in MONAI's (row-major) patch order."""
        if not self._output.tokens:
            raise NotImplementedError(
                "monai_vit was built with output: pooled; set output: tokens for token sequences"
            )
        return self.proj(self._tokens(x))


def check_patches(
    size: tuple[int, ...], patch_size: int | tuple[int, ...], field: str, modality: Modality
) -> tuple[int, ...]:
    """``patch_size`` per spatial axis, each positive and dividing the modality's size."""
    patch = (patch_size,) * len(size) if isinstance(patch_size, int) else tuple(patch_size)
    if len(patch) != len(size):
        raise SpecError(
            field,
            f"gives {len(patch)} sizes, but modality {modality.describe()} has {len(size)} "
            "spatial axes",
            hint=f"give one patch size, or {len(size)} (one per spatial axis)",
        )
    if any(p <= 0 for p in patch):
        raise SpecError(field, f"must be positive, got {patch_size}")
    bad = [i for i, (s, p) in enumerate(zip(size, patch, strict=True)) if s % p]
    if bad:
        axes = ", ".join(f"axis {i}: {size[i]} % {patch[i]} = {size[i] % patch[i]}" for i in bad)
        shown = patch[0] if len(set(patch)) == 1 else patch
        raise SpecError(
            field,
            f"patch_size {shown} does not divide the spatial size "
            f"{'×'.join(map(str, size))} of modality {modality.describe()} ({axes})",
            hint="choose a patch size dividing every spatial axis, or resize the data to a "
            "multiple of it",
        )
    return patch
