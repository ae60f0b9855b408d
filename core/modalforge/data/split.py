"""``data.split``: divide a data set's split into parts, keeping groups whole and classes balanced.

The assignment depends only on the data (labels, groups) and the seed, never on the machine or
the order of runs, so every run of a spec, and every fold of a cross-validation, sees the same
parts. Only per-sample metadata and labels are read (:meth:`DatasetReader.metadata`,
:meth:`DatasetReader.labels`), never the samples themselves, unless the reader offers no labels.

- Without groups, each class (or the whole set) is shuffled and cut at the fractions, so every
  part gets exactly its share (largest remainders).
- With groups, whole groups are dealt to parts greedily: largest groups first, each to the part
  whose remaining need for the group's classes is largest (the heuristic of scikit-learn's
  ``StratifiedGroupKFold``, for arbitrary fractions).
- With ``folds``, the held-out fold comes from scikit-learn's ``KFold``, ``StratifiedKFold``,
  ``GroupKFold`` or ``StratifiedGroupKFold`` (shuffled with the seed).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from modalforge.contracts import TARGET_KEY, DatasetReader, Target, TargetKind
from modalforge.errors import DataError, SpecError
from modalforge.modality import Modality
from modalforge.spec.data import SplitSpec

FIELD = "data.split"


class SubsetSplit(Dataset):
    """Samples ``data[indices[i]]``; ``indices`` are positions in the divided split."""

    def __init__(self, data: Dataset, indices: np.ndarray) -> None:
        self.data = data
        self.indices = np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Any:  # noqa: ANN401 - the wrapped data set's sample
        return self.data[int(self.indices[index])]

    def modality_samples(self, name: str) -> Any:  # noqa: ANN401 - an iterable of samples
        """One modality's samples (see :func:`modalforge.data.transforms.modality_samples`)."""
        from modalforge.data.transforms import modality_samples

        values = modality_samples(self.data, name)
        if isinstance(values, Sequence):
            return [values[int(i)] for i in self.indices]
        return (self.data[int(i)][name] for i in self.indices)


class SplitReader(DatasetReader):
    """A reader whose ``split.source`` is replaced by the parts of ``split.fractions``.

    Its other splits stay as the wrapped reader has them; attributes it does not define
    (a captioned data set's ``templates``, say) are the wrapped reader's.
    """

    def __init__(self, reader: DatasetReader, split: SplitSpec, *, name: str = "") -> None:
        self.reader = reader
        self.spec = split
        self.source = _source(reader, split, name)
        parts = set(split.fractions)
        clash = sorted(parts.intersection(s for s in reader.splits if s != self.source))
        if clash:
            raise SpecError(
                f"{FIELD}.fractions",
                f"part {clash[0]!r} is also a split of the data set {name!r} "
                f"(its splits: {', '.join(reader.splits)})",
                hint=f"name the parts differently, or divide that split instead ({FIELD}.source)",
            )
        self.indices = assign(reader, self.source, split, name=name)

    def state_dict(self) -> dict[str, Any]:
        return self.reader.state_dict()

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401 - the wrapped reader's attribute
        if name in {"reader", "spec", "source", "indices"}:  # not yet set: no recursion
            raise AttributeError(name)
        return getattr(self.reader, name)

    @property
    def modalities(self) -> dict[str, Modality]:
        return self.reader.modalities

    @property
    def target(self) -> Target | None:
        return self.reader.target

    @property
    def splits(self) -> tuple[str, ...]:
        others = tuple(s for s in self.reader.splits if s != self.source)
        return (*self.indices, *others)

    def load(self, split: str) -> Dataset:
        if split in self.indices:
            return SubsetSplit(self.reader.load(self.source), self.indices[split])
        return self.reader.load(split)

    def labels(self, split: str) -> np.ndarray | None:
        if split not in self.indices:
            return self.reader.labels(split)
        labels = self.reader.labels(self.source)
        return None if labels is None else np.asarray(labels)[self.indices[split]]

    def metadata(self, split: str) -> dict[str, Sequence[Any]]:
        if split not in self.indices:
            return self.reader.metadata(split)
        idx = self.indices[split]
        return {k: [v[i] for i in idx] for k, v in self.reader.metadata(self.source).items()}


def _source(reader: DatasetReader, split: SplitSpec, name: str) -> str:
    splits = tuple(reader.splits)
    if split.source is not None:
        if split.source not in splits:
            raise SpecError(
                f"{FIELD}.source",
                f"data set {name!r} has no split {split.source!r}",
                hint=f"use one of: {', '.join(splits)}",
            )
        return split.source
    if len(splits) == 1:
        return splits[0]
    raise SpecError(
        f"{FIELD}.source",
        f"data set {name!r} has {len(splits)} splits ({', '.join(splits)}); say which to divide",
        hint=f"e.g. {FIELD}.source: {splits[0]}",
    )


