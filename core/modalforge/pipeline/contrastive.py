"""The contrastive (CLIP-style) model: encoders projected into one shared embedding space."""

from __future__ import annotations

from collections.abc import Mapping

import torch.nn.functional as F
from torch import Tensor, nn

from modalforge.contracts import Encoder, FeatureSpec


def embed_key(modality: str) -> str:
    """Output key of a modality's embedding, e.g. ``"embed.image"``."""
    return f"embed.{modality}"


def feature_key(modality: str) -> str:
    """Output key of a modality's encoder features before the projection, ``"features.image"``.

    These are what the CLIP paper's linear probes read (the image features before the linear
    projection to the shared space): the projection keeps only what matches the other modality.
    """
    return f"features.{modality}"


class ContrastiveModel(nn.Module):
    """Each modality's encoder → linear projection to ``embed_dim`` → L2 normalisation.

    As in CLIP, the projection has no bias; an encoder whose output already has ``embed_dim``
    (e.g. loaded CLIP towers, or a timm encoder with ``proj_dim``) is used as is. Outputs hold
    ``embed.<modality>`` for each modality present in the batch, and ``features.<modality>``,
    the encoder's output before the projection (what a linear probe reads).
    """

    def __init__(
        self, encoders: Mapping[str, Encoder], embed_dim: int | None = None, normalize: bool = True
    ) -> None:
        super().__init__()
        dims = {m: e.output.dim for m, e in encoders.items()}
        if len(dims) < 2:
            raise ValueError(f"a contrastive model needs two or more modalities, got {list(dims)}")
        if embed_dim is None:
            if len(set(dims.values())) != 1:
                raise ValueError(
                    f"encoder outputs differ ({dims}); set model.embed_dim to project them into "
                    "one space"
                )
            embed_dim = next(iter(dims.values()))
        self.encoders = nn.ModuleDict(dict(encoders))
        self.projections = nn.ModuleDict(
            {
                m: nn.Identity() if d == embed_dim else nn.Linear(d, embed_dim, bias=False)
                for m, d in dims.items()
            }
        )
        for proj in self.projections.values():
            if isinstance(proj, nn.Linear):
                nn.init.normal_(proj.weight, std=proj.in_features**-0.5)
        self.embed_dim = embed_dim
        self.normalize = normalize

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.encoders)

    @property
    def feature_spec(self) -> FeatureSpec:
        return FeatureSpec(self.embed_dim)

    def encode(self, modality: str, x: Tensor, normalize: bool | None = None) -> Tensor:
        """Embeddings ``(B, embed_dim)`` of one modality's batch."""
        z = self.projections[modality](self.encoders[modality](x))
        return F.normalize(z, dim=-1) if (self.normalize if normalize is None else normalize) else z

    def forward(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        for m in self.encoders:
            if m in batch:
                features = self.encoders[m](batch[m])
                z = self.projections[m](features)
                out[embed_key(m)] = F.normalize(z, dim=-1) if self.normalize else z
                out[feature_key(m)] = features
        return out
