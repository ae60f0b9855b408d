"""Per-modality transform chains built from ``data.transforms``, fitted on the training split.

For each modality the pipeline runs, in a data-loader worker, per sample:

- training: ``pre`` steps → ``train`` steps (augmentation) → ``eval`` steps → the encoder's
  ``preprocess()``;
- evaluation and inference: ``pre`` steps → ``eval`` steps → the encoder's ``preprocess()``.

``pre`` holds deterministic, unfitted steps only, so ``data.cache`` can keep its output
(:mod:`modalforge.data.cache`). A chain's output is a plain ``torch.Tensor`` where a step left a
tensor subclass that carries metadata (MONAI's ``MetaTensor``, via its ``as_tensor()``), so that
the encoders, timm, transformers and ``torch.compile`` see plain tensors.

Fitted steps (tabular standardisation, imputation) learn their statistics from the training
split, each from the samples as the steps before it leave them, and are stored with every
checkpoint (:func:`chains_state` / :func:`load_chains_state`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import Dataset

from modalforge.contracts import Transform
from modalforge.contracts.encoder import check_accepts
from modalforge.errors import CheckpointError, DataError, SpecError
from modalforge.modality import Modality, ModalityKind

PHASES = ("pre", "train", "eval")


def plain_tensor(value: Any) -> Any:  # noqa: ANN401 - any sample value
    """A tensor subclass with an ``as_tensor()`` (MONAI's ``MetaTensor``) as a plain
    ``torch.Tensor`` sharing its storage; any other value unchanged."""
    if isinstance(value, torch.Tensor) and type(value) is not torch.Tensor:
        as_tensor = getattr(value, "as_tensor", None)
        if callable(as_tensor):
            return as_tensor()
    return value


def plain_sample(sample: Any) -> Any:  # noqa: ANN401 - a dict sample (or anything)
    """:func:`plain_tensor` of every value of a dict sample (other samples: of the sample)."""
    if isinstance(sample, Mapping):
        return {k: plain_tensor(v) for k, v in sample.items()}
    return plain_tensor(sample)


class TransformChain:
    """Steps applied in order to one modality's sample; picklable for loader workers.

    Metadata a step attaches (a MetaTensor's affine) flows to the next step; the chain's own
    output is a plain tensor (:func:`plain_tensor`).
    """

    def __init__(self, steps: Sequence[Callable[[Any], Any]]) -> None:
        self.steps = list(steps)

    def __call__(self, sample: Any) -> Any:  # noqa: ANN401 - any modality's sample
        for step in self.steps:
            sample = step(sample)
        return plain_tensor(sample)

    def __len__(self) -> int:
        return len(self.steps)

    def __repr__(self) -> str:
        return " → ".join(type(s).__name__ for s in self.steps) or "(none)"


@dataclass
class ModalityTransforms:
    """The transform chains of all modalities, and the modalities as the encoders see them.

    ``described`` holds each built step's ``{"name", "params"}`` (the validated parameters) by
    ``"<phase>.<modality>"``, so a cache can name a chain by what it computes.
    """

    train: dict[str, list[Transform]] = field(default_factory=dict)
    eval: dict[str, list[Transform]] = field(default_factory=dict)
    modalities: dict[str, Modality] = field(default_factory=dict)
    pre: dict[str, list[Transform]] = field(default_factory=dict)
    described: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def steps(self, modality: str, *, train: bool) -> list[Transform]:
        """The spec's steps for ``modality`` in one phase, in the order they run."""
        steps = list(self.pre.get(modality, []))
        if train:
            steps += self.train.get(modality, [])
        return steps + self.eval.get(modality, [])

    def chain(self, modality: str, *, train: bool, then: Callable[[Any], Any] | None = None):  # noqa: ANN201
        """The callable for ``modality`` in one phase, ending with ``then`` (the encoder's
        preprocessing), or ``None`` when there is nothing to do."""
        steps: list[Callable[[Any], Any]] = list(self.steps(modality, train=train))
        if then is not None:
            steps.append(then)
        return TransformChain(steps) if steps else None

    def deterministic_prefix(self, modality: str, *, train: bool) -> int:
        """How many of :meth:`steps` run before the first random or fitted one: their output
        depends on the sample alone (fitted steps depend on the training statistics too)."""
        steps = self.steps(modality, train=train)
        return next((i for i, s in enumerate(steps) if s.random or s.fitted), len(steps))

    def describe(self, modality: str, *, train: bool, count: int) -> list[dict[str, Any]]:
        """The first ``count`` of :meth:`steps`, each as ``{"name", "params"}``."""
        phases = ("pre", "train", "eval") if train else ("pre", "eval")
        every = [d for p in phases for d in self.described.get(f"{p}.{modality}", [])]
        return every[:count]

    def fitted(self) -> list[tuple[str, int, Transform]]:
        """``(modality, position in its eval chain, step)`` of every fitted step."""
        return [(m, i, t) for m, ts in self.eval.items() for i, t in enumerate(ts) if t.fitted]


def build_transforms(
    spec: Any,  # noqa: ANN401 - a PipelineSpec
    modalities: Mapping[str, Modality],
    registry: Any,  # noqa: ANN401 - a Registry
    params: Mapping[str, dict[str, Any]],
    instantiate: Callable[..., Any],
) -> ModalityTransforms:
    """Build every step of ``spec.data.transforms`` with the modality it receives.

    Each step is sized from the previous step's output modality; the ``train`` chain must leave
    the modality as it found it (augmentation changes values, not shapes), so that training and
    evaluation samples batch and encode alike; the ``pre`` chain must be deterministic and
    unfitted (it runs before the augmentation, and ``data.cache`` keeps its output).
    """
    declared = spec.data.transforms
    unknown = [m for m in declared.modalities() if m not in modalities]
    if unknown:
        phase = next(p for p in PHASES if unknown[0] in getattr(declared, p))
        raise SpecError(
            f"data.transforms.{phase}.{unknown[0]}",
            f"the data set has no modality {unknown[0]!r}",
            hint=f"use one of: {', '.join(modalities)}",
        )
    out = ModalityTransforms(modalities=dict(modalities))
    for name, modality in modalities.items():
        current = modality
        for phase in PHASES:
            steps = []
            described = []
            before = current
            for i, ref in enumerate(getattr(declared, phase).get(name, [])):
                path = f"data.transforms.{phase}.{name}.{i}"
                info = registry.get("transform", ref.name, path=f"{path}.name")
                check_accepts(info.factory, current, kind="transform", field=path)
                _check_raw(info, current, path)
                step = instantiate(info, params[path], path, modality=current)
                if phase == "train" and step.fitted:
                    raise SpecError(
                        path,
                        f"{ref.name!r} is fitted to the training data, so it belongs to the "
                        "preprocessing every sample gets",
                        hint=f"move it to data.transforms.eval.{name} (training applies the eval "
                        "steps too, after the train augmentation)",
                    )
                if phase == "pre" and (step.random or step.fitted):
                    what = "random" if step.random else "fitted to the training data"
                    where = "train" if step.random else "eval"
                    raise SpecError(
                        path,
                        f"{ref.name!r} is {what}, but data.transforms.pre holds the "
                        "deterministic steps every sample gets first (and data.cache keeps)",
                        hint=f"move it to data.transforms.{where}.{name}",
                    )
                steps.append(step)
                described.append({"name": ref.name, "params": _jsonable(params[path])})
                current = step.output()
            if phase == "train" and current != before:
                raise SpecError(
                    f"data.transforms.train.{name}",
                    f"the augmentation turns {before.describe()} into {current.describe()}",
                    hint="augmentation must keep the shape; put resizing steps under "
                    f"data.transforms.pre.{name} or data.transforms.eval.{name}, which every "
                    "phase applies",
                )
            if steps:
                getattr(out, phase)[name] = steps
                out.described[f"{phase}.{name}"] = described
        out.modalities[name] = current
    return out


def _jsonable(value: Any) -> Any:  # noqa: ANN401
    """Validated parameters as JSON values (tuples as lists, anything else by its repr)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items() if k != "modality"}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def _check_raw(info: Any, modality: Modality, path: str) -> None:  # noqa: ANN401
    needs_raw = getattr(info.factory, "raw", None)
    if needs_raw is True and not modality.is_raw:
        raise SpecError(
            path,
            f"{info.name!r} works on raw samples ({_raw_kind(modality)}), but {modality.name!r} "
            f"holds {modality.dtype} tensors",
            hint=f"see `modalforge components transform` for transforms of {modality.kind} tensors",
        )
    if needs_raw is False and modality.is_raw:
        raise SpecError(
            path,
            f"{info.name!r} works on tensors, but {modality.name!r} holds raw {modality.dtype} "
            "samples until the encoder's preprocessing turns them into tensors",
            hint="raw images are resized and normalised by the image encoder's own "
            "preprocessing; leave this step out, or use a data set that yields tensors",
        )


def _raw_kind(modality: Modality) -> str:
    return "PIL images" if modality.kind in (ModalityKind.IMAGE2D, ModalityKind.DEPTH) else "text"


def modality_samples(data: Dataset, name: str) -> Iterable[Any]:
    """One modality's samples of ``data``, read as cheaply as the data set allows.

    A data set with a ``modality_samples(name)`` method (a manifest reads one column, not the
    images) answers itself; otherwise each sample is read and unreadable ones (``None``) skipped.
    """
    method = getattr(data, "modality_samples", None)
    if method is not None:
        return method(name)
    return (s[name] for s in (data[i] for i in range(len(data))) if s is not None)  # type: ignore[arg-type]


def fit_transforms(transforms: ModalityTransforms, data: Dataset, split: str) -> None:
    """Fit every fitted eval step on ``data`` (the training split), in chain order (each on
    the samples as the ``pre`` steps and the eval steps before it leave them)."""
    for modality, steps in transforms.eval.items():
        if not any(s.fitted for s in steps):
            continue
        pre = transforms.pre.get(modality, [])
        for i, step in enumerate(steps):
            if step.fitted:
                before = TransformChain([*pre, *steps[:i]])
                step.fit(before(x) for x in modality_samples(data, modality))
    for modality, kind in transforms.modalities.items():
        if kind.kind in (ModalityKind.TABULAR, ModalityKind.LOWDIM):
            _check_finite(transforms, data, modality, split)


def _check_finite(transforms: ModalityTransforms, data: Dataset, modality: str, split: str) -> None:
    """Missing tabular values must be imputed before they reach an encoder (NaN loss otherwise)."""
    chain = transforms.chain(modality, train=False) or TransformChain([])
    for i, x in enumerate(modality_samples(data, modality)):
        x = chain(x)
        if isinstance(x, torch.Tensor) and x.is_floating_point() and not torch.isfinite(x).all():
            features = transforms.modalities[modality].metadata.get("features") or ()
            bad = torch.nonzero(~torch.isfinite(x)).flatten().tolist()
            shown = ", ".join(repr(features[j]) if j < len(features) else str(j) for j in bad[:3])
            raise DataError(
                f"modality {modality!r}: sample {i} of split {split!r} has missing or non-finite "
                f"values (feature {shown}) after data.transforms.eval.{modality}",
                hint=f"add an imputation step, e.g. data.transforms.eval.{modality}: "
                "[{name: impute, params: {strategy: median}}, standardize]",
            )
        if i >= 100_000:  # enough to catch a column with missing values; bounded time
            return


def chains_state(transforms: ModalityTransforms) -> dict[str, Any]:
    """The fitted steps' statistics as JSON: ``{"<modality>.<position>": state}``."""
    return {f"{m}.{i}": t.state_dict() for m, i, t in transforms.fitted()}


def load_chains_state(transforms: ModalityTransforms, state: Mapping[str, Any] | None) -> None:
    """Restore :func:`chains_state`; a :class:`CheckpointError` when a fitted step is missing."""
    state = dict(state or {})
    for modality, i, step in transforms.fitted():
        key = f"{modality}.{i}"
        if key not in state:
            raise CheckpointError(
                f"the checkpoint stores no statistics for fitted transform {key} "
                f"({type(step).__name__} of data.transforms.eval.{modality})",
                hint="use the checkpoint with the spec it was trained with, or retrain",
            )
        step.load_state_dict(state[key])
