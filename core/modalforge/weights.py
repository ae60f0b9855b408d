"""Checks shared by components that load local weight files (timm, CLIP towers, open_clip,
transformers folders): the path is a file, and its content is a readable state dict.

Files are read by their content, never unpickled: safetensors through its own parser, PyTorch
files with ``torch.load(weights_only=True)``. A wrong file is a :class:`SpecError` (path problems)
or a :class:`CheckpointError` (content problems) naming the spec field and the file.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modalforge.errors import CheckpointError, SpecError

WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")
#: keys under which training scripts nest the model's state dict (timm, open_clip, Lightning)
NESTED_KEYS = ("state_dict", "model", "module", "state_dict_ema", "model_ema")
_SAVE_HINT = "save the weights with safetensors or `torch.save(model.state_dict(), path)`"


def check_weights_file(path: str, field: str, *, what: str = "weights file", hint: str) -> Path:
    """``path`` as a :class:`Path` if it is an existing file with a known weights suffix; else a
    :class:`SpecError` naming ``field`` (``hint`` says which file is expected)."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise SpecError(field, f"{what} {path} is a folder, not a file", hint=hint)
    if not p.is_file():
        raise SpecError(field, f"{what} {path} does not exist", hint=hint)
    if not p.name.endswith(WEIGHT_SUFFIXES):
        raise SpecError(
            field,
            f"{what} {path} has an unknown suffix",
            hint=f"use one of {', '.join(WEIGHT_SUFFIXES)}",
        )
    return p


def file_format(path: Path) -> str:
    """``safetensors``, ``torch-zip`` (``torch.save``), ``torch-legacy`` (a pickle), ``empty``
    or ``unknown``, from the file's first bytes (not its name)."""
    with open(path, "rb") as fh:
        head = fh.read(16)
    if not head:
        return "empty"
    if head[:4] == b"PK\x03\x04":
        return "torch-zip"
    if len(head) >= 9 and head[8:9] == b"{":  # 8-byte header length, then the JSON header
        return "safetensors"
    if head[:1] == b"\x80":  # a pickle protocol marker: torch.save's legacy format
        return "torch-legacy"
    return "unknown"


def inspect_weights(
    path: str | Path, field: str, *, what: str = "weights file", hint: str = _SAVE_HINT
) -> dict[str, tuple[int, ...]]:
    """Names → shapes of the state dict in ``path``, checking that it can be read.

    Cheap for safetensors (only the header is parsed, which also checks that the file covers
    every tensor) and for ``torch.save`` zip archives (memory-mapped). An empty, truncated or
    corrupt file, one holding pickled Python objects, or one without tensors is a
    :class:`CheckpointError` naming ``field`` and the file.
    """
    p = check_weights_file(str(path), field, what=what, hint=hint)
    kind = _expect_known(p, field, what, hint)
    if kind == "safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(p), framework="pt") as f:
                return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
        except Exception as exc:  # noqa: BLE001 - the parser raises its own error types
            raise _corrupt(p, field, what, "safetensors", exc) from None
    state = _torch_state_dict(p, field, what, hint, mmap=kind == "torch-zip")
    return {k: tuple(v.shape) for k, v in state.items()}


def read_state_dict(
    path: str | Path, field: str, *, what: str = "weights file", hint: str = _SAVE_HINT
) -> dict[str, Any]:
    """The tensors of the state dict in ``path`` (a safetensors file or a ``torch.save``d state
    dict, possibly nested under ``state_dict``/``model``), with the errors of
    :func:`inspect_weights`."""
    p = check_weights_file(str(path), field, what=what, hint=hint)
    kind = _expect_known(p, field, what, hint)
    if kind == "safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(p), device="cpu")
        except Exception as exc:  # noqa: BLE001
            raise _corrupt(p, field, what, "safetensors", exc) from None
    return _torch_state_dict(p, field, what, hint, mmap=False)


def _expect_known(p: Path, field: str, what: str, hint: str) -> str:
    kind = file_format(p)
    name = p.name
    if kind == "empty":
        raise CheckpointError(
            f"{field}: {what} {p} is empty (0 bytes)",
            hint="the copy or download did not finish; copy the file again",
        )
    if kind == "unknown":
        shown = "a safetensors file" if name.endswith(".safetensors") else "a PyTorch file"
        raise CheckpointError(
            f"{field}: {what} {p} is not {shown}: its first bytes match neither format "
            "(corrupt, or another kind of file)",
            hint=hint,
        )
    if name.endswith(".safetensors") and kind != "safetensors":
        raise CheckpointError(
            f"{field}: {what} {p} is named .safetensors but holds a torch.save() file",
            hint=f"rename it to {p.with_suffix('.pth').name}",
        )
    if kind == "safetensors" and not name.endswith(".safetensors"):
        raise CheckpointError(
            f"{field}: {what} {p} holds safetensors data but is named {p.suffix}",
            hint=f"rename it to {p.with_suffix('.safetensors').name}",
        )
    return kind


def _torch_state_dict(p: Path, field: str, what: str, hint: str, *, mmap: bool) -> dict[str, Any]:
    import torch

    try:
        obj = torch.load(p, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        found = re.search(r"(?:unsupported|Unsupported global:) GLOBAL ([\w.]+)", text)
        if found or "weights_only" in text.lower() and "global" in text.lower():
            shown = f"e.g. {found.group(1)}" if found else "e.g. a whole model"
            raise CheckpointError(
                f"{field}: {what} {p} holds pickled Python objects, not only tensors "
                f"({shown}); modalforge does not unpickle them",
                hint=_SAVE_HINT,
            ) from None
        raise _corrupt(p, field, what, "PyTorch", exc) from None
    except Exception as exc:  # noqa: BLE001 - EOFError, RuntimeError from the zip reader, ...
        raise _corrupt(p, field, what, "PyTorch", exc) from None
    return _as_state_dict(obj, p, field, what, hint)


def _as_state_dict(obj: Any, p: Path, field: str, what: str, hint: str) -> dict[str, Any]:
    import torch

    for _ in range(2):  # e.g. {"state_dict": {...}, "epoch": 3}
        if not isinstance(obj, Mapping):
            break
        nested = next((obj[k] for k in NESTED_KEYS if isinstance(obj.get(k), Mapping)), None)
        if nested is None or any(isinstance(v, torch.Tensor) for v in obj.values()):
            break
        obj = nested
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"{field}: {what} {p} holds a {type(obj).__name__}, not a state dict (a mapping of "
            "parameter names to tensors)",
            hint=hint,
        )
    bad = next(
        ((k, v) for k, v in obj.items() if not isinstance(k, str) or not torch.is_tensor(v)),
        None,
    )
    if bad is not None or not obj:
        detail = (
            "it is empty"
            if not obj
            else f"entry {bad[0]!r} is a {type(bad[1]).__name__}, not a tensor"  # type: ignore[index]
        )
        raise CheckpointError(
            f"{field}: {what} {p} is not a state dict of tensors: {detail}", hint=hint
        )
    return dict(obj)


def _corrupt(p: Path, field: str, what: str, fmt: str, exc: BaseException) -> CheckpointError:
    reason = _first_line_with(str(exc), "") or type(exc).__name__
    if len(reason) > 160:
        reason = reason[:157] + "..."
    return CheckpointError(
        f"{field}: {what} {p} is truncated or corrupt: cannot read it as a {fmt} file ({reason})",
        hint="copy or download the file again, or save it anew from the model",
    )


def _first_line_with(text: str, needle: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line and needle in line:
            return line
    return ""
