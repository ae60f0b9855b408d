"""Built-in synthetic medical studies (``synthetic_studies``): volumes or X-rays with lesions,
reports with negations and paraphrases, clinical tables, findings and a diagnosis."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modalforge_medical.synthetic.anatomy import FINDINGS
from modalforge_medical.synthetic.reader import SyntheticStudies
from modalforge_medical.synthetic.reports import FINDING_PROMPTS
from modalforge_medical.synthetic.studies import StudyConfig, ensure_studies

if TYPE_CHECKING:
    from modalforge.registry import Registrar

__all__ = [
    "FINDINGS",
    "FINDING_PROMPTS",
    "StudyConfig",
    "SyntheticStudies",
    "ensure_studies",
    "register",
]


def register(registry: Registrar) -> None:
    registry.dataset(
        "synthetic_studies",
        SyntheticStudies,
        tags=("medical", "volume3d", "image2d", "report", "tabular", "offline"),
    )
