"""Writing a synthetic study collection: image files (NIfTI volumes or PNG X-rays), reports,
clinical tables and labels, listed in one ``studies.csv`` manifest with a ``split`` column.

The collection is a pure function of its parameters: it is generated once into a folder named
by their hash and reused after that. The folder is written complete or not at all (a temporary
folder, renamed when done).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from modalforge import io
from modalforge_medical.synthetic.anatomy import FINDINGS, render, sample_lesions
from modalforge_medical.synthetic.clinical import CATEGORICAL_COLUMNS, LAB_COLUMNS, sample_clinical
from modalforge_medical.synthetic.reports import write_report

MANIFEST = "studies.csv"
VERSION = 1  # bump when the generator changes, so cached collections are rebuilt
SPACING_MM = 1.5
HU_SCALE = 1000.0  # volumes are stored as int16 "intensity units": 0 (air) … 1000 (brightest)


@dataclass(frozen=True)
class StudyConfig:
    """What a collection is made of; its hash names the cache folder."""

    dims: int = 3
    size: int = 32
    num_train: int = 1200
    num_val: int = 200
    num_test: int = 400
    seed: int = 0
    lesion_prob: float = 0.5
    negate_prob: float = 0.75
    missing_prob: float = 0.12
    diagnosis_noise: float = 0.35

    def key(self) -> str:
        text = json.dumps({**asdict(self), "version": VERSION}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def default_cache_dir() -> Path:
    """``$MODALFORGE_CACHE/synthetic_studies``, else ``~/.cache/modalforge/synthetic_studies``."""
    base = os.environ.get("MODALFORGE_CACHE") or Path.home() / ".cache" / "modalforge"
    return Path(base) / "synthetic_studies"


def ensure_studies(config: StudyConfig, cache_dir: str | Path | None = None) -> Path:
    """The manifest of ``config``'s collection, generated into the cache on first use."""
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = folder / f"{'volumes' if config.dims == 3 else 'xrays'}-{config.key()}"
    manifest = target / MANIFEST
    if manifest.is_file():
        return manifest
    folder.mkdir(parents=True, exist_ok=True)
    with io.atomic_dir(target) as tmp:
        generate(config, tmp)
    return manifest


def generate(config: StudyConfig, out: Path) -> None:
    """Write ``config``'s studies under ``out``: ``images/``, then ``studies.csv``."""
    if config.dims not in (2, 3):
        raise ValueError(f"dims must be 2 or 3, got {config.dims}")
    rng = np.random.default_rng(config.seed)
    (out / "images").mkdir(parents=True, exist_ok=True)
    splits = ["train"] * config.num_train + ["val"] * config.num_val + ["test"] * config.num_test
    rows, burdens, risks = [], [], []
    for i, split in enumerate(splits):
        lesions = sample_lesions(rng, config.lesion_prob)
        image = render(lesions, config.size, config.dims, rng)
        report = write_report(lesions, rng, config.negate_prob)
        clinical = sample_clinical(rng, config.missing_prob)
        name = f"study{i:05d}"
        path = _write_image(image, out / "images", name, config.dims)
        findings = [f for f, present in lesions.findings().items() if present]
        rows.append(
            {
                "study_id": name,
                "split": split,
                "image": path.relative_to(out).as_posix(),
                "report": report.text,
                **{c: clinical.values[c] for c in LAB_COLUMNS + CATEGORICAL_COLUMNS},
                "findings": "|".join(findings),
                "negated": "|".join(report.negated),
                "lesion_count": lesions.total,
            }
        )
        burdens.append(lesions.burden())
        risks.append(clinical.risk)
    burden = np.asarray(burdens)
    burden_z = (burden - burden.mean()) / (burden.std() + 1e-8)
    noise = rng.normal(0.0, config.diagnosis_noise, len(rows))
    score = burden_z + np.asarray(risks) + noise
    for row, s in zip(rows, score, strict=True):
        row["diagnosis"] = "malignant" if s > 0.35 else "benign"
    _write_csv(out / MANIFEST, rows)


def _write_image(image: np.ndarray, folder: Path, name: str, dims: int) -> Path:
    if dims == 3:
        import nibabel as nib

        data = np.round(image * HU_SCALE).astype(np.int16)
        affine = np.diag([SPACING_MM, SPACING_MM, SPACING_MM, 1.0])
        path = folder / f"{name}.nii.gz"
        nib.save(nib.Nifti1Image(data, affine), str(path))
        return path
    from PIL import Image

    path = folder / f"{name}.png"
    Image.fromarray(np.round(image * 255).astype(np.uint8), mode="L").save(path)
    return path


def _write_csv(path: Path, rows: list[dict]) -> None:
    def cell(value: object) -> object:
        return "" if isinstance(value, float) and math.isnan(value) else value

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows({k: cell(v) for k, v in row.items()} for row in rows)

    io.write_with(path, write)


__all__ = ["FINDINGS", "MANIFEST", "StudyConfig", "default_cache_dir", "ensure_studies"]
