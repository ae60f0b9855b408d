"""Domain adapter contract: what a domain (medical imaging, robotics) brings to a pipeline."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from torch import Tensor

from modalforge.modality import Modality


class DomainAdapter(ABC):
    """Bundles a domain's defaults: its modalities, readers, transforms, components and metrics.

    Everything named here refers to registered components, so a spec can use them directly.
    """

    @property
    @abstractmethod
    def modalities(self) -> dict[str, Modality]:
        """The domain's standard modalities (e.g. ``ct``: volume3d, ``report``: text)."""

    @property
    def readers(self) -> tuple[str, ...]:
        """Registered dataset-reader names for this domain's file formats."""
        return ()

    @property
    def recommended(self) -> dict[str, str]:
        """Component suggestions by role, e.g. ``{"encoder.ct": "monai_densenet"}``."""
        return {}

    @property
    def metrics(self) -> tuple[str, ...]:
        """Registered metric names the domain reports by default."""
        return ()

    def transform(self, modality: str) -> Callable[[object], Tensor] | None:
        """Domain-specific transform from a raw sample of ``modality`` to a tensor."""
        return None

    @abstractmethod
    def describe(self) -> str:
        """One paragraph for `modalforge components adapter`."""
