"""Checks on local weight files, so a wrong file fails loudly instead of leaving random weights."""

from __future__ import annotations

from torch import nn

from modalforge import weights
from modalforge.deps import require
from modalforge.errors import CheckpointError


def check_weights_file(path: str, field: str) -> None:
    """Raise a :class:`SpecError` naming ``field`` if ``path`` is not a readable weights file."""
    weights.check_weights_file(
        path, field, hint="give the path of a .safetensors (or .pth) file saved from this model"
    )


def check_weights_cover(model: nn.Module, path: str, field: str) -> None:
    """Every tensor of ``model`` must be in the file; timm only logs missing keys when adapting."""
    keys = _file_keys(path)
    missing = [k for k in model.state_dict() if k not in keys]
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise CheckpointError(
            f"{field}: {path} lacks {len(missing)} of the model's tensors ({shown})",
            hint="save the weights from the same timm architecture (model_name) as the encoder",
        )


def _file_keys(path: str) -> set[str]:
    if path.endswith(".safetensors"):
        from safetensors import safe_open

        with safe_open(path, framework="pt") as f:
            return set(f.keys())
    timm_models = require("timm.models", package="timm")
    return set(timm_models.load_state_dict(path))