def assign(
    reader: DatasetReader, source: str, split: SplitSpec, *, name: str = ""
) -> dict[str, np.ndarray]:
    """Sorted sample positions of each part of ``split`` within ``reader``'s ``source`` split."""
    n = len(reader.load(source))
    if n == 0:
        raise DataError(f"{FIELD}: split {source!r} of data set {name!r} is empty")
    labels = _labels(reader, source, split, name)
    groups = _groups(reader, source, split, name, n)
    if split.folds is not None:
        parts = _with_folds(n, labels, groups, split)
    else:
        parts = divide(np.arange(n), split.fractions, labels, groups, split.seed)
    for part, idx in parts.items():
        if len(idx) == 0:
            raise DataError(
                f"{FIELD}.fractions.{part}: the part gets no samples out of {n}"
                + (f" in {len(np.unique(groups))} groups" if groups is not None else ""),
                hint="raise its fraction, use fewer parts or fewer folds, or add data",
            )
    return {part: np.sort(idx) for part, idx in parts.items()}


def _labels(reader: DatasetReader, source: str, split: SplitSpec, name: str) -> np.ndarray | None:
    target = reader.target
    multiclass = target is not None and target.kind == TargetKind.MULTICLASS
    if split.stratify is None and not multiclass:
        return None
    if split.stratify is False:
        return None
    if not multiclass:
        kind = "no target" if target is None else f"a {target.kind} target"
        raise SpecError(
            f"{FIELD}.stratify",
            f"stratification needs class labels, but data set {name!r} has {kind}",
            hint=f"remove {FIELD}.stratify (or set it to false)",
        )
    labels = reader.labels(source)
    if labels is None:  # the reader has no cheap way: read each sample's target
        data = reader.load(source)
        labels = [_target_of(data[i], i) for i in range(len(data))]
    return np.asarray(labels).reshape(-1)


def _target_of(sample: Any, index: int) -> int:  # noqa: ANN401
    if sample is None or TARGET_KEY not in sample:
        raise DataError(
            f"{FIELD}.stratify: sample {index} has no readable target to stratify by",
            hint=f"set {FIELD}.stratify: false, or fix the unreadable sample",
        )
    return int(sample[TARGET_KEY])


def _groups(
    reader: DatasetReader, source: str, split: SplitSpec, name: str, n: int
) -> np.ndarray | None:
    if split.group is None:
        return None
    columns = reader.metadata(source)
    if split.group not in columns:
        have = ", ".join(columns) or "none"
        raise SpecError(
            f"{FIELD}.group",
            f"data set {name!r} has no per-sample column {split.group!r} to group by "
            f"(it has: {have})",
            hint="name one of its columns (a manifest's header, or an image folder's 'file', "
            "'path' or 'class')",
        )
    values = [str(v) for v in columns[split.group]]
    if len(values) != n:
        raise DataError(f"{FIELD}.group: column {split.group!r} has {len(values)} values for {n}")
    if split.group_pattern is not None:
        values = _match_groups(values, split.group_pattern, split.group)
    empty = [i for i, v in enumerate(values) if v == ""]
    if empty:
        raise DataError(
            f"{FIELD}.group: sample {empty[0]} (and {len(empty) - 1} more) has an empty "
            f"{split.group!r}, so it belongs to no group",
            hint="give every sample a group value, or fix group_pattern",
        )
    return np.unique(np.asarray(values), return_inverse=True)[1]


def _match_groups(values: list[str], pattern: str, column: str) -> list[str]:
    regex = re.compile(pattern)
    out = []
    for i, value in enumerate(values):
        m = regex.search(value)
        if m is None:
            raise DataError(
                f"{FIELD}.group_pattern: {pattern!r} does not match {column} {value!r} "
                f"(sample {i})",
                hint="make the pattern match every value, e.g. '^([^_]+)_' for 'p01_scan.png'",
            )
        out.append(m.group(1) if regex.groups else m.group(0))
    return out


