"""The observation features a robotics data set declares, found without reading its frames.

What the ``robotics`` domain adapter sizes its defaults from (one encoder per camera, depth
map and state vector): a robomimic file's first-demo keys with shapes and dtypes (h5py reads
only the metadata), a LeRobot folder's ``meta/info.json`` features, or the known layout of a
built-in environment's demonstrations. The naming rule is the readers' own (see
:mod:`~modalforge_robotics.data.windows`), applied with the spec's ``cameras`` / ``depth`` /
``state_keys`` params, so the names match the modalities the reader will produce.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from modalforge.modality import ModalityKind
from modalforge_robotics.data.lerobot import default_lerobot_cameras, default_lerobot_state_keys
from modalforge_robotics.data.windows import default_cameras, default_depth, default_state_keys

# Observation keys and (T, ...) shapes of the built-in environments' demonstrations.
_BUILT_IN_OBS: dict[str, dict[str, tuple[tuple[int, ...], str]]] = {
    "tabletop": {
        "rgb": ((1, 64, 64, 3), "uint8"),
        "depth": ((1, 64, 64), "float32"),
        "state": ((1, 4), "float32"),
    },
    "reacher": {"rgb": ((1, 64, 64, 3), "uint8"), "state": ((1, 6), "float32")},
}

Info = dict[str, tuple[tuple[int, ...], Any]]


def observation_features(dataset: str, params: Mapping[str, Any]) -> dict[str, ModalityKind]:
    """Modality name → kind of what ``dataset`` (a registered episode reader) with ``params``
    yields, or ``{}`` where the data cannot be inspected (a missing file: the reader itself
    reports that, with its fix, when the pipeline is built)."""
    info = _info(dataset, params)
    if info is None:
        return {}
    lerobot = dataset == "lerobot"
    cameras = params.get("cameras")
    if cameras is None:
        cameras = default_lerobot_cameras(info) if lerobot else default_cameras(info)
    depth = params.get("depth")
    if depth is None:
        depth = {} if lerobot else default_depth(info)
    state_keys = params.get("state_keys")
    if state_keys is None:
        state_keys = default_lerobot_state_keys(info) if lerobot else default_state_keys(info)
    out: dict[str, ModalityKind] = {}
    for cam in dict(cameras).values():
        out[f"image_{cam}"] = ModalityKind.IMAGE2D
    for cam in dict(depth).values():
        out[f"depth_{cam}"] = ModalityKind.DEPTH
    if list(state_keys):
        out["state"] = ModalityKind.LOWDIM
    out["instruction"] = ModalityKind.TEXT
    return out


def _info(dataset: str, params: Mapping[str, Any]) -> Info | None:
    if dataset == "demonstrations":
        env = str(params.get("env", "tabletop_reach"))
        return dict(_BUILT_IN_OBS["reacher" if env == "reacher" else "tabletop"])
    path = params.get("path")
    if not isinstance(path, str):
        return None
    if dataset == "robomimic":
        return _robomimic_info(Path(path))
    if dataset == "lerobot":
        return _lerobot_info(Path(path))
    return None


def _robomimic_info(path: Path) -> Info | None:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            demos = sorted(f.get("data", {}).keys())
            if not demos or "obs" not in f["data"][demos[0]]:
                return None
            obs = f["data"][demos[0]]["obs"]
            return {k: (tuple(obs[k].shape), obs[k].dtype) for k in obs}
    except OSError:
        return None


def _lerobot_info(folder: Path) -> Info | None:
    try:
        features = json.loads((folder / "meta/info.json").read_text())["features"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    out: Info = {}
    for key, feat in features.items():
        if not key.startswith("observation.") or not isinstance(feat, Mapping):
            continue
        shape = tuple(int(s) for s in feat.get("shape") or ())
        if feat.get("dtype") in ("image", "video"):
            out[key] = ((1, *shape), np.dtype(np.uint8))
        else:
            out[key] = ((1, int(np.prod(shape or (1,)))), np.dtype(np.float32))
    return out
