"""Built-in metrics: ``accuracy``, ``macro_f1``, ``roc_auc`` (classification), ``mae``, ``rmse``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modalforge.plugin import hookimpl
from modalforge_metrics.classification import Accuracy, MacroF1, RocAuc
from modalforge_metrics.regression import MAE, RMSE

if TYPE_CHECKING:
    from modalforge.registry import Registrar

__all__ = ["MAE", "RMSE", "Accuracy", "MacroF1", "RocAuc", "register_components"]


@hookimpl
def register_components(registry: Registrar) -> None:
    registry.metric("accuracy", Accuracy, tags=("multiclass", "multilabel"))
    registry.metric("macro_f1", MacroF1, tags=("multiclass", "multilabel"))
    registry.metric("roc_auc", RocAuc, tags=("multiclass", "multilabel"))
    registry.metric("mae", MAE, tags=("regression",))
    registry.metric("rmse", RMSE, tags=("regression",))
