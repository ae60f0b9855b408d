"""Tabular preprocessing fitted on the training split: imputation and standardisation.

Both learn per-feature statistics in :meth:`fit` (from the training split only, as the pipeline
calls it) and keep them as plain lists, which every checkpoint stores, so evaluation and
inference apply exactly the training statistics. Missing values are ``NaN`` in the feature
vector (a manifest's empty cells).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from modalforge.contracts import Transform
from modalforge.errors import DataError
from modalforge.modality import Modality, ModalityKind

TABULAR_KINDS = (ModalityKind.TABULAR, ModalityKind.LOWDIM)


def _stack(samples: Iterable[Any], name: str) -> Tensor:
    rows = [torch.as_tensor(s, dtype=torch.float64).reshape(-1) for s in samples]
    if not rows:
        raise DataError(
            f"modality {name!r}: the training split has no readable samples to fit on",
            hint="check the data set and data.train_split",
        )
    return torch.stack(rows)


def _nanmedian(x: Tensor) -> Tensor:
    import warnings

    with warnings.catch_warnings():  # an all-missing feature: NaN here, the constant below
        warnings.simplefilter("ignore", RuntimeWarning)
        return torch.from_numpy(np.nanmedian(x.numpy(), axis=0))


class Impute(Transform):
    """Replace missing (``NaN``) features by the training split's ``mean``, ``median`` or a
    ``constant``; with ``indicators``, append one 0/1 feature per input feature that says
    whether it was missing (so the model can learn from missingness itself)."""

    accepts = TABULAR_KINDS
    raw = False
    fitted = True

    def __init__(
        self,
        modality: Modality,
        strategy: Literal["mean", "median", "constant"] = "median",
        fill_value: float = 0.0,
        indicators: bool = True,
    ) -> None:
        super().__init__(modality)
        if modality.shape[0] is None:
            raise ValueError(f"modality {modality.describe()} needs a fixed number of features")
        self.strategy = strategy
        self.fill_value = float(fill_value)
        self.indicators = indicators
        self.values: Tensor | None = None

    def output(self) -> Modality:
        if not self.indicators:
            return self.modality
        n = int(self.modality.shape[0])
        features = list(self.modality.metadata.get("features") or [str(i) for i in range(n)])
        metadata = {
            **self.modality.metadata,
            "features": [*features, *(f"{f}_missing" for f in features)],
        }
        return replace(self.modality, shape=(2 * n,), metadata=metadata)

    def fit(self, samples: Iterable[Any]) -> None:
        x = _stack(samples, self.modality.name)
        if self.strategy == "constant":
            values = torch.full((x.shape[1],), self.fill_value, dtype=torch.float64)
        else:
            # numpy's median averages the two middle values (as scikit-learn); torch's takes one
            values = x.nanmean(0) if self.strategy == "mean" else _nanmedian(x)
            # a feature missing from every training sample gets the constant
            values = torch.where(values.isnan(), torch.tensor(self.fill_value).double(), values)
        self.values = values.float()
        self._fitted = True

    def __call__(self, sample: Any) -> Tensor:  # noqa: ANN401
        self.require_fitted()
        x = torch.as_tensor(sample, dtype=torch.float32)
        missing = x.isnan()
        out = torch.where(missing, self.values, x)
        return torch.cat([out, missing.float()]) if self.indicators else out

    def state_dict(self) -> dict[str, Any]:
        return {"values": None if self.values is None else self.values.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        values = torch.tensor(state["values"], dtype=torch.float32)
        if values.shape != (self.modality.shape[0],):
            raise DataError(
                f"imputation values for {values.numel()} features, but modality "
                f"{self.modality.describe()} has {self.modality.shape[0]}"
            )
        self.values = values
        self._fitted = True


class Standardize(Transform):
    """``(x - mean) / std`` per feature with the training split's statistics (missing values
    ignored when fitting and kept missing); constant features are only centred.

    ``skip_binary`` leaves 0/1 features (one-hot categories, missing-value indicators) as they
    are, as scikit-learn users do with a ``ColumnTransformer``.
    """

    accepts = TABULAR_KINDS
    raw = False
    fitted = True

    def __init__(self, modality: Modality, skip_binary: bool = True, eps: float = 1e-8) -> None:
        super().__init__(modality)
        self.skip_binary = skip_binary
        self.eps = eps
        self.mean: Tensor | None = None
        self.std: Tensor | None = None

    def fit(self, samples: Iterable[Any]) -> None:
        x = _stack(samples, self.modality.name)
        present = ~x.isnan()
        count = present.sum(0).clamp_min(1)
        mean = torch.where(present, x, 0).sum(0) / count
        var = torch.where(present, (x - mean) ** 2, 0).sum(0) / count  # population std, as sklearn
        std = var.sqrt()
        std = torch.where(std < self.eps, torch.ones_like(std), std)
        if self.skip_binary:
            binary = (torch.where(present, x, 0) * (1 - torch.where(present, x, 0))).abs().sum(
                0
            ) == 0
            mean = torch.where(binary, torch.zeros_like(mean), mean)
            std = torch.where(binary, torch.ones_like(std), std)
        self.mean, self.std = mean.float(), std.float()
        self._fitted = True

    def __call__(self, sample: Any) -> Tensor:  # noqa: ANN401
        self.require_fitted()
        return (torch.as_tensor(sample, dtype=torch.float32) - self.mean) / self.std

    def state_dict(self) -> dict[str, Any]:
        if self.mean is None:
            return {}
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        mean = torch.tensor(state["mean"], dtype=torch.float32)
        if mean.shape != (self.modality.shape[0],):
            raise DataError(
                f"standardisation statistics for {mean.numel()} features, but modality "
                f"{self.modality.describe()} has {self.modality.shape[0]}"
            )
        self.mean, self.std = mean, torch.tensor(state["std"], dtype=torch.float32)
        self._fitted = True
