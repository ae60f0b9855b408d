"""``synthetic_studies``: built-in medical studies (a volume or an X-ray, a report, a clinical
table, findings and a diagnosis), generated on first use and read back through ``manifest``.

The files are real NIfTI volumes (or PNG images) and a CSV manifest, so every run goes through
the same readers, transforms and checks that a hospital's own archive would.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from torch.utils.data import Dataset

from modalforge.contracts import DatasetReader, Target
from modalforge.errors import SpecError
from modalforge.modality import Modality
from modalforge_medical.synthetic.anatomy import FINDINGS
from modalforge_medical.synthetic.clinical import CATEGORICAL_COLUMNS, LAB_COLUMNS
from modalforge_medical.synthetic.reports import FINDING_PROMPTS
from modalforge_medical.synthetic.studies import StudyConfig, ensure_studies

Part = Literal["image", "report", "clinical"]
FIELD = "data.dataset.params"


class SyntheticStudies(DatasetReader):
    """Seeded synthetic studies in splits ``train`` / ``val`` / ``test`` (held out).

    ``dims: 3`` gives modality ``ct`` (volume3d ``(1, size, size, size)``, NIfTI, 1.5 mm
    voxels, intensities 0–1000); ``dims: 2`` gives ``xray`` (a grayscale PNG of two lung fields).
    ``report`` is the radiology report (raw text) and ``clinical`` the table (age, sex, CRP, WBC,
    albumin; some lab values missing: impute them). ``target: findings`` is multi-label
    (:data:`FINDINGS`), ``target: diagnosis`` is benign / malignant, which depends on both the
    image's lesion burden and the clinical risk. ``parts`` picks the modalities. Files are cached
    in ``cache_dir`` (default ``$MODALFORGE_CACHE`` or ``~/.cache/modalforge``).
    """

    def __init__(
        self,
        registry: Any,  # noqa: ANN401 - the Registry, injected by the pipeline builder
        dims: Literal[2, 3] = 3,
        size: int = 32,
        parts: list[Part] = ["image", "report"],  # noqa: B006 - validated, never mutated
        target: Literal["findings", "diagnosis", "none"] = "findings",
        num_train: int = 1200,
        num_val: int = 200,
        num_test: int = 400,
        seed: int = 0,
        cache_dir: str | None = None,
    ) -> None:
        if size < 16 or size % 8:
            raise SpecError(f"{FIELD}.size", f"must be a multiple of 8, at least 16; got {size}")
        if min(num_train, num_val, num_test) < 1:
            raise SpecError(FIELD, "num_train, num_val and num_test must each be at least 1")
        if not parts or len(set(parts)) != len(parts):
            raise SpecError(f"{FIELD}.parts", f"name each of image, report, clinical once: {parts}")
        config = StudyConfig(dims, size, num_train, num_val, num_test, seed)
        self.manifest = ensure_studies(config, cache_dir)
        self.image_name = "ct" if dims == 3 else "xray"
        self.findings = FINDINGS
        factory = registry.get("dataset", "manifest", path="data.dataset").factory
        self._reader: DatasetReader = factory(
            registry=registry,
            path=str(self.manifest),
            modalities=self._columns(parts, dims, size),
            target=_TARGETS[target],
            on_error="raise",
        )

    def _columns(self, parts: Sequence[str], dims: int, size: int) -> dict[str, dict]:
        columns: dict[str, dict] = {}
        if "image" in parts:
            columns[self.image_name] = (
                {"loader": "volume", "column": "image"}
                if dims == 3
                else {
                    "loader": "image",
                    "column": "image",
                    "params": {"mode": "L", "image_size": size},
                }
            )
        if "report" in parts:
            columns["report"] = {"loader": "text", "column": "report"}
        if "clinical" in parts:
            columns["clinical"] = {
                "loader": "tabular",
                "columns": [*LAB_COLUMNS, *CATEGORICAL_COLUMNS],
                "params": {"categorical": list(CATEGORICAL_COLUMNS)},
            }
        return columns

    @property
    def prompts(self) -> dict[str, dict[str, list[str]]]:
        """Zero-shot prompt pairs per finding (positive / negative phrasings)."""
        return {k: {side: list(v) for side, v in p.items()} for k, p in FINDING_PROMPTS.items()}

    @property
    def modalities(self) -> dict[str, Modality]:
        return self._reader.modalities

    @property
    def target(self) -> Target | None:
        return self._reader.target

    @property
    def splits(self) -> tuple[str, ...]:
        return self._reader.splits

    def load(self, split: str) -> Dataset:
        return self._reader.load(split)

    def labels(self, split: str) -> np.ndarray | None:
        return self._reader.labels(split)

    def metadata(self, split: str) -> dict[str, Sequence[Any]]:
        return self._reader.metadata(split)

    @property
    def folder(self) -> Path:
        return self.manifest.parent


_TARGETS: dict[str, dict | None] = {
    "findings": {
        "kind": "multilabel",
        "column": "findings",
        "classes": list(FINDINGS),
        "separator": "|",
    },
    "diagnosis": {"kind": "multiclass", "column": "diagnosis", "classes": ["benign", "malignant"]},
    "none": None,
}
