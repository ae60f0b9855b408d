"""Dataset reader contract: named splits of samples that are dicts keyed by modality name."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from modalforge.modality import Modality

TARGET_KEY = "target"
MASKS_KEY = "masks"


class TargetKind(str, Enum):
    MULTICLASS = "multiclass"
    MULTILABEL = "multilabel"
    REGRESSION = "regression"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Target:
    """What a supervised task predicts; heads size themselves from it.

    ``shape`` is a structured regression target's shape per sample, e.g. ``(k, A)`` for a chunk
    of ``k`` future actions of ``A`` dimensions (``num_outputs`` is its product); empty for a
    flat target of ``num_outputs`` values.
    """

    kind: TargetKind
    num_outputs: int
    class_names: tuple[str, ...] = ()
    shape: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", TargetKind(self.kind))
        object.__setattr__(self, "class_names", tuple(self.class_names))
        object.__setattr__(self, "shape", tuple(int(n) for n in self.shape))
        if self.class_names and len(self.class_names) != self.num_outputs:
            raise ValueError(f"{len(self.class_names)} class names for {self.num_outputs} outputs")
        if self.shape and math.prod(self.shape) != self.num_outputs:
            raise ValueError(f"target shape {self.shape} does not hold {self.num_outputs} outputs")


class DatasetReader(ABC):
    """Reads a data set and declares what it provides.

    Each sample of :meth:`load` is a ``dict`` mapping modality names (and ``"target"`` when the data
    set is labelled) to tensors shaped as declared by :attr:`modalities`.
    """

    @property
    @abstractmethod
    def modalities(self) -> dict[str, Modality]: ...

    @property
    def target(self) -> Target | None:
        return None

    @property
    @abstractmethod
    def splits(self) -> tuple[str, ...]: ...

    @abstractmethod
    def load(self, split: str) -> Dataset: ...

    def labels(self, split: str) -> np.ndarray | None:
        """The split's targets in sample order, read without loading the samples (class
        indices for a multiclass target), or ``None`` if the reader cannot tell them cheaply.

        ``data.split`` stratifies by them and checks that training sees every class.
        """
        return None

    def metadata(self, split: str) -> dict[str, Sequence[Any]]:
        """Per-sample values by name (a manifest's columns, an image's file name), one per
        sample in order, read without loading the samples; ``data.split.group`` names one."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """What the reader learned from its training split that inference needs without the
        data (JSON values, e.g. an episode reader's action statistics, by which it normalised
        the targets). Stored in every checkpoint (``trainer.dataset`` of ``state.json``) and
        given back by :func:`~modalforge.pipeline.load_trained` as ``dataset_state``."""
        return {}
