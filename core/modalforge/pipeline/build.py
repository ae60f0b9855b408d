"""Assemble a pipeline from a validated spec: data set, model, loss and metrics.

Sizes flow from the data to the head: each encoder is bound to its modality, the fusion is sized
from the encoders' declared outputs, and the head from the fusion's output and the data's target.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn
from torch.utils.data import Dataset

from modalforge.contracts import KINDS, DatasetReader, Encoder, Generator, Loss, Metric
from modalforge.contracts.dataset import Target
from modalforge.contracts.features import FeatureSpec
from modalforge.contracts.fusion import Fusion
from modalforge.data.cache import (
    CachedDataset,
    cache_key,
    describe_source,
    prefix_chains,
    write_description,
)
from modalforge.data.split import SplitReader, check_classes_in
from modalforge.data.transforms import (
    ModalityTransforms,
    build_transforms,
    chains_state,
    fit_transforms,
    load_chains_state,
)
from modalforge.errors import DataError, ModalforgeError, PluginError, SizeMismatchError, SpecError
from modalforge.modality import Modality
from modalforge.pipeline.contrastive import ContrastiveModel
from modalforge.pipeline.model import MultimodalModel
from modalforge.registry import ComponentInfo, Registry
from modalforge.spec.loader import validate_components
from modalforge.spec.schema import PipelineSpec


@dataclass
class Pipeline:
    """Everything a run needs, built from one spec.

    ``transforms`` turn raw samples (captions, PIL images) into tensors, per modality; they come
    from the encoders' ``preprocess()``. ``data_transforms`` are the spec's own steps
    (``data.transforms``: augmentation in training, preprocessing always). :meth:`load` applies
    both, in that order. ``collates`` batch those
    modalities whose encoder has its own ``collate()`` (e.g. padding captions to the longest in
    the batch); every loader of pipeline samples passes them to
    :func:`modalforge.engine.data.collate_samples`.
    """

    spec: PipelineSpec
    dataset: DatasetReader
    model: nn.Module
    loss: Loss | None
    metrics: dict[str, Metric]
    transforms: dict[str, Callable[[Any], Any]] = field(default_factory=dict)
    data_transforms: ModalityTransforms = field(default_factory=ModalityTransforms)
    # train.optimizer / scheduler / callbacks / loggers (a TrainParts; None: built by the trainer)
    train_parts: Any = None
    collates: dict[str, Callable[[list[Any]], Any]] = field(default_factory=dict)

    @property
    def modalities(self) -> dict[str, Modality]:
        """The modalities as the encoders see them (after ``data.transforms``)."""
        return self.data_transforms.modalities or dict(self.dataset.modalities)

    def load(self, split: str, *, train: bool = False) -> Dataset:
        """The data set's ``split`` with every sample transformed for the model: with
        ``train=True`` the training augmentation too."""
        data = self.dataset.load(split)
        if self.spec.data.cache != "none":
            return self._cached(data, split, train=train)
        chains = {}
        for name in self.dataset.modalities:
            chain = self.data_transforms.chain(name, train=train, then=self.transforms.get(name))
            if chain is not None:
                chains[name] = chain
        return TransformedDataset(data, chains) if chains else data

    def _cached(self, data: Dataset, split: str, *, train: bool) -> Dataset:
        """``data`` through the cached deterministic prefix, then the rest of each chain."""
        prefix, rest, steps = prefix_chains(
            self.data_transforms, list(self.dataset.modalities), train=train, then=self.transforms
        )
        description = {**describe_source(self.spec, split), "steps": steps}
        cached = CachedDataset(
            TransformedDataset(data, prefix) if prefix else data,
            self.spec.data.cache,
            folder=self.spec.data.cache_dir,
            key=cache_key(description),
        )
        write_description(cached, description)
        return TransformedDataset(cached, rest) if rest else cached

    def fit_transforms(self, split: str | None = None) -> None:
        """Fit the fitted ``data.transforms`` steps on ``split`` (default: the training split)."""
        split = split or self.spec.data.train_split
        fit_transforms(self.data_transforms, self.dataset.load(split), split)

    def transform_state(self) -> dict[str, Any]:
        """What the fitted transforms learned (stored with every checkpoint)."""
        return chains_state(self.data_transforms)

    def load_transform_state(self, state: dict[str, Any] | None) -> None:
        """Restore :meth:`transform_state` (from a checkpoint)."""
        load_chains_state(self.data_transforms, state)


class TransformedDataset(Dataset):
    """Applies per-modality transforms to each dict sample (runs in loader workers)."""

    def __init__(self, data: Dataset, transforms: Mapping[str, Callable[[Any], Any]]) -> None:
        self.data = data
        self.transforms = dict(transforms)

    def __len__(self) -> int:
        return len(self.data)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        raw = self.data[index]
        if raw is None:  # a sample the reader skipped (unreadable); the engine's collate drops it
            return None
        sample = dict(raw)
        for name, fn in self.transforms.items():
            if name in sample:
                sample[name] = fn(sample[name])
        return sample


def build_pipeline(spec: PipelineSpec, registry: Registry | None = None) -> Pipeline:
    """Validate every component's parameters first, then build (the heavy part)."""
    if registry is None:
        from modalforge.plugin import get_registry

        registry = get_registry()
    params = validate_components(spec, registry)
    from modalforge.pipeline.train_parts import build_train_parts

    train_parts = build_train_parts(spec, registry, params)  # light, and errors come early

    def info(kind: str, path: str) -> ComponentInfo:
        ref = _ref_at(spec, path)
        return registry.get(kind, ref.name, path=f"{path}.name")

    dataset = instantiate(
        info("dataset", "data.dataset"),
        params["data.dataset"],
        "data.dataset",
        registry=registry,
    )
    if spec.data.split is not None:
        dataset = SplitReader(dataset, spec.data.split, name=spec.data.dataset.name)
    for split in filter(None, (spec.data.train_split, spec.data.eval_split)):
        if split not in dataset.splits:
            field = "data.train_split" if split == spec.data.train_split else "data.eval_split"
            raise SpecError(
                field,
                f"data set {spec.data.dataset.name!r} has no split {split!r}",
                hint=f"use one of: {', '.join(dataset.splits)}",
            )
    check_classes_in(dataset, spec.data.train_split, "data.train_split")
    data_transforms = build_transforms(spec, dataset.modalities, registry, params, instantiate)
    modalities = data_transforms.modalities

    transforms: dict[str, Callable[[Any], Any]] = {}
    if spec.model.type == "generator":
        encoders = _build_encoders(spec, params, modalities, info) if spec.model.encoders else {}
        model = instantiate(
            info("generator", "model.generator"),
            params["model.generator"],
            "model.generator",
            modalities=modalities,
            target=dataset.target,
            encoders=encoders,
        )
        transforms = _raw_transforms(spec, modalities, encoders, generator=model)
    else:
        encoders = _build_encoders(spec, params, modalities, info)
        transforms = _raw_transforms(spec, modalities, encoders)
        if spec.model.type == "contrastive":
            try:
                model = ContrastiveModel(encoders, spec.model.embed_dim)
            except ValueError as exc:
                raise SpecError("model.embed_dim", str(exc)) from None
        else:
            model = _build_multimodal(spec, params, dataset, info, encoders)

    loss = None
    if spec.loss is not None:
        loss = instantiate(info("loss", "loss"), params["loss"], "loss", target=dataset.target)
        bind = getattr(loss, "bind_model", None)
        if bind is not None:  # a loss that needs a part of the model (e.g. a diffusion head)
            bind(model)
    metrics: dict[str, Metric] = {}
    for i, ref in enumerate(spec.metrics):
        path = f"metrics.{i}"
        metrics[ref.name] = instantiate(
            info("metric", path), params[path], path, target=dataset.target, dataset=dataset
        )
    collates = {m: fn for m in transforms if m in encoders and (fn := encoders[m].collate())}
    return Pipeline(
        spec,
        dataset,
        model,
        loss,
        metrics,
        transforms,
        data_transforms,
        train_parts=train_parts,
        collates=collates,
    )


