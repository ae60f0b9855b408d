"""Local weights for the MONAI encoders: a state-dict file, a safetensors file or a bundle folder.

Files are read by :func:`modalforge.weights.read_state_dict`: safetensors through its own parser,
PyTorch files with ``torch.load(weights_only=True)``, so a pickled ``nn.Module`` or any other
Python object is refused (a :class:`CheckpointError` naming the file), never unpickled.

A file may hold the state dict of the full MONAI network (its classifier keys are dropped), of the
network without classifier, or of a modalforge encoder (``net.*`` plus an optional ``proj.*``
projection). Wrapper prefixes (``module.``, ``_orig_mod.``, ``model.``, ``net.``) are stripped;
the tensors under a sub-network prefix (``swinViT.`` of a SwinUNETR, ``vit.`` of a UNETR) are
selected when present. Anything else that does not fit is an error listing the keys and shapes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from modalforge.errors import CheckpointError, SpecError
from modalforge.weights import check_weights_file, read_state_dict

#: where a MONAI bundle keeps its weights, in order of preference
BUNDLE_FILES = ("models/model.safetensors", "models/model.pt")
#: prefixes that training wrappers put before every key (DDP, torch.compile, Lightning, ours)
WRAPPER_PREFIXES = ("module.", "_orig_mod.", "model.", "net.")
#: our encoders' projection (``out_dim``), which may sit beside the network in a file
PROJ_PREFIX = "proj."
HINT = (
    "give a .pt/.pth/.bin state dict (`torch.save(net.state_dict(), path)`), a .safetensors file "
    "or a MONAI bundle folder with models/model.pt"
)


def resolve_weights(path: str, field: str) -> Path:
    """The weights file that ``path`` names: the file itself, or a bundle folder's
    ``models/model.safetensors`` / ``models/model.pt``; a :class:`SpecError` at ``field``
    otherwise."""
    p = Path(path).expanduser()
    if p.is_dir():
        for name in BUNDLE_FILES:
            if (p / name).is_file():
                return p / name
        torchscript = (p / "models" / "model.ts").is_file()
        extra = (
            "; its models/model.ts is TorchScript, which modalforge does not load"
            if torchscript
            else ""
        )
        raise SpecError(
            field,
            f"folder {path} is not a MONAI bundle with weights: it has no "
            f"{' or '.join(BUNDLE_FILES)}{extra}",
            hint="give the bundle's root folder (the one holding configs/ and models/), or the "
            "weights file itself",
        )
    return check_weights_file(path, field, hint=HINT)


def normalise_keys(
    state: Mapping[str, Tensor], *, select: tuple[str, ...] = (), drop: tuple[str, ...] = ()
) -> dict[str, Tensor]:
    """``state`` under the encoder network's own names: wrapper prefixes stripped, the tensors of
    a ``select``ed sub-network (e.g. ``swinViT.``) kept alone when present, ``drop`` prefixes
    (the classifier of the full network) removed. Projection keys (``proj.*``) stay as they are."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        stripped = True
        while stripped:
            stripped = False
            for prefix in WRAPPER_PREFIXES:
                if key.startswith(prefix):
                    key, stripped = key[len(prefix) :], True
        out[key] = value
    for prefix in select:
        if any(k.startswith(prefix) for k in out):
            out = {
                k[len(prefix) :] if k.startswith(prefix) else k: v
                for k, v in out.items()
                if k.startswith((prefix, PROJ_PREFIX))
            }
            break
    return {k: v for k, v in out.items() if not k.startswith(drop)}


def load_encoder_weights(
    net: nn.Module,
    proj: nn.Module,
    path: str,
    field: str,
    *,
    what: str,
    select: tuple[str, ...] = (),
    drop: tuple[str, ...] = (),
) -> Path:
    """Load the weights at ``path`` into ``net`` (and ``proj``, if the file has ``proj.*``
    tensors); every tensor of ``net`` must be there with its shape, else a
    :class:`CheckpointError` naming ``field`` and the file lists the offending keys. Returns the
    file read."""
    file = resolve_weights(path, field)
    state = normalise_keys(read_state_dict(file, field, hint=HINT), select=select, drop=drop)
    own = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    file_proj = {k: v for k, v in state.items() if k.startswith(PROJ_PREFIX)}
    state = {k: v for k, v in state.items() if not k.startswith(PROJ_PREFIX)}
    if file_proj:  # a modalforge encoder's own state dict, projection included
        own.update({PROJ_PREFIX + k: tuple(v.shape) for k, v in proj.state_dict().items()})
        state.update(file_proj)
    check_keys(own, {k: tuple(v.shape) for k, v in state.items()}, file, field, what)
    net.load_state_dict({k: v for k, v in state.items() if not k.startswith(PROJ_PREFIX)})
    if file_proj:
        proj.load_state_dict({k[len(PROJ_PREFIX) :]: v for k, v in file_proj.items()})
    return file


def check_keys(
    own: Mapping[str, tuple[int, ...]],
    found: Mapping[str, tuple[int, ...]],
    file: Path,
    field: str,
    what: str,
) -> None:
    """A :class:`CheckpointError` listing missing, unexpected and mis-shaped keys, if any."""
    missing = [k for k in own if k not in found]
    unexpected = [k for k in found if k not in own]
    shapes = [
        f"{k} {_shape(found[k])} in the file, {_shape(s)} in the encoder"
        for k, s in own.items()
        if k in found and found[k] != s
    ]
    if not (missing or unexpected or shapes):
        return
    problems = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape", shapes)):
        if keys:
            problems.append(f"{len(keys)} {label}: {_shorten(keys)}")
    unrelated = len(missing) == len(own)
    hint = (
        "the file holds another architecture; save the weights of the same network"
        if unrelated
        else "build the encoder with the settings the weights were trained with (network, "
        "sizes, input channels from the modality, 2-D vs 3-D)"
    )
    raise CheckpointError(
        f"{field}: {file} does not fit the {what} ({'; '.join(problems)})", hint=hint
    )


def _shape(shape: Any) -> str:  # noqa: ANN401 - a tuple of ints
    return "(" + ", ".join(str(int(d)) for d in shape) + ")"


def _shorten(keys: list[str], n: int = 4) -> str:
    shown = ", ".join(keys[:n])
    return shown + (f" and {len(keys) - n} more" if len(keys) > n else "")
