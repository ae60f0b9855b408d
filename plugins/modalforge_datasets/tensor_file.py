"""``tensor_file``: user data from a ``.npz`` or ``.safetensors`` file, one array per modality.

Arrays are named by modality, plus ``target`` for labels; the first axis indexes samples. Files are
read without pickle (``np.load(allow_pickle=False)``), so a data file cannot run code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch

from modalforge.contracts import Target, TargetKind
from modalforge.errors import DataError
from modalforge.modality import Modality, ModalityKind
from modalforge_datasets.common import (
    SplitsReader,
    TensorDictDataset,
    stratified_split,
)

FIELD = "data.dataset.params"


def read_arrays(path: str, field: str) -> dict[str, np.ndarray]:
    """All arrays in a ``.npz`` or ``.safetensors`` file; a :class:`DataError` names the file."""
    p = Path(path)
    if not p.is_file():
        raise DataError(
            f"{field}: data file {path} does not exist",
            hint="check the path (relative paths are from the working directory)",
        )
    try:
        if p.suffix == ".npz":
            with np.load(p, allow_pickle=False) as npz:
                return {k: npz[k] for k in npz.files}
        if p.suffix == ".safetensors":
            from safetensors.numpy import load_file

            return load_file(str(p))
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise DataError(
                f"{field}: {path} holds pickled (object) arrays, which are not read",
                hint="save plain numeric arrays (np.savez with numeric dtypes)",
            ) from None
        raise DataError(f"{field}: cannot read {path}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - zip/safetensors header errors: all mean a bad file
        raise DataError(
            f"{field}: cannot read {path}: {type(exc).__name__}: {exc}",
            hint="the file must be a valid .npz or .safetensors file",
        ) from None
    raise DataError(
        f"{field}: {path} is neither .npz nor .safetensors",
        hint="save the arrays with np.savez or safetensors.numpy.save_file",
    )


class TensorFileDataset(SplitsReader):
    """Reads ``path`` (and ``test_path``, else a fixed stratified split of ``path``).

    ``modality_kinds`` maps each array name to its kind, e.g. ``{ct: volume3d, labs: tabular}``;
    shapes come from the arrays. ``target_kind`` is ``multiclass`` (integer labels), ``multilabel``
    (0/1 columns), ``regression`` (real values) or ``None`` for unlabelled data.
    """

    reader_name = "tensor_file"

    def __init__(
        self,
        path: str,
        modality_kinds: dict[str, ModalityKind],
        target_kind: Literal["multiclass", "multilabel", "regression"] | None = "multiclass",
        class_names: list[str] | None = None,
        test_path: str | None = None,
        test_fraction: float = 0.2,
        split_seed: int = 0,
    ) -> None:
        if not modality_kinds:
            raise DataError(
                f"{FIELD}.modality_kinds: name at least one array and its modality kind",
                hint="e.g. modality_kinds: {image: image2d, labs: tabular}",
            )
        self.path, self.test_path = path, test_path
        self.kinds = {name: ModalityKind(kind) for name, kind in modality_kinds.items()}
        self.target_kind = TargetKind(target_kind) if target_kind else None
        files = {"train": (path, f"{FIELD}.path")}
        if test_path is not None:
            files["test"] = (test_path, f"{FIELD}.test_path")
        data = {split: self._read(file, field) for split, (file, field) in files.items()}

        first = data["train"]
        self._modalities = {n: Modality(n, k, first[n].shape[1:]) for n, k in self.kinds.items()}
        for split, arrays in data.items():
            for name, m in self._modalities.items():
                if arrays[name].shape[1:] != m.shape:
                    raise DataError(
                        f"{files[split][0]}: array {name!r} has sample shape "
                        f"{arrays[name].shape[1:]}, but {path} has {m.shape}",
                        hint="both files must hold samples of the same shapes",
                    )
        self._target = self._make_target(data, class_names)

        if test_path is not None:
            self._splits = {s: TensorDictDataset(self._tensors(a)) for s, a in data.items()}
        else:
            full = TensorDictDataset(self._tensors(first))
            self._splits = {"train": full}
            if test_fraction > 0:
                n = len(full)
                if self.target_kind == TargetKind.MULTICLASS:
                    strata = first["target"]
                else:
                    strata = np.zeros(n, dtype=np.int64)
                train_idx, test_idx = stratified_split(strata, test_fraction, split_seed)
                self._splits = {"train": full.subset(train_idx), "test": full.subset(test_idx)}

    def _read(self, file: str, field: str) -> dict[str, np.ndarray]:
        arrays = read_arrays(file, field)
        needed = list(self.kinds) + (["target"] if self.target_kind else [])
        for name in needed:
            if name not in arrays:
                raise DataError(
                    f"{field}: {file} has no array {name!r} "
                    f"(it has: {', '.join(arrays) or 'none'})",
                    hint=f"save the array under the name {name!r}, or change {FIELD}.modality_kinds"
                    + ("/target_kind" if name == "target" else ""),
                )
        lengths = {name: len(arrays[name]) for name in needed}
        if len(set(lengths.values())) > 1:
            raise DataError(
                f"{field}: arrays in {file} differ in sample count: {lengths}",
                hint="the first axis of every array indexes the same samples",
            )
        for name, kind in self.kinds.items():
            arr = arrays[name]
            if kind == ModalityKind.TEXT and not np.issubdtype(arr.dtype, np.integer):
                raise DataError(
                    f"{field}: array {name!r} in {file} is {arr.dtype}, but text "
                    "modalities hold integer token ids"
                )
            try:
                Modality(name, kind, arr.shape[1:])
            except ValueError as exc:
                raise DataError(
                    f"{field}: array {name!r} in {file}: {exc}",
                    hint=f"fix the array's shape or the kind in {FIELD}.modality_kinds",
                ) from None
        return arrays

    def _make_target(
        self, data: dict[str, dict[str, np.ndarray]], names: list[str] | None
    ) -> Target | None:
        if self.target_kind is None:
            return None
        ys = [arrays["target"] for arrays in data.values()]
        if self.target_kind == TargetKind.MULTICLASS:
            if not all(np.issubdtype(y.dtype, np.integer) and y.ndim == 1 for y in ys):
                raise DataError(
                    f"{FIELD}: 'target' must be a 1-D integer array of class indices "
                    "for target_kind multiclass",
                    hint="or set target_kind to multilabel / regression",
                )
            low, high = min(int(y.min()) for y in ys), max(int(y.max()) for y in ys)
            count = len(names) if names else high + 1
            if low < 0 or high >= count:
                raise DataError(
                    f"{FIELD}: 'target' holds labels {low}..{high}, outside the "
                    f"{count} classes of class_names"
                )
            return Target(TargetKind.MULTICLASS, count, tuple(names or ()))
        width = 1 if ys[0].ndim == 1 else int(np.prod(ys[0].shape[1:]))
        if names and len(names) != width:
            raise DataError(f"{FIELD}.class_names: {len(names)} names for {width} target columns")
        return Target(self.target_kind, width, tuple(names or ()))

    def _tensors(self, arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        out = {}
        for name, kind in self.kinds.items():
            arr = arrays[name]
            out[name] = torch.from_numpy(
                arr.astype(np.int64 if kind == ModalityKind.TEXT else np.float32)
            )
        if self.target_kind == TargetKind.MULTICLASS:
            out["target"] = torch.from_numpy(arrays["target"].astype(np.int64))
        elif self.target_kind is not None:
            out["target"] = torch.from_numpy(arrays["target"].astype(np.float32))
        return out
