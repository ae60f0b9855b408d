"""robomimic's HDF5 layout, written and read through h5py.

Layout (robomimic's "Dataset Structure"): group ``data`` with attributes ``total`` (steps over
all demos) and ``env_args`` (JSON of the environment's metadata); one group ``data/demo_<i>``
per episode with attribute ``num_samples``, datasets ``actions`` (T, A), ``rewards`` (T,),
``dones`` (T,; 1 at the last step), ``obs/<key>`` (T, ...) and an ``ep_meta`` attribute (JSON:
the instruction under ``"lang"``, ``"success"`` and the episode's meta keys, as robocasa stores
language). Filter keys ``mask/<name>`` list demo names (bytes), e.g. ``mask/train`` and
``mask/valid``. ``next_obs`` and simulator ``states`` are not written (behaviour cloning from
observations needs neither).

h5py is imported inside the functions; an open file handle never pickles, so
:class:`RobomimicStore` reopens the file in each DataLoader worker.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modalforge.errors import DataError
from modalforge.io import atomic_path
from modalforge_robotics.data.episode import Episode, check_episode, check_finite_actions
from modalforge_robotics.data.normalize import NormalizeMode
from modalforge_robotics.data.windows import EpisodeReader

_DEMO = re.compile(r"demo_(\d+)$")


def write_robomimic(
    path: str | Path,
    episodes: Sequence[Mapping[str, Any]],
    env_meta: Mapping[str, Any],
    *,
    split: Mapping[str, Sequence[int]] | None = None,
    compression: str | None = None,
) -> Path:
    """Write ``episodes`` (see :mod:`~modalforge_robotics.data.episode`) to ``path`` atomically
    (a temporary file beside it, then a rename: an existing file survives a failure).

    ``split`` maps filter-key names to episode indices, e.g. ``{"train": [0, 1], "valid": [2]}``;
    ``compression`` is an h5py filter for the observations (``"gzip"``, ``"lzf"``)."""
    import h5py

    checked = [check_episode(ep, f"episode {i}") for i, ep in enumerate(episodes)]
    if not checked:
        raise DataError(f"{path}: no episodes to write", hint="collect at least one episode")
    try:
        env_args = json.dumps(dict(env_meta))
    except TypeError as exc:
        raise DataError(f"{path}: env_meta must hold JSON values: {exc}") from None
    for name, indices in (split or {}).items():
        bad = [i for i in indices if not 0 <= int(i) < len(checked)]
        if bad:
            raise DataError(
                f"{path}: filter key {name!r} names episode {bad[0]}, but there are "
                f"{len(checked)} episodes",
                hint="give episode indices from 0 to the number of episodes - 1",
            )
    with atomic_path(path, suffix=".hdf5") as tmp, h5py.File(tmp, "w") as f:
        data = f.create_group("data")
        for i, ep in enumerate(checked):
            _write_demo(data.create_group(f"demo_{i}"), ep, compression)
        data.attrs["total"] = int(sum(len(ep["actions"]) for ep in checked))
        data.attrs["env_args"] = env_args
        if split:
            mask = f.create_group("mask")
            for name, indices in split.items():
                names = [f"demo_{int(i)}".encode() for i in indices]
                mask.create_dataset(name, data=np.array(names, dtype="S"))
    return Path(path)


def _write_demo(group: Any, ep: Episode, compression: str | None) -> None:  # noqa: ANN401
    steps = len(ep["actions"])
    group.attrs["num_samples"] = steps
    meta = {"lang": ep["instruction"], "success": ep["success"], **ep["meta"]}
    group.attrs["ep_meta"] = json.dumps(meta)
    group.create_dataset("actions", data=ep["actions"])
    group.create_dataset("rewards", data=ep["rewards"])
    dones = np.zeros(steps, dtype=np.int64)
    dones[-1] = 1
    group.create_dataset("dones", data=dones)
    obs = group.create_group("obs")
    for key, arr in ep["obs"].items():
        big = arr.ndim >= 3 and compression
        obs.create_dataset(key, data=arr, compression=compression if big else None)


def read_robomimic(path: str | Path) -> tuple[list[Episode], dict[str, Any], dict[str, list[str]]]:
    """``(episodes, env_meta, filter keys)`` of a whole file, in demo order (small files,
    tests, conversion). Filter keys map to demo names."""
    store = RobomimicStore(path, in_memory=True)
    episodes = []
    for i in range(len(store.names)):
        obs = {k: store.frames(i, k, slice(None)) for k in store.obs_keys(i)}
        meta = dict(store.ep_meta[i])
        instruction = str(meta.pop("lang", ""))
        success = bool(meta.pop("success", False))
        episodes.append(
            Episode(
                obs=obs,
                actions=store.actions[i],
                rewards=store.rewards[i],
                success=success,
                instruction=instruction,
                meta=meta,
            )
        )
    return episodes, store.env_meta, store.filter_keys


def _open(path: Path) -> Any:  # noqa: ANN401 - an h5py.File
    import h5py

    if not path.is_file():
        raise DataError(
            f"robomimic file {path} does not exist",
            hint="check data.dataset.params.path (relative paths are from the working directory)",
        )
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty (0 bytes)", hint="write the demonstrations again")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise DataError(
            f"{path} is not a readable HDF5 file (truncated or corrupt?): {exc}",
            hint="write or copy the file again; robomimic data sets are HDF5 files",
        ) from None


class RobomimicStore:
    """Episodes of a robomimic file: names, lengths, actions and meta held in memory, each
    observation read on demand (from memory with ``in_memory``, else from the file, opened
    once per process). Picklable: the open file is dropped and reopened after unpickling."""

    def __init__(self, path: str | Path, *, in_memory: bool | None = None) -> None:
        self.path = Path(path)
        f = _open(self.path)
        try:
            self._scan(f)
            if in_memory is None:  # auto: files up to 512 MiB are read once
                in_memory = self.path.stat().st_size <= 512 * 2**20
            self._memory: dict[tuple[int, str], np.ndarray] | None = None
            if in_memory:
                self._memory = {
                    (i, k): f[f"data/{n}/obs/{k}"][()]
                    for i, n in enumerate(self.names)
                    for k in f[f"data/{n}/obs"]
                }
        except OSError as exc:  # a truncated file can open and fail on a later read
            raise DataError(
                f"{self.path}: cannot read (truncated or corrupt HDF5?): {exc}",
                hint="write or copy the file again",
            ) from None
        finally:
            f.close()
        self._file: Any = None
        self._pid = -1

    def _scan(self, f: Any) -> None:  # noqa: ANN401
        if "data" not in f:
            have = ", ".join(f) or "nothing"
            raise DataError(
                f"{self.path} has no 'data' group (it holds {have}): not a robomimic file",
                hint="robomimic files keep demonstrations under data/demo_<i>",
            )
        data = f["data"]
        names = [n for n in data if _DEMO.match(n)]
        if not names:
            raise DataError(
                f"{self.path}: no demonstrations under data/ (it holds "
                f"{', '.join(data) or 'nothing'})",
                hint="write episodes with write_robomimic, as data/demo_<i> groups",
            )
        self.names = sorted(names, key=lambda n: int(_DEMO.match(n).group(1)))  # type: ignore[union-attr]
        self.env_meta = _json_attr(data.attrs.get("env_args", "{}"), f"{self.path}: data.env_args")
        self.actions, self.rewards, self.ep_meta, self.obs_info = [], [], [], []
        for name in self.names:
            demo = data[name]
            where = f"{self.path}: {name}"
            if "actions" not in demo:
                raise DataError(f"{where} has no 'actions'", hint="every demo needs actions")
            actions = np.asarray(demo["actions"][()], dtype=np.float32)
            if actions.ndim == 1:
                actions = actions[:, None]
            check_finite_actions(actions, where)
            steps = len(actions)
            if "obs" not in demo:
                raise DataError(f"{where} has no 'obs' group", hint="store observations")
            info = {k: (demo["obs"][k].shape, demo["obs"][k].dtype) for k in demo["obs"]}
            for key, (shape, _) in info.items():
                if shape[0] != steps:
                    raise DataError(
                        f"{where}: observation {key!r} has {shape[0]} steps but 'actions' has "
                        f"{steps}",
                        hint="each demo needs one observation per action",
                    )
            rewards = demo["rewards"][()] if "rewards" in demo else np.zeros(steps)
            self.actions.append(actions)
            self.rewards.append(np.asarray(rewards, dtype=np.float32).reshape(-1))
            self.ep_meta.append(_json_attr(demo.attrs.get("ep_meta", "{}"), f"{where}.ep_meta"))
            self.obs_info.append(info)
        dims = {a.shape[1] for a in self.actions}
        if len(dims) > 1:
            raise DataError(
                f"{self.path}: demos have actions of different dimensions {sorted(dims)}",
                hint="all demos of one data set share one action space",
            )
        self.filter_keys = {
            k: [n.decode() if isinstance(n, bytes) else str(n) for n in f["mask"][k][()]]
            for k in (f["mask"] if "mask" in f else [])
        }

    # ------------------------------------------------------------------ reading
    def obs_keys(self, episode: int) -> list[str]:
        return list(self.obs_info[episode])

    def lengths(self) -> np.ndarray:
        return np.array([len(a) for a in self.actions], dtype=np.int64)

    def instruction(self, episode: int) -> str:
        return str(self.ep_meta[episode].get("lang", ""))

    def frames(self, episode: int, key: str, index: slice | np.ndarray) -> np.ndarray:
        """Rows ``index`` of observation ``key`` of an episode (a slice, or sorted indices)."""
        if self._memory is not None:
            return self._memory[(episode, key)][index]
        if self._file is None or self._pid != os.getpid():
            self._file, self._pid = _open(self.path), os.getpid()
        ds = self._file[f"data/{self.names[episode]}/obs/{key}"]
        if isinstance(index, slice):
            return ds[index]
        lo, hi = int(index.min()), int(index.max())
        return ds[lo : hi + 1][index - lo]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_file"], state["_pid"] = None, -1
        return state


def _json_attr(value: Any, where: str) -> dict[str, Any]:  # noqa: ANN401
    if isinstance(value, bytes):
        value = value.decode()
    try:
        out = json.loads(value) if isinstance(value, str) else dict(value)
    except (ValueError, TypeError):
        raise DataError(f"{where} is not valid JSON", hint="store it as a JSON string") from None
    return out if isinstance(out, dict) else {"value": out}


class RobomimicDataset(EpisodeReader):
    """``robomimic``: behaviour-cloning windows from a robomimic HDF5 file.

    ``cameras`` maps observation keys of RGB images to camera names (modality
    ``image_<camera>``), ``depth`` does so for depth maps (``depth_<camera>``), ``state_keys``
    are concatenated into ``state``; left out, they follow the rule of
    :mod:`~modalforge_robotics.data.windows` (``rgb`` → ``image_front``, ``agentview_image`` →
    ``image_agentview``; ``{}`` for none). ``history`` frames per sample, ``chunk`` future
    actions as the target. Splits are the file's filter keys (``mask/valid`` is split ``test``)
    when it has them, else a seeded split by episode with ``val_fraction`` of them in ``test``.
    ``normalize``: ``minmax`` maps each action dimension to [-1, 1] with the training episodes'
    min and max. ``in_memory``: read every observation once (default: files up to 512 MiB).
    """

    reader_name = "robomimic"

    def __init__(
        self,
        path: str,
        cameras: dict[str, str] | None = None,
        depth: dict[str, str] | None = None,
        state_keys: list[str] | None = None,
        history: int = 1,
        chunk: int = 1,
        val_fraction: float = 0.1,
        seed: int = 0,
        normalize: NormalizeMode = "minmax",
        use_filter_keys: bool = True,
        in_memory: bool | None = None,
    ) -> None:
        self._setup(
            RobomimicStore(path, in_memory=in_memory),
            cameras=cameras,
            depth=depth,
            state_keys=state_keys,
            history=history,
            chunk=chunk,
            val_fraction=val_fraction,
            seed=seed,
            normalize=normalize,
            use_filter_keys=use_filter_keys,
        )
