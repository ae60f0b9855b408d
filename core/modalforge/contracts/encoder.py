"""Encoder contract: one modality in, a pooled feature vector (and optionally tokens) out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

from torch import Tensor, nn

from modalforge.contracts.features import FeatureSpec
from modalforge.errors import SpecError
from modalforge.modality import Modality, ModalityKind


class Encoder(nn.Module, ABC):
    """Maps a batch of one modality to features.

    Subclasses set ``accepts`` (the modality kinds they can read) and ``output`` (a
    :class:`FeatureSpec`), take the bound :class:`Modality` as their ``modality`` constructor
    argument so they size their input from the data, and implement :meth:`forward` → ``(B, dim)``.
    Encoders that expose token sequences set ``output.tokens`` and implement :meth:`forward_tokens`.

    A *conditioned* encoder (e.g. an image trunk modulated by the instruction's embedding, FiLM
    as in RT-1) takes a ``condition_on`` parameter (names of other encoders of the model) and the
    injected ``condition_dim`` (the sum of their output sizes), stores the names in
    :attr:`condition_on`, and is called as ``forward(x, condition)`` (and
    ``forward_tokens(x, condition)``), ``condition`` being those encoders' pooled features
    concatenated in that order, ``(B, condition_dim)``.
    """

    accepts: ClassVar[tuple[ModalityKind, ...]] = ()
    condition_on: tuple[str, ...] = ()

    def __init__(self, modality: Modality) -> None:
        super().__init__()
        check_accepts(type(self), modality)
        self.modality = modality

    @property
    @abstractmethod
    def output(self) -> FeatureSpec:
        """What :meth:`forward` returns, so fusions and heads size themselves."""

    @abstractmethod
    def forward(self, x: Tensor) -> Tensor:
        """``x`` of shape ``(B, *modality.shape)`` → pooled features ``(B, output.dim)``."""

    def forward_tokens(self, x: Tensor) -> Tensor:
        """``(B, *modality.shape)`` → token features ``(B, T, output.dim)``."""
        raise NotImplementedError(f"{type(self).__name__} does not produce token sequences")

    def preprocess(self) -> Callable[[object], Tensor] | None:
        """Transform from one raw sample (a caption ``str``, a PIL image) to the tensor it expects.

        The pipeline applies it to every sample of a modality whose ``dtype`` is raw
        (see :attr:`Modality.is_raw`), in the data loader's workers.
        """
        return None

    def collate(self) -> Callable[[list[Any]], Any] | None:
        """How to batch this encoder's preprocessed samples, or ``None`` to stack them.

        ``None`` (the default) means torch's ``default_collate``: every sample has the same
        shape. An encoder whose :meth:`preprocess` gives samples of varying size (captions
        tokenised to their own length) returns a picklable callable from the list of samples to
        the batch :meth:`forward` takes, e.g. padding to the longest sample. The pipeline uses it
        for the raw modalities it preprocesses, in every loader and prompt batch.
        """
        return None


def check_accepts(
    cls: type, modality: Modality, *, kind: str = "encoder", field: str | None = None
) -> None:
    """Raise a :class:`SpecError` (at ``field``) if a ``kind`` component class cannot read
    ``modality``'s kind."""
    accepts = getattr(cls, "accepts", ())
    if accepts and modality.kind not in accepts:
        kinds = ", ".join(str(k) for k in accepts)
        raise SpecError(
            field or f"model.encoders.{modality.name}",
            f"{cls.__name__} reads {kinds}, but modality {modality.describe()} is {modality.kind}",
            hint=f"choose a {kind} for {modality.kind} (see `modalforge components {kind}`)",
        )
