"""Domain adapter contract: what a domain (medical imaging, robotics) brings to a pipeline."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from modalforge.modality import Modality


class DomainAdapter(ABC):
    """A domain's spec defaults and its catalogue of components, named in a spec as
    ``domain: NAME`` (or ``domain: {name: NAME, params: {...}}``).

    :meth:`preset` is a spec fragment merged under the user's spec before validation: every
    value the spec sets itself wins, so each default stays overridable in YAML.
    :meth:`preset_for` is what the spec loader calls: it sees the user's spec, so a domain can
    give defaults for the modalities that spec's data declares (an encoder and preprocessing
    for each volume a manifest lists); it returns :meth:`preset` unless a domain overrides it.
    The catalogue (:attr:`modalities`, :attr:`readers`, :attr:`transforms`, :attr:`recommended`,
    :attr:`metrics`) names registered components and is shown by
    ``modalforge components adapter NAME``; :meth:`missing` lists names nobody registered.
    """

    @abstractmethod
    def describe(self) -> str:
        """One paragraph for ``modalforge components adapter``."""

    def preset(self) -> dict[str, Any]:
        """Spec defaults that ``domain: NAME`` applies (a partial spec, e.g. ``{"train": ...}``)."""
        return {}

    def preset_for(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults for ``spec`` (the user's spec as read from YAML, before any merging; do not
        modify it). By default :meth:`preset`, the same for every spec."""
        return self.preset()

    @property
    def modalities(self) -> dict[str, Modality]:
        """The domain's standard modalities (e.g. ``ct``: volume3d, ``report``: text)."""
        return {}

    @property
    def readers(self) -> tuple[str, ...]:
        """Registered dataset readers (and column loaders) for the domain's file formats."""
        return ()

    @property
    def transforms(self) -> tuple[str, ...]:
        """Registered transforms for the domain's data."""
        return ()

    @property
    def recommended(self) -> dict[str, str]:
        """Component suggestions by role, e.g. ``{"encoder.ct": "monai_densenet"}``."""
        return {}

    @property
    def metrics(self) -> tuple[str, ...]:
        """Registered metrics the domain reports."""
        return ()

    def missing(self, registry: Any) -> list[str]:  # noqa: ANN401 - a Registry
        """Catalogue entries no loaded plugin registered, as ``kind name``."""
        wanted = [("dataset", n) for n in self.readers if ("loader", n) not in registry]
        wanted += [("transform", n) for n in self.transforms]
        wanted += [(role.split(".")[0], n) for role, n in self.recommended.items()]
        wanted += [("metric", n) for n in self.metrics]
        return [f"{k} {n}" for k, n in wanted if (k, n) not in registry]


def spec_dataset(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    """``data.dataset`` of a raw spec (as :meth:`DomainAdapter.preset_for` sees it) as a
    mapping: ``{"name": ...}`` for a bare reader name, ``{}`` where it is absent or malformed."""
    data = spec.get("data") if isinstance(spec, Mapping) else None
    dataset = data.get("dataset") if isinstance(data, Mapping) else None
    if isinstance(dataset, str):
        return {"name": dataset}
    return dataset if isinstance(dataset, Mapping) else {}
