"""``data.cache``: compute each sample's deterministic prefix once and reuse it across epochs.

The prefix of a modality's chain is what depends on the sample alone: the reader's load, then
the transform steps before the first random or fitted one (:meth:`ModalityTransforms.
deterministic_prefix`): all of ``data.transforms.pre``, and, where no augmentation comes between,
the leading steps of ``eval``. Steps after a random one are never cached: their input changes
every epoch. Fitted steps (``standardize``) are not cached either, so a cache never holds
statistics that a checkpoint may later replace.

- ``memory`` (like MONAI's ``CacheDataset``): a dict in the data set object; with loader worker
  processes it is filled in the main process before they start, so every worker inherits it.
- ``disk`` (like MONAI's ``PersistentDataset``): one file per sample, ``<cache_dir>/<key>/
  <index>.pt``, where ``key`` hashes the data set (its spec, the split and ``data.split``) and
  the cached steps (names, validated parameters, each step's ``cache_token()``, e.g. the MONAI
  version), so a changed parameter is a new folder. Files are written atomically and read with
  ``torch.load(weights_only=True)``: plain tensors, numbers, strings, lists and dicts only,
  never pickled objects. A file that cannot be read (truncated, corrupt) is recomputed and
  rewritten, with a warning naming it.

Both keep samples as plain tensors (a MetaTensor's metadata is not kept), so a step that reads
metadata (a step class with ``uses_metadata = True``, e.g. ``spacing``) after the cached prefix
is refused: it belongs in ``data.transforms.pre``. The data files themselves are not hashed:
delete the cache folder when they change in place.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from modalforge.data.transforms import TransformChain, plain_sample
from modalforge.errors import DataError, SpecError
from modalforge.io import write_json, write_with

FORMAT = 1  # bump when the file layout changes: old folders are then never read
_MISSING = object()


def cache_key(description: Mapping[str, Any]) -> str:
    """A stable hash of a JSON-able description (sorted keys)."""
    text = json.dumps({"format": FORMAT, **description}, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


class CachedDataset(Dataset):
    """``data[i]`` computed once, then served from memory or from ``folder`` (see the module).

    ``data`` is the reader's split with the prefix steps applied (``None`` samples, which a
    skipping reader returns for unreadable files, are passed through and not cached).
    """

    def __init__(
        self, data: Dataset, mode: str, *, folder: str | Path | None = None, key: str = ""
    ) -> None:
        if mode not in ("memory", "disk"):
            raise ValueError(f"cache mode must be memory or disk, got {mode!r}")
        if mode == "disk" and folder is None:
            raise ValueError("a disk cache needs a folder")
        self.data = data
        self.mode = mode
        self.folder = Path(folder) / key if folder is not None else None
        self.key = key
        self._memory: dict[int, Any] = {}
        self._warned = False

    def __len__(self) -> int:
        return len(self.data)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:  # noqa: ANN401 - a sample
        hit = self._get(index)
        if hit is not _MISSING:
            return hit
        sample = self.data[index]
        if sample is None:
            return None
        sample = plain_sample(sample)
        self._put(index, sample)
        return sample

    def fill(self) -> None:
        """Compute every sample not cached yet (before loader workers fork off)."""
        for i in range(len(self)):
            self[i]

    @property
    def filled(self) -> bool:
        return self.mode == "memory" and len(self._memory) == len(self)

    # ---------------------------------------------------------------- storage
    def path(self, index: int) -> Path:
        assert self.folder is not None
        return self.folder / f"{index}.pt"

    def _get(self, index: int) -> Any:  # noqa: ANN401
        if self.mode == "memory":
            return self._memory.get(index, _MISSING)
        path = self.path(index)
        if not path.is_file():
            return _MISSING
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is recomputed
            warnings.warn(
                f"data.cache: cached sample {path} cannot be read ({type(exc).__name__}: "
                f"{str(exc)[:120]}); computing it again",
                stacklevel=3,
            )
            return _MISSING

    def _put(self, index: int, sample: Any) -> None:  # noqa: ANN401
        if self.mode == "memory":
            self._memory[index] = sample
            return
        bad = _unstorable(sample)
        if bad is not None:
            where, kind = bad
            raise DataError(
                f"data.cache: disk stores tensors, numbers and strings, but sample {index}'s "
                f"{where} is a {kind}",
                hint="use data.cache: memory, or a reader (or data.transforms.pre step) that "
                "yields tensors",
            )
        write_with(self.path(index), lambda tmp: torch.save(sample, tmp))


def _unstorable(value: Any, where: str = "value") -> tuple[str, str] | None:  # noqa: ANN401
    """Where ``value`` holds something ``torch.load(weights_only=True)`` would refuse."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return None
    if isinstance(value, torch.Tensor):
        return None if type(value) is torch.Tensor else (where, type(value).__name__)
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                return (where, f"mapping with a {type(k).__name__} key")
            bad = _unstorable(v, repr(k) if where == "value" else f"{where}[{k!r}]")
            if bad is not None:
                return bad
        return None
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            bad = _unstorable(v, f"{where}[{i}]")
            if bad is not None:
                return bad
        return None
    return (where, f"{type(value).__module__}.{type(value).__qualname__}")


