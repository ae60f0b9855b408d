"""Checks on local weight files, so a wrong file fails loudly instead of leaving random weights."""

from __future__ import annotations

from collections.abc import Callable, Collection

import torch
from torch import nn

from modalforge import weights
from modalforge.errors import CheckpointError

HINT = "give the path of a .safetensors (or .pth) file saved from this model"


def check_weights_file(path: str, field: str) -> list[str]:
    """The tensor names in ``path``, in file order; a :class:`SpecError` or
    :class:`CheckpointError` naming ``field`` if it is missing, empty, corrupt or not a state dict
    (see :mod:`modalforge.weights`)."""
    return list(weights.inspect_weights(path, field, hint=HINT))


def precheck_cover(
    build: Callable[[], nn.Module], keys: Collection[str], path: str, field: str
) -> None:
    """Compare the file's names with the architecture's before timm loads it, so a file of
    another model fails with one clear error (timm would first log every unexpected key).

    The model is built on the meta device (no memory, no initialisation); a model that cannot
    be built there is checked after the real load instead.
    """
    try:
        with torch.device("meta"):
            model = build()
    except Exception:  # noqa: BLE001 - e.g. an init that needs real tensors; checked later
        return
    check_weights_cover(model, keys, path, field)


def check_weights_cover(model: nn.Module, keys: Collection[str], path: str, field: str) -> None:
    """Every tensor of ``model`` must be in the file; timm only logs missing keys when adapting."""
    have = set(keys)
    own = list(model.state_dict())
    missing = [k for k in own if k not in have]
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        other = ""
        if len(missing) == len(own):  # nothing in common: a file of another architecture
            other = f"; the file holds {', '.join(list(keys)[:4])}, ...: another architecture?"
        raise CheckpointError(
            f"{field}: {path} lacks {len(missing)} of the model's {len(own)} tensors "
            f"({shown}){other}",
            hint="save the weights from the same timm architecture (model_name) as the encoder",
        )