def _build_encoders(spec, params, available, info) -> dict[str, Encoder]:  # noqa: ANN001
    missing = [m for m in spec.model.encoders if m not in available]
    if missing:
        have = ", ".join(m.describe() for m in available.values()) or "none"
        raise DataError(
            f"data set {spec.data.dataset.name!r} (data.dataset) does not provide modality "
            f"{', '.join(repr(m) for m in missing)} needed by model.encoders; it provides: {have}",
            hint="rename the encoder keys to the data set's modality names, or use a data set "
            "that has these modalities",
        )
    conditions = _encoder_conditions(spec, params)
    encoders: dict[str, Encoder] = {}
    # encoders that condition others (e.g. the instruction of a FiLM-conditioned image trunk)
    # are built first: the conditioned ones are sized from their outputs (``condition_dim``)
    for mod in sorted(spec.model.encoders, key=lambda m: bool(conditions[m])):
        path = f"model.encoders.{mod}"
        condition_dim = sum(encoders[c].output.dim for c in conditions[mod]) or None
        encoders[mod] = instantiate(
            info("encoder", path),
            params[path],
            path,
            modality=available[mod],
            condition_dim=condition_dim,
        )
    encoders = {m: encoders[m] for m in spec.model.encoders}  # the spec's order
    return encoders


