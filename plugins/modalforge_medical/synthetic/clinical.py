"""Clinical tables of synthetic studies: age, sex and lab values, some missing, whose risk score
joins the image's lesion burden in the diagnosis, so that neither modality alone is enough."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Numeric columns (with missing values) and the categorical one.
LAB_COLUMNS: tuple[str, ...] = ("age", "crp", "wbc", "albumin")
CATEGORICAL_COLUMNS: tuple[str, ...] = ("sex",)


@dataclass(frozen=True)
class ClinicalRow:
    values: dict[str, float | str]
    risk: float  # standardised clinical risk, the table's part of the diagnosis


def sample_clinical(rng: np.random.Generator, missing_prob: float = 0.12) -> ClinicalRow:
    """One patient's row; each lab value is missing (NaN) with probability ``missing_prob``."""
    age = rng.normal(60.0, 12.0)
    sex = str(rng.choice(["F", "M"]))
    crp = rng.lognormal(1.6, 0.7)  # mg/L
    wbc = rng.normal(7.5, 2.0)  # 10^9/L
    albumin = rng.normal(40.0, 5.0)  # g/L
    risk = (
        0.55 * (age - 60.0) / 12.0
        + 0.75 * (np.log(crp) - 1.6) / 0.7
        + 0.45 * (wbc - 7.5) / 2.0
        - 0.55 * (albumin - 40.0) / 5.0
        + (0.25 if sex == "M" else -0.25)
    ) / 1.22
    values: dict[str, float | str] = {
        "age": round(float(age), 1),
        "crp": round(float(crp), 2),
        "wbc": round(float(wbc), 2),
        "albumin": round(float(albumin), 1),
        "sex": sex,
    }
    for column in ("crp", "wbc", "albumin"):
        if rng.random() < missing_prob:
            values[column] = float("nan")
    return ClinicalRow(values, float(risk))
