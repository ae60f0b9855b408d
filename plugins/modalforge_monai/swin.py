"""``monai_swin``: the Swin Transformer encoder of SwinUNETR, its multi-scale maps pooled."""

from __future__ import annotations

import torch
from torch import Tensor

from modalforge.contracts import FeatureSpec
from modalforge.deps import require
from modalforge.errors import SpecError
from modalforge.modality import Modality
from modalforge_monai.base import MonaiEncoder, as_plain

#: the feature maps SwinTransformer returns: patch embedding, then after each of the 4 stages
NUM_MAPS = 5
#: patch embedding (2) and four 2× merges: every spatial axis must be a multiple of this
STRIDE = 32


class MonaiSwinEncoder(MonaiEncoder):
    """SwinUNETR's Swin Transformer encoder, its five multi-scale feature maps pooled together.

    ``monai.networks.nets.swin_unetr.SwinTransformer``, built as SwinUNETR builds its
    ``swinViT`` (patch size 2), returns five feature maps: the patch embedding at 1/2 resolution
    with ``feature_size`` channels, then one after each stage at 1/4 … 1/32 with
    ``feature_size · 2, 4, 8, 16`` channels (layer-normalised, as SwinUNETR uses them, when
    ``normalize``). Each chosen map (``stages``: indices 0–4, default all) is global-average-
    pooled and the results are concatenated, so the width is ``feature_size · Σ 2**s``: 744 for
    the default 24 and all five. Spatial size and channels come from the modality; every spatial
    axis must be divisible by 32. ``weights``: a state dict of this encoder or of a whole
    ``SwinUNETR`` (its ``swinViT.`` tensors are taken, the decoder's dropped).
    """

    subnet_keys = ("swinViT.",)

    def __init__(
        self,
        modality: Modality,
        feature_size: int = 24,
        depths: tuple[int, int, int, int] = (2, 2, 2, 2),
        num_heads: tuple[int, int, int, int] = (3, 6, 12, 24),
        window_size: int = 7,
        stages: tuple[int, ...] = (0, 1, 2, 3, 4),
        normalize: bool = True,
        mlp_ratio: float = 4.0,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        use_v2: bool = False,
        out_dim: int | None = None,
        dropout: float = 0.0,
        weights: str | None = None,
    ) -> None:
        super().__init__(modality)
        swin_unetr = require("monai.networks.nets.swin_unetr", package="monai")
        require("einops", package="einops")  # MONAI imports it lazily, inside the blocks
        size = self.spatial_size()
        bad = [s for s in size if s % STRIDE]
        if bad:
            raise SpecError(
                f"model.encoders.{modality.name}",
                f"monai_swin needs every spatial axis divisible by {STRIDE}, but modality "
                f"{modality.describe()} has {', '.join(map(str, bad))}",
                hint="resize or crop the data to a multiple of 32 (e.g. 32, 64, 96)",
            )
        self.stages = check_swin(self.field, feature_size, depths, num_heads, window_size, stages)
        spatial = modality.spatial_dims
        self.what = f"MONAI SwinUNETR encoder ({spatial}-D, feature_size {feature_size})"
        self.normalize = normalize
        self.net = swin_unetr.SwinTransformer(
            in_chans=int(modality.channels or 1),
            embed_dim=feature_size,
            window_size=(window_size,) * spatial,
            patch_size=(2,) * spatial,
            depths=tuple(depths),
            num_heads=tuple(num_heads),
            mlp_ratio=mlp_ratio,
            drop_rate=drop_rate,
            attn_drop_rate=attn_drop_rate,
            drop_path_rate=drop_path_rate,
            spatial_dims=spatial,
            use_v2=use_v2,
        )
        # stages past the deepest chosen one are never run: lock them (no gradient, which DDP
        # would trip over); they stay in the state dict, so SwinUNETR weights still load
        for i in range(self.stages[-1] + 1, NUM_MAPS):
            getattr(self.net, f"layers{i}").requires_grad_(False)
            if use_v2:
                getattr(self.net, f"layers{i}c").requires_grad_(False)
        width = sum(feature_size * 2**s for s in self.stages)
        self._output = FeatureSpec(
            self._finish(width, out_dim=out_dim, dropout=dropout, weights=weights)
        )

    @property
    def output(self) -> FeatureSpec:
        return self._output

    def forward(self, x: Tensor) -> Tensor:
        maps = self.feature_maps(x)
        pooled = torch.cat([maps[s].flatten(2).mean(dim=2) for s in self.stages], dim=1)
        return self.proj(self.dropout(pooled))

    def feature_maps(self, x: Tensor) -> list[Tensor]:
        """``SwinTransformer.forward``, stopped after the deepest chosen stage: the maps
        ``0 … max(stages)``, each ``(B, C, *spatial)``."""
        net = self.net
        x = net.pos_drop(net.patch_embed(as_plain(x)))
        maps = [net.proj_out(x, self.normalize)]
        for i in range(1, self.stages[-1] + 1):
            if net.use_v2:
                x = getattr(net, f"layers{i}c")[0](x.contiguous())
            x = getattr(net, f"layers{i}")[0](x.contiguous())
            maps.append(net.proj_out(x, self.normalize))
        return maps


def check_swin(
    field: str,
    feature_size: int,
    depths: tuple[int, ...],
    num_heads: tuple[int, ...],
    window_size: int,
    stages: tuple[int, ...],
) -> tuple[int, ...]:
    """Spec errors for sizes SwinTransformer cannot build; the sorted, unique ``stages``."""
    if feature_size <= 0:
        raise SpecError(f"{field}.feature_size", f"must be positive, got {feature_size}")
    if window_size <= 0:
        raise SpecError(f"{field}.window_size", f"must be positive, got {window_size}")
    if any(d <= 0 for d in depths):
        raise SpecError(f"{field}.depths", f"every depth must be positive, got {list(depths)}")
    for i, heads in enumerate(num_heads):
        width = feature_size * 2**i
        if heads <= 0 or width % heads:
            raise SpecError(
                f"{field}.num_heads",
                f"stage {i} has width feature_size · 2**{i} = {width}, not divisible by "
                f"num_heads[{i}] = {heads}",
                hint="use feature_size a multiple of 12 with the default num_heads (3, 6, 12, 24)",
            )
    chosen = tuple(sorted(set(stages)))
    if not chosen or any(not 0 <= s < NUM_MAPS for s in chosen):
        raise SpecError(
            f"{field}.stages",
            f"must name feature maps among 0–{NUM_MAPS - 1}, got {list(stages)}",
            hint="0 is the patch embedding (1/2 resolution), 4 the deepest stage (1/32)",
        )
    return chosen
