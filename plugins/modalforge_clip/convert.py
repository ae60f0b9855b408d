"""Read CLIP text-tower weights from OpenAI, open_clip or our own files.

Our ``clip_text`` encoder has open_clip's text-tower parameter names, so conversion only selects
and unwraps: a training checkpoint's ``state_dict``, DDP's ``module.`` prefix, open_clip's
``CustomTextCLIP`` ``text.`` prefix; the vision tower and logit scale/bias are dropped.
"""

from __future__ import annotations

import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from modalforge.errors import CheckpointError
from modalforge.weights import check_weights_file
from modalforge.weights import read_state_dict as read_state_dict_file

TEXT_KEYS = (
    "token_embedding.",
    "positional_embedding",
    "transformer.",
    "ln_final.",
    "text_projection",
)


def read_state_dict(path: str, field: str) -> dict[str, Tensor]:
    """Tensors of a ``.safetensors`` file or a ``torch.save``d state dict (loaded with
    ``weights_only=True``, see :func:`modalforge.weights.read_state_dict`); OpenAI's TorchScript
    ``.pt`` archives are read with ``torch.jit``."""
    hint = "give a local .safetensors or .pt file holding CLIP (text tower) weights"
    p = check_weights_file(path, field, hint=hint)
    if not _is_torchscript(p):
        return read_state_dict_file(p, field, hint=hint)
    try:
        with warnings.catch_warnings():  # torch.jit is deprecated, but reads them
            warnings.simplefilter("ignore", FutureWarning)
            return dict(torch.jit.load(str(p), map_location="cpu").state_dict())
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise CheckpointError(
            f"{field}: cannot read TorchScript archive {path}: {exc}",
            hint="the file must be a safetensors file or a torch.save()d state dict",
        ) from exc


def _is_torchscript(path: Path) -> bool:
    """A ``torch.jit.save``d archive: a zip holding compiled ``code/``."""
    if not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return any("/code/" in name for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):  # a damaged archive: the state-dict reader says so
        return False


def text_tower_state_dict(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The text-tower tensors of an OpenAI / open_clip CLIP state dict, under our names."""
    out = {}
    for key, value in state.items():
        for prefix in ("module.", "_orig_mod."):
            key = key.removeprefix(prefix)
        if key.startswith("text."):  # open_clip CustomTextCLIP keeps the tower under `text`
            key = key[len("text.") :]
        if key.startswith(TEXT_KEYS):
            out[key] = value
    return out


def describe_text_tower(state: Mapping[str, Tensor]) -> str:
    """The tower's sizes read from its tensors, e.g. ``vocab_size=49408, width=512, ...``."""
    parts = []
    if "token_embedding.weight" in state:
        vocab, width = state["token_embedding.weight"].shape
        parts += [f"vocab_size={vocab}", f"width={width}"]
    if "positional_embedding" in state:
        parts.append(f"context_length={state['positional_embedding'].shape[0]}")
    blocks = {k.split(".")[2] for k in state if k.startswith("transformer.resblocks.")}
    if blocks:
        parts.append(f"layers={len(blocks)}")
    proj = state.get("text_projection")
    if proj is not None and proj.ndim == 2:
        parts.append(f"embed_dim={proj.shape[1]}")
    return ", ".join(parts) or "no recognisable CLIP text tower"


def load_text_tower(module: torch.nn.Module, path: str, field: str) -> None:
    """Load a CLIP text tower from ``path`` into ``module``; every tensor must be there with
    the same shape, else a :class:`CheckpointError` lists what differs."""
    state = text_tower_state_dict(read_state_dict(path, field))
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or shapes:
        problems = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape", shapes)):
            if keys:
                problems.append(f"{label}: {_shorten(keys)}")
        raise CheckpointError(
            f"{field}: {path} is not a CLIP text tower of this architecture "
            f"({'; '.join(problems)})",
            hint=f"the file holds {describe_text_tower(state)}; set the encoder's params to match",
        )
    module.load_state_dict(state, strict=True)


def _shorten(keys: list[str], n: int = 5) -> str:
    shown = ", ".join(keys[:n])
    return shown + (f" and {len(keys) - n} more" if len(keys) > n else "")
