"""Training samples from episodes: an observation history and a chunk of future actions per step.

Shared by the ``robomimic`` and ``lerobot`` readers, which each supply a *store* (episode
names, actions, observation keys with shapes, ``frames(episode, key, index)``).

Observation keys become modalities by one rule (the ``cameras`` / ``depth`` params override it):
a uint8 (T, H, W, 3) key ``rgb`` is camera ``front``; ``<cam>_image`` or ``<cam>_rgb`` is camera
``<cam>``; camera ``<cam>`` becomes modality ``image_<cam>``. A float (T, H, W) or (T, H, W, 1)
key ``depth`` is ``depth_front``, ``<cam>_depth`` is ``depth_<cam>``. The ``state_keys`` (default:
``state`` if present, else every other (T, D) numeric key, sorted) are concatenated into
``state``. The episode's instruction is ``instruction``.

Sample ``t`` of an episode: frames ``t - history + 1 … t`` (before the first frame the first
repeats), stacked on the channel axis oldest first; ``target`` = actions ``t … t + chunk - 1``
normalised (after the last action the last repeats) and ``action_is_pad`` (chunk,) marks the
repeated ones (LeRobot's name), for a loss to ignore.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from modalforge.contracts import DatasetReader, Target
from modalforge.errors import DataError
from modalforge.modality import Modality
from modalforge_robotics.data.normalize import ActionNormalizer, NormalizeMode

PAD_KEY = "action_is_pad"
_CAM = re.compile(r"^(?P<cam>.+)_(image|rgb)$")
_DEPTH = re.compile(r"^(?P<cam>.+)_depth$")


def default_cameras(info: Mapping[str, tuple[tuple[int, ...], Any]]) -> dict[str, str]:
    """Observation key → camera name of every uint8 (T, H, W, 3) key (rule above)."""
    out = {}
    for key, (shape, dtype) in info.items():
        if np.dtype(dtype) == np.uint8 and len(shape) == 4 and shape[-1] == 3:
            m = _CAM.match(key)
            out[key] = "front" if key == "rgb" else (m.group("cam") if m else key)
    return out


def default_depth(info: Mapping[str, tuple[tuple[int, ...], Any]]) -> dict[str, str]:
    """Observation key → camera name of every float depth key (rule above)."""
    out = {}
    for key, (shape, dtype) in info.items():
        depthlike = len(shape) == 3 or (len(shape) == 4 and shape[-1] == 1)
        m = _DEPTH.match(key)
        if np.issubdtype(np.dtype(dtype), np.floating) and depthlike and (key == "depth" or m):
            out[key] = "front" if key == "depth" else m.group("cam")  # type: ignore[union-attr]
    return out


def default_state_keys(info: Mapping[str, tuple[tuple[int, ...], Any]]) -> list[str]:
    if "state" in info:
        return ["state"]
    return sorted(
        k for k, (s, d) in info.items() if len(s) == 2 and np.issubdtype(np.dtype(d), np.number)
    )


def split_episodes(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted ``(train, test)`` episode indices; ``round(n * val_fraction)`` (at least one when
    the fraction is positive and there are two or more episodes) go to test."""
    if not 0.0 <= val_fraction < 1.0:
        raise DataError(
            f"data.dataset.params.val_fraction must be in [0, 1), got {val_fraction}",
            hint="e.g. 0.1 keeps a tenth of the episodes for evaluation",
        )
    n_test = round(n * val_fraction)
    if val_fraction > 0 and n >= 2:
        n_test = min(max(n_test, 1), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


class EpisodeReader(DatasetReader):
    """Base of the episode readers: modalities, splits by episode, windows and statistics."""

    reader_name = "episodes"

    def _setup(
        self,
        store: Any,  # noqa: ANN401 - a RobomimicStore or LeRobotStore
        *,
        cameras: dict[str, str] | None,
        depth: dict[str, str] | None,
        state_keys: list[str] | None,
        history: int,
        chunk: int,
        val_fraction: float,
        seed: int,
        normalize: NormalizeMode,
        use_filter_keys: bool = True,
    ) -> None:
        for name, value in (("history", history), ("chunk", chunk)):
            if value < 1:
                raise DataError(f"data.dataset.params.{name} must be at least 1, got {value}")
        self.store, self.history, self.chunk = store, int(history), int(chunk)
        info = store.obs_info[0]
        self.cameras = default_cameras(info) if cameras is None else dict(cameras)
        self.depth = default_depth(info) if depth is None else dict(depth)
        self.state_keys = default_state_keys(info) if state_keys is None else list(state_keys)
        self._check_keys()
        self._splits = self._make_splits(val_fraction, seed, use_filter_keys)
        train = self._splits.get("train", np.arange(len(store.names)))
        self.normalizer = ActionNormalizer.fit([store.actions[e] for e in train], normalize)
        self._normalized = [self.normalizer.normalize(a).astype(np.float32) for a in store.actions]
        states = [self._state(e, slice(None)) for e in train] if self.state_keys else []
        if states:
            s = np.concatenate(states).astype(np.float64)
            self.state_mean, self.state_std = s.mean(0), s.std(0)
        else:
            self.state_mean = self.state_std = np.zeros(0)

    # ------------------------------------------------------------------ checks
    def _where(self, episode: int) -> str:
        return f"{self.store.path}: episode {self.store.names[episode]}"

    def _check_keys(self) -> None:
        wanted = [*self.cameras, *self.depth, *self.state_keys]
        if not wanted:
            raise DataError(
                f"{self.store.path}: no camera, depth or state observations found (the first "
                f"episode has {', '.join(self.store.obs_info[0]) or 'no observations'})",
                hint="name them with the cameras, depth and state_keys params",
            )
        for e, info in enumerate(self.store.obs_info):
            missing = [k for k in wanted if k not in info]
            if missing:
                raise DataError(
                    f"{self._where(e)} has no observation {missing[0]!r} (it has "
                    f"{', '.join(sorted(info)) or 'none'})",
                    hint="fix the cameras / depth / state_keys params, or the file",
                )
            for key in self.cameras:
                shape, dtype = info[key]
                if len(shape) != 4 or shape[-1] != 3:
                    chw = len(shape) == 4 and shape[1] == 3
                    raise DataError(
                        f"{self._where(e)}: camera {key!r} has shape {tuple(shape)}"
                        + (", channels-first (T, C, H, W)" if chw else "")
                        + "; episodes store images as (T, H, W, 3) uint8",
                        hint="store RGB frames channels-last, e.g. np.moveaxis(frames, 1, -1)"
                        if chw
                        else "name only RGB image keys in cameras",
                    )
                if np.dtype(dtype) != np.uint8:
                    raise DataError(
                        f"{self._where(e)}: camera {key!r} holds {np.dtype(dtype)}, not uint8",
                        hint="store images as uint8 0-255 (e.g. (img * 255).astype(np.uint8))",
                    )
            for key in self.depth:
                shape, dtype = info[key]
                if not (len(shape) == 3 or (len(shape) == 4 and shape[-1] == 1)):
                    raise DataError(
                        f"{self._where(e)}: depth {key!r} has shape {tuple(shape)}, not (T, H, W)",
                        hint="store one float depth map in metres per step",
                    )
            for key in self.state_keys:
                shape, _ = info[key]
                if len(shape) > 2:
                    raise DataError(
                        f"{self._where(e)}: state key {key!r} has shape {tuple(shape)}, not (T, D)",
                        hint="state_keys name low-dimensional (T, D) observations",
                    )

    def _make_splits(
        self, val_fraction: float, seed: int, use_filter_keys: bool
    ) -> dict[str, np.ndarray]:
        names = self.store.names
        keys = dict(self.store.filter_keys) if use_filter_keys else {}
        if keys:
            index = {n: i for i, n in enumerate(names)}
            if "valid" in keys and "test" not in keys:  # robomimic's name → the engine's default
                keys["test"] = keys.pop("valid")
            out = {}
            for key, demos in keys.items():
                unknown = [d for d in demos if d not in index]
                if unknown:
                    raise DataError(
                        f"{self.store.path}: filter key {key!r} names {unknown[0]!r}, which is "
                        "not an episode of the file",
                        hint="rewrite the filter key with existing episode names",
                    )
                out[key] = np.array(sorted(index[d] for d in demos), dtype=np.int64)
            if "train" in out and "test" in out:
                both = np.intersect1d(out["train"], out["test"])
                if both.size:
                    raise DataError(
                        f"{self.store.path}: episode {names[both[0]]} is in both filter keys "
                        "train and valid/test",
                        hint="an episode belongs to one split only",
                    )
            return out
        train, test = split_episodes(len(names), val_fraction, seed)
        return {"train": train, "test": test} if test.size else {"train": train}

    # ------------------------------------------------------------------ contract
    @property
    def modalities(self) -> dict[str, Modality]:
        info = self.store.obs_info[0]
        h = self.history
        out: dict[str, Modality] = {}
        for key, cam in self.cameras.items():
            _, height, width, c = info[key][0]
            out[f"image_{cam}"] = Modality(
                f"image_{cam}", "image2d", (h * c, height, width), metadata={"key": key}
            )
        for key, cam in self.depth.items():
            shape = info[key][0]
            out[f"depth_{cam}"] = Modality(
                f"depth_{cam}", "depth", (h, shape[1], shape[2]), metadata={"key": key}
            )
        if self.state_keys:
            dims = [math.prod(info[k][0][1:]) for k in self.state_keys]
            features = [
                f"{k}[{i}]" if d > 1 else k
                for k, d in zip(self.state_keys, dims, strict=True)
                for i in range(d)
            ]
            if h > 1:
                features = [f"{f}@t-{h - 1 - j}" for j in range(h) for f in features]
            out["state"] = Modality(
                "state", "lowdim", (h * sum(dims),), metadata={"features": features}
            )
        out["instruction"] = Modality("instruction", "text", (None,), dtype="str")
        return out

    @property
    def target(self) -> Target:
        a = self.normalizer.dim
        return Target("regression", self.chunk * a, shape=(self.chunk, a))

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self._splits)

    def _episodes(self, split: str) -> np.ndarray:
        if split not in self._splits:
            raise DataError(
                f"data set {self.reader_name!r} has no split {split!r}",
                hint=f"use one of: {', '.join(self._splits)} (data.train_split / data.eval_split)",
            )
        return self._splits[split]

    def load(self, split: str) -> EpisodeWindows:
        return EpisodeWindows(self, self._episodes(split))

    def metadata(self, split: str) -> dict[str, list[Any]]:
        """``episode`` (name), ``instruction`` and ``step`` of each sample, in order."""
        lengths = self.store.lengths()
        eps = self._episodes(split)
        return {
            "episode": [self.store.names[e] for e in eps for _ in range(lengths[e])],
            "instruction": [self.store.instruction(e) for e in eps for _ in range(lengths[e])],
            "step": [t for e in eps for t in range(lengths[e])],
        }

    def state_dict(self) -> dict[str, Any]:
        """What a rollout needs without the data set: the action statistics, the window sizes,
        which environment keys feed which modality and the training state mean/std."""
        return {
            "action_normalizer": self.normalizer.state_dict(),
            "history": self.history,
            "chunk": self.chunk,
            "cameras": self.cameras,
            "depth": self.depth,
            "state_keys": self.state_keys,
            "state_mean": self.state_mean.tolist(),
            "state_std": self.state_std.tolist(),
        }

    # ------------------------------------------------------------------ samples
    def _state(self, episode: int, index: slice | np.ndarray) -> np.ndarray:
        parts = []
        for k in self.state_keys:
            x = np.asarray(self.store.frames(episode, k, index), dtype=np.float32)
            parts.append(x.reshape(len(x), -1))
        return np.concatenate(parts, axis=1)

    def sample(self, episode: int, t: int, only: str | None = None) -> dict[str, Any]:
        """The sample at step ``t`` of ``episode`` (with ``only``: that modality alone)."""
        h = self.history
        hist = np.clip(np.arange(t - h + 1, t + 1), 0, None)
        out: dict[str, Any] = {}
        for key, cam in self.cameras.items():
            name = f"image_{cam}"
            if only in (None, name):
                x = torch.from_numpy(np.ascontiguousarray(self.store.frames(episode, key, hist)))
                x = x.permute(0, 3, 1, 2).reshape(-1, x.shape[1], x.shape[2])
                out[name] = x.float().div_(255.0)
        for key, cam in self.depth.items():
            name = f"depth_{cam}"
            if only in (None, name):
                x = np.asarray(self.store.frames(episode, key, hist), dtype=np.float32)
                out[name] = torch.from_numpy(x.reshape(h, x.shape[1], x.shape[2]).copy())
        if self.state_keys and only in (None, "state"):
            out["state"] = torch.from_numpy(self._state(episode, hist).reshape(-1).copy())
        if only in (None, "instruction"):
            out["instruction"] = self.store.instruction(episode)
        if only is None:
            acts = self._normalized[episode]
            idx = np.arange(t, t + self.chunk)
            pad = idx >= len(acts)
            out["target"] = torch.from_numpy(acts[np.minimum(idx, len(acts) - 1)])
            out[PAD_KEY] = torch.from_numpy(pad)
        return out


class EpisodeWindows(Dataset):
    """One sample per step of the split's episodes (episode order, then time order)."""

    def __init__(self, reader: EpisodeReader, episodes: np.ndarray) -> None:
        self.reader = reader
        self.episodes = np.asarray(episodes, dtype=np.int64)
        lengths = reader.store.lengths()[self.episodes]
        self._episode = np.repeat(self.episodes, lengths)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        self._step = np.arange(int(lengths.sum())) - np.repeat(starts, lengths)

    def __len__(self) -> int:
        return len(self._episode)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self.reader.sample(int(self._episode[index]), int(self._step[index]))

    def modality_samples(self, name: str) -> Iterator[Any]:
        """One modality of every sample (``state`` without decoding images, for fitting)."""
        for e, t in zip(self._episode, self._step, strict=True):
            yield self.reader.sample(int(e), int(t), only=name)[name]