def _encoder_conditions(spec: PipelineSpec, params: Mapping[str, Any]) -> dict[str, list[str]]:
    """Each encoder's ``condition_on`` modalities, checked: other encoders of the spec, which are
    not conditioned themselves, in a supervised model."""
    names = list(spec.model.encoders)
    out: dict[str, list[str]] = {}
    for mod in names:
        path = f"model.encoders.{mod}.params.condition_on"
        value = params[f"model.encoders.{mod}"].get("condition_on") or []
        value = [value] if isinstance(value, str) else list(value)
        bad = [c for c in value if c not in names or c == mod]
        if bad:
            others = ", ".join(n for n in names if n != mod) or "none"
            raise SpecError(
                path,
                f"{', '.join(map(repr, bad))} is not another encoder of model.encoders",
                hint=f"condition on one of: {others}",
            )
        if value and spec.model.type != "supervised":
            raise SpecError(
                path,
                f"conditioned encoders need a supervised model (encoders → fusion → head), "
                f"not model.type {spec.model.type!r}",
                hint="remove condition_on, or use model.type: supervised",
            )
        out[mod] = value
    for mod, conds in out.items():
        chained = [c for c in conds if out[c]]
        if chained:
            raise SpecError(
                f"model.encoders.{mod}.params.condition_on",
                f"{', '.join(map(repr, chained))} is conditioned itself; conditions are one level "
                "deep",
                hint="condition on unconditioned encoders only (e.g. the instruction's)",
            )
    return out


def _raw_transforms(
    spec: PipelineSpec,
    modalities: Mapping[str, Modality],
    encoders: Mapping[str, Encoder],
    generator: Generator | None = None,
) -> dict[str, Callable[[Any], Any]]:
    """Each raw modality's preprocessing, from its encoder (or, for a generator's raw condition
    without an encoder, from the generator itself, e.g. its own caption tokenizer)."""
    transforms = {}
    if generator is not None:
        for mod, modality in modalities.items():
            if modality.is_raw and mod not in encoders:
                preprocess = getattr(generator, "preprocess", None)
                fn = preprocess(mod) if preprocess is not None else None
                if fn is None:
                    raise SpecError(
                        f"model.encoders.{mod}",
                        f"data set {spec.data.dataset.name!r} yields raw {modality.dtype} "
                        f"samples for {mod!r}, and generator {spec.model.generator.name!r} does "
                        "not tokenize them itself",
                        hint=f"add a condition encoder for {mod!r} under model.encoders (e.g. "
                        "clip_text), or use a generator with its own tokenizer",
                    )
                transforms[mod] = fn
    for mod, encoder in encoders.items():
        modality = modalities[mod]
        if not modality.is_raw:
            continue
        fn = encoder.preprocess()
        if fn is None:
            raise SpecError(
                f"model.encoders.{mod}",
                f"data set {spec.data.dataset.name!r} yields raw {modality.dtype} samples for "
                f"{mod!r}, but encoder {spec.model.encoders[mod].name!r} has no preprocessing "
                "to turn them into tensors",
                hint="use an encoder that brings its own tokenizer / image transform",
            )
        transforms[mod] = fn
    return transforms


def _build_multimodal(spec, params, dataset, info, encoders) -> MultimodalModel:  # noqa: ANN001

    in_features: dict[str, FeatureSpec] = {m: e.output for m, e in encoders.items()}
    fusion: Fusion | None = None
    if spec.model.fusion is not None:
        fusion = instantiate(
            info("fusion", "model.fusion"),
            params["model.fusion"],
            "model.fusion",
            in_features=in_features,
            in_dims={m: f.dim for m, f in in_features.items()},
        )
        feature_dim = fusion.output.dim
    elif len(encoders) > 1:
        raise SpecError(
            "model.fusion",
            f"{len(encoders)} encoders need a fusion to combine them",
            hint="add e.g. `fusion: concat` (see `modalforge components fusion`)",
        )
    else:
        feature_dim = next(iter(in_features.values())).dim

    head = instantiate(
        info("head", "model.head"),
        params["model.head"],
        "model.head",
        in_dim=feature_dim,
        target=dataset.target,
    )
    dropout = _modality_dropout(spec, encoders, fusion)
    return MultimodalModel(encoders, fusion, head, modality_dropout=dropout)


