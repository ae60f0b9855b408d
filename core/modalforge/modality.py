"""Modalities: what a data set provides and an encoder consumes: a name, a kind and a shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class ModalityKind(str, Enum):
    """The kind of signal a modality carries; encoders declare which kinds they accept."""

    IMAGE2D = "image2d"  # (C, H, W)
    VOLUME3D = "volume3d"  # (C, D, H, W), e.g. CT/MRI
    DEPTH = "depth"  # (1, H, W) depth map
    TEXT = "text"  # (L,) token ids, or raw strings before tokenisation
    TABULAR = "tabular"  # (F,) clinical or other tabular features
    LOWDIM = "lowdim"  # (F,) proprioception, state vectors
    TIMESERIES = "timeseries"  # (T, F)
    ACTION = "action"  # (T, A) action sequences
    AUDIO = "audio"  # (C, T) waveform or (C, F, T) spectrogram

    def __str__(self) -> str:
        return self.value


# Number of dimensions (excluding batch) each kind's tensors have; None means any.
KIND_NDIM: dict[ModalityKind, int | None] = {
    ModalityKind.IMAGE2D: 3,
    ModalityKind.VOLUME3D: 4,
    ModalityKind.DEPTH: 3,
    ModalityKind.TEXT: 1,
    ModalityKind.TABULAR: 1,
    ModalityKind.LOWDIM: 1,
    ModalityKind.TIMESERIES: 2,
    ModalityKind.ACTION: 2,
    ModalityKind.AUDIO: None,
}


# dtypes of samples that are not tensors yet: the encoder's ``preprocess()`` converts them.
RAW_DTYPES: frozenset[str] = frozenset({"str", "image"})


@dataclass(frozen=True)
class Modality:
    """One named input of a pipeline, e.g. ``Modality("ct", "volume3d", (1, 64, 64, 64))``.

    ``shape`` excludes the batch dimension; ``None`` marks a variable-length axis (text length).
    """

    name: str
    kind: ModalityKind
    shape: tuple[int | None, ...]
    dtype: str = "float32"
    metadata: dict[str, object] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", ModalityKind(self.kind))
        object.__setattr__(self, "shape", tuple(self.shape))
        ndim = KIND_NDIM[self.kind]
        if ndim is not None and len(self.shape) != ndim:
            raise ValueError(
                f"modality {self.name!r} of kind {self.kind} needs {ndim} dims (without batch), "
                f"got shape {self.shape}"
            )

    @property
    def is_raw(self) -> bool:
        """Samples are raw (``str`` captions, ``image`` PIL images) and need the encoder's
        ``preprocess()`` before batching."""
        return self.dtype in RAW_DTYPES

    @property
    def channels(self) -> int | None:
        """Leading (channel) size for spatial kinds, feature count for vector kinds."""
        if self.kind in (ModalityKind.TABULAR, ModalityKind.LOWDIM, ModalityKind.TEXT):
            return self.shape[0]
        if self.kind in (ModalityKind.TIMESERIES, ModalityKind.ACTION):
            return self.shape[-1]
        return self.shape[0]

    @property
    def spatial_dims(self) -> int:
        """Number of spatial axes: 2 for images and depth, 3 for volumes, 0 otherwise."""
        return {ModalityKind.IMAGE2D: 2, ModalityKind.DEPTH: 2, ModalityKind.VOLUME3D: 3}.get(
            self.kind, 0
        )

    def describe(self) -> str:
        dims = "×".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name} ({self.kind}, {dims})"
