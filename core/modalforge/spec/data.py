"""The ``data.split`` and ``data.transforms`` sections of a spec."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, field_validator, model_validator

from modalforge.spec.ref import ComponentRef


class SplitSpec(BaseModel):
    """Divide one split of the data set into named parts, optionally grouped and stratified.

    ``fractions`` name the parts and their shares of the samples. ``group`` keeps every sample
    of a group (a patient, an episode, a subject) in one part; ``stratify`` keeps each class's
    share the same in every part. With ``folds: K`` the part named ``fold_split`` (``test``) is
    fold ``fold`` of K, so K runs with ``fold: 0 .. K-1`` test every sample exactly once; the
    other parts divide the rest by their fractions.
    """

    model_config = ConfigDict(extra="forbid")

    source: str | None = Field(
        None, description="the data set's split to divide; default: its only split"
    )
    fractions: dict[str, float] = Field(
        default_factory=lambda: {"train": 0.8, "test": 0.2},
        description="part name → share of the samples (positive, summing to 1)",
    )
    seed: NonNegativeInt = Field(0, description="the assignment depends only on this and the data")
    stratify: bool | None = Field(
        None, description="keep class shares equal across parts; default: yes for multiclass"
    )
    group: str | None = Field(
        None, description="per-sample column whose equal values stay in one part (e.g. patient)"
    )
    group_pattern: str | None = Field(
        None,
        description="regular expression applied to the group column; its first capture group "
        "(or the whole match) is the group, e.g. '^(\\w+)_' for file names like p01_scan3.png",
    )
    folds: int | None = Field(None, ge=2, description="k-fold cross-validation: number of folds")
    fold: NonNegativeInt = Field(0, description="with folds: which fold is held out")
    fold_split: str = Field("test", description="with folds: the part that is the held-out fold")

    @field_validator("fractions")
    @classmethod
    def _fractions(cls, fractions: dict[str, float]) -> dict[str, float]:
        if not fractions:
            raise ValueError("name at least one part, e.g. {train: 0.8, test: 0.2}")
        bad = {k: v for k, v in fractions.items() if not v > 0}
        if bad:
            raise ValueError(f"fractions must be positive, got {bad}")
        total = sum(fractions.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"fractions must sum to 1, got {total:g} ({fractions})")
        return fractions

    @field_validator("group_pattern")
    @classmethod
    def _pattern(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return pattern

    @model_validator(mode="after")
    def _folds(self) -> SplitSpec:
        if self.group_pattern is not None and self.group is None:
            raise ValueError("`group_pattern` needs a `group` column to apply to")
        if self.folds is None:
            if self.fold:
                raise ValueError("`fold` needs `folds` (the number of folds)")
            return self
        if self.fold >= self.folds:
            raise ValueError(f"`fold` must be from 0 to {self.folds - 1}, got {self.fold}")
        if self.fold_split not in self.fractions:
            raise ValueError(
                f"with `folds`, `fractions` must name the held-out part {self.fold_split!r}"
            )
        return self


class TransformsSpec(BaseModel):
    """Per-modality transform chains.

    ``pre`` is deterministic preprocessing applied first to every sample (e.g. a volume's
    orientation, resampling and windowing), the part ``data.cache`` can keep; ``train`` is the
    augmentation applied to training samples only, after ``pre``; ``eval`` is the preprocessing
    every sample gets, in training too (after the augmentation, before the encoder's own
    preprocessing, e.g. timm's resize and normalisation).
    """

    model_config = ConfigDict(extra="forbid")

    pre: dict[str, list[ComponentRef]] = Field(
        default_factory=dict,
        description="modality → deterministic steps before the augmentation (every phase; "
        "cacheable with data.cache)",
    )
    train: dict[str, list[ComponentRef]] = Field(
        default_factory=dict, description="modality → augmentation steps (training only)"
    )
    eval: dict[str, list[ComponentRef]] = Field(
        default_factory=dict, description="modality → preprocessing steps (every phase)"
    )

    def refs(self) -> list[tuple[str, ComponentRef]]:
        """``(field path, ref)`` of every step."""
        out: list[tuple[str, ComponentRef]] = []
        for phase in ("pre", "train", "eval"):
            for modality, steps in getattr(self, phase).items():
                out += [(f"data.transforms.{phase}.{modality}.{i}", r) for i, r in enumerate(steps)]
        return out

    def modalities(self) -> list[str]:
        return list(dict.fromkeys([*self.pre, *self.train, *self.eval]))
