"""The medical imaging domain: NIfTI/DICOM readers, MONAI transforms, clinical metrics, synthetic
studies and the ``medical`` domain adapter (``domain: medical`` in a spec)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modalforge.plugin import hookimpl

if TYPE_CHECKING:
    from modalforge.registry import Registrar

__all__ = ["register_components"]


@hookimpl
def register_components(registry: Registrar) -> None:
    """Each submodule registers its own components (readers, transforms, data, the adapter)."""
    from modalforge_medical import transforms

    transforms.register(registry)