def prefix_chains(
    transforms: Any,  # noqa: ANN401 - a ModalityTransforms
    modalities: Sequence[str],
    *,
    train: bool,
    then: Mapping[str, Callable[[Any], Any]],
) -> tuple[dict[str, TransformChain], dict[str, TransformChain], dict[str, Any]]:
    """Split each modality's chain into the cached prefix and the rest.

    Returns ``(prefix chains, rest chains (ending with the encoder's preprocessing), the
    prefix's description for :func:`cache_key`)``. A step after the prefix that reads sample
    metadata (``uses_metadata``) is a :class:`SpecError`: the cache does not keep metadata.
    """
    prefix: dict[str, TransformChain] = {}
    rest: dict[str, TransformChain] = {}
    described: dict[str, Any] = {}
    for name in modalities:
        steps = transforms.steps(name, train=train)
        n = transforms.deterministic_prefix(name, train=train)
        for step in steps[n:]:
            if getattr(step, "uses_metadata", False):
                raise SpecError(
                    _path_of(transforms, name, step),
                    f"{type(step).__name__} reads the sample's metadata (its affine), which "
                    "data.cache does not keep, and it runs after a random or fitted step",
                    hint=f"move it to data.transforms.pre.{name} (before the augmentation), or "
                    "set data.cache: none",
                )
        if n:
            prefix[name] = TransformChain(steps[:n])
            tokens = [getattr(s, "cache_token", lambda: "")() for s in steps[:n]]
            described[name] = [
                {**d, "token": t}
                for d, t in zip(
                    transforms.describe(name, train=train, count=n), tokens, strict=True
                )
            ]
        after: list[Callable[[Any], Any]] = list(steps[n:])
        if then.get(name) is not None:
            after.append(then[name])
        if after:
            rest[name] = TransformChain(after)
    return prefix, rest, described


def _path_of(transforms: Any, modality: str, step: Any) -> str:  # noqa: ANN401
    for phase in ("pre", "train", "eval"):
        for i, s in enumerate(getattr(transforms, phase).get(modality, [])):
            if s is step:
                return f"data.transforms.{phase}.{modality}.{i}"
    return f"data.transforms.{modality}"


def fill_caches(dataset: Any) -> None:  # noqa: ANN401 - a Dataset, maybe wrapping others
    """Fill every memory :class:`CachedDataset` inside ``dataset`` (following ``.data``), so
    that loader worker processes inherit a full cache instead of each building its own."""
    seen = 0
    while dataset is not None and seen < 16:
        if isinstance(dataset, CachedDataset) and dataset.mode == "memory":
            dataset.fill()
        dataset = getattr(dataset, "data", None)
        seen += 1


def describe_source(spec: Any, split: str) -> dict[str, Any]:  # noqa: ANN401 - a PipelineSpec
    """What decides the samples of ``split`` before any transform: the data set's spec and
    ``data.split`` (which assigns the indices)."""
    data = spec.data
    return {
        "dataset": data.dataset.model_dump(mode="json"),
        "split": split,
        "data.split": None if data.split is None else data.split.model_dump(mode="json"),
    }


def write_description(dataset: CachedDataset, description: Mapping[str, Any]) -> None:
    """``chain.json`` beside a disk cache's files: what they hold, for people cleaning up."""
    if dataset.folder is not None and not (dataset.folder / "chain.json").exists():
        write_json(dataset.folder / "chain.json", dict(description))