def divide(
    positions: np.ndarray,
    fractions: Mapping[str, float],
    labels: np.ndarray | None,
    groups: np.ndarray | None,
    seed: int,
) -> dict[str, np.ndarray]:
    """``positions`` (indices into ``labels``/``groups``) dealt to the parts by ``fractions``."""
    names = list(fractions)
    shares = np.asarray([fractions[k] for k in names], dtype=np.float64)
    shares = shares / shares.sum()
    rng = np.random.default_rng([seed, len(positions)])
    if groups is None:
        strata = labels[positions] if labels is not None else np.zeros(len(positions), int)
        chosen: list[list[np.ndarray]] = [[] for _ in names]
        for cls in np.unique(strata):
            members = rng.permutation(positions[strata == cls])
            cuts = np.cumsum(_counts(len(members), shares))[:-1]
            for k, part in enumerate(np.split(members, cuts)):
                chosen[k].append(part)
        return {k: np.concatenate(c) for k, c in zip(names, chosen, strict=True)}
    return _deal_groups(positions, names, shares, labels, groups, rng)


def _counts(n: int, shares: np.ndarray) -> np.ndarray:
    """Integer counts summing to ``n`` closest to ``n * shares`` (largest remainders)."""
    raw = n * shares
    counts = np.floor(raw).astype(int)
    for k in np.argsort(-(raw - counts), kind="stable")[: n - counts.sum()]:
        counts[k] += 1
    return counts


def _deal_groups(
    positions: np.ndarray,
    names: list[str],
    shares: np.ndarray,
    labels: np.ndarray | None,
    groups: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    strata = labels[positions] if labels is not None else np.zeros(len(positions), int)
    classes, strata = np.unique(strata, return_inverse=True)
    ids, inverse = np.unique(groups[positions], return_inverse=True)
    counts = np.zeros((len(ids), len(classes)))  # samples of each class in each group
    np.add.at(counts, (inverse, strata), 1)
    want = shares[:, None] * counts.sum(axis=0)[None, :]  # (parts, classes) target counts
    have = np.zeros_like(want)
    sizes = counts.sum(axis=1)
    order = rng.permutation(len(ids))
    order = order[np.argsort(-sizes[order], kind="stable")]  # largest first, ties at random
    owner = np.empty(len(ids), dtype=int)
    for g in order:
        need = ((want - have) * counts[g][None, :]).sum(axis=1) / sizes[g]
        best = np.flatnonzero(np.isclose(need, need.max()))
        k = int(best[0]) if len(best) == 1 else int(rng.choice(best))
        owner[g] = k
        have[k] += counts[g]
    return {name: positions[owner[inverse] == k] for k, name in enumerate(names)}


def _with_folds(
    n: int, labels: np.ndarray | None, groups: np.ndarray | None, split: SplitSpec
) -> dict[str, np.ndarray]:
    from sklearn import model_selection as ms

    k, seed = int(split.folds), split.seed
    x = np.zeros((n, 1))
    if groups is not None and labels is not None:
        folds = ms.StratifiedGroupKFold(k, shuffle=True, random_state=seed).split(x, labels, groups)
    elif groups is not None:
        folds = ms.GroupKFold(k, shuffle=True, random_state=seed).split(x, groups=groups)
    elif labels is not None:
        folds = ms.StratifiedKFold(k, shuffle=True, random_state=seed).split(x, labels)
    else:
        folds = ms.KFold(k, shuffle=True, random_state=seed).split(x)
    try:
        rest, held_out = list(folds)[split.fold]
    except ValueError as exc:  # fewer samples / groups / class members than folds
        raise DataError(
            f"{FIELD}.folds: cannot make {k} folds: {exc}",
            hint="use fewer folds, or more data",
        ) from None
    others = {p: f for p, f in split.fractions.items() if p != split.fold_split}
    parts = {split.fold_split: held_out}
    if others:
        parts.update(divide(rest, others, labels, groups, seed))
    return parts


def check_classes_in(reader: DatasetReader, split: str, field: str) -> None:
    """A :class:`DataError` if a class of a multiclass target has no sample in ``split``
    (checked when the reader knows its labels without reading samples)."""
    target = reader.target
    if target is None or target.kind != TargetKind.MULTICLASS:
        return
    labels = reader.labels(split)
    if labels is None:
        return
    present = set(np.unique(np.asarray(labels)).tolist())
    missing = [i for i in range(target.num_outputs) if i not in present]
    if missing:
        names = target.class_names or tuple(str(i) for i in range(target.num_outputs))
        shown = ", ".join(repr(names[i]) for i in missing[:5])
        raise DataError(
            f"{field}: split {split!r} has no sample of class {shown}"
            + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            + f" ({len(missing)} of {target.num_outputs} classes absent from training)",
            hint="add samples of those classes, let data.split stratify (stratify: true), use "
            "larger training fractions or fewer folds, or drop the class from the target",
        )
