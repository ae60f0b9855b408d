"""Built-in metrics: ``accuracy``, ``macro_f1``, ``roc_auc`` (classification), ``mae``, ``rmse``;
for embedding models ``zeroshot``, ``zeroshot_findings`` (prompt pairs), ``retrieval``,
``linear_probe`` and ``svm_probe``; ``clinical`` (the clinical table with bootstrap confidence
intervals, also as :func:`clinical_report`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modalforge.plugin import hookimpl
from modalforge_metrics.classification import Accuracy, MacroF1, RocAuc
from modalforge_metrics.clinical import Clinical, clinical_report
from modalforge_metrics.probes import LinearProbe, SvmProbe
from modalforge_metrics.regression import MAE, RMSE
from modalforge_metrics.retrieval import Retrieval
from modalforge_metrics.zeroshot import ZeroShot
from modalforge_metrics.zeroshot_pairs import ZeroShotFindings

if TYPE_CHECKING:
    from modalforge.registry import Registrar

__all__ = [
    "MAE",
    "RMSE",
    "Accuracy",
    "Clinical",
    "LinearProbe",
    "MacroF1",
    "Retrieval",
    "RocAuc",
    "SvmProbe",
    "ZeroShot",
    "ZeroShotFindings",
    "clinical_report",
    "register_components",
]


@hookimpl
def register_components(registry: Registrar) -> None:
    registry.metric("accuracy", Accuracy, tags=("multiclass", "multilabel"))
    registry.metric("macro_f1", MacroF1, tags=("multiclass", "multilabel"))
    registry.metric("roc_auc", RocAuc, tags=("multiclass", "multilabel"))
    registry.metric("clinical", Clinical, tags=("multiclass", "multilabel", "medical", "bootstrap"))
    registry.metric("mae", MAE, tags=("regression",))
    registry.metric("rmse", RMSE, tags=("regression",))
    registry.metric("zeroshot", ZeroShot, tags=("contrastive", "multiclass"))
    registry.metric("zeroshot_findings", ZeroShotFindings, tags=("contrastive", "multilabel"))
    registry.metric("retrieval", Retrieval, tags=("contrastive",))
    registry.metric("linear_probe", LinearProbe, tags=("embedding", "multiclass", "multilabel"))
    registry.metric("svm_probe", SvmProbe, tags=("embedding", "multiclass", "multilabel"))