def _modality_dropout(spec, encoders, fusion) -> dict[str, float]:  # noqa: ANN001
    """``model.modality_dropout``, checked against the encoders and the fusion."""
    probs = spec.model.modality_dropout
    for name, p in probs.items():
        path = f"model.modality_dropout.{name}"
        if name not in encoders:
            raise SpecError(
                path,
                f"{name!r} is not one of the model's encoders",
                hint=f"use one of: {', '.join(encoders)}",
            )
        if not 0.0 <= p < 1.0:
            raise SpecError(
                path,
                f"drop probability must be in [0, 1), got {p}",
                hint="e.g. 0.3 drops the modality from 30% of training samples",
            )
    if fusion is None and any(p > 0 for p in probs.values()):
        name = next(n for n, p in probs.items() if p > 0)
        raise SpecError(
            f"model.modality_dropout.{name}",
            "a single encoder without a fusion cannot drop its only modality",
            hint="remove `modality_dropout`, or add encoders and a fusion that respects masks",
        )
    return dict(probs)


def instantiate(info: ComponentInfo, params: Mapping[str, Any], path: str, **context: Any) -> Any:
    """Build one component, passing the context parameters its signature asks for.

    A context value the user also set explicitly must agree with what the pipeline derives.
    """
    kwargs = dict(params)
    for name in info.injected:
        derived = context.get(name)
        if derived is None:
            if (
                name not in kwargs
                and info.signature.parameters[name].default is info.signature.empty
            ):
                raise DataError(
                    f"{info.kind} {info.name!r} ({path}) needs a {name}, which the pipeline cannot "
                    f"provide here ({_source_of(name)} is missing)",
                    hint=f"set `{path}.params.{name}`, or use a data set or component that has it",
                )
            continue
        if name in kwargs and not _same(kwargs[name], derived):
            raise SizeMismatchError(
                f"{path}.params.{name}",
                f"set to {kwargs[name]!r}, but the pipeline gives {_plain_repr(derived)} "
                f"(from {_source_of(name)})",
                hint=f"remove `{name}` to size it automatically, or change the upstream component",
            )
        kwargs[name] = derived
    try:
        obj = info.factory(**kwargs)
    except ModalforgeError:
        raise
    except ValueError as exc:
        raise SpecError(
            path,
            f"{info.kind} {info.name!r} rejected its configuration: {exc}",
            hint=f"see `modalforge components {info.kind} {info.name}`",
        ) from exc
    base = KINDS[info.kind]
    if not isinstance(obj, base):
        raise PluginError(
            f"{info.kind} {info.name!r} from plugin {info.provider!r} built a "
            f"{type(obj).__name__}, which is not a {base.__name__}",
            hint="the plugin's factory must return an instance of the contract class",
        )
    return obj


def _same(given: Any, derived: Any) -> bool:
    if isinstance(derived, Target):
        return False if not isinstance(given, Target) else given == derived
    if isinstance(derived, Mapping) and isinstance(given, Mapping):
        return {k: _plain(v) for k, v in given.items()} == {
            k: _plain(v) for k, v in derived.items()
        }
    return _plain(given) == _plain(derived)


def _plain_repr(v: Any) -> str:
    if isinstance(v, Mapping):
        return repr({k: _plain(x) for k, x in v.items()})
    return repr(_plain(v))


def _plain(v: Any) -> Any:
    return v.dim if isinstance(v, FeatureSpec) else v


def _source_of(name: str) -> str:
    return {
        "in_dim": "the fusion's output, or the single encoder's output",
        "in_dims": "the encoders' outputs",
        "in_features": "the encoders' outputs",
        "modality": "the data set's modality",
        "condition_dim": "the outputs of the encoders named in condition_on",
        "target": "the data set's target",
        "registry": "the component registry",
    }.get(name, "the pipeline")


def _ref_at(spec: PipelineSpec, path: str):  # noqa: ANN202
    for _, p, ref in spec.component_refs():
        if p == path:
            return ref
    raise KeyError(path)
