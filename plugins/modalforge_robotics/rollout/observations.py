"""Environment observations → model samples laid out exactly as the episode readers lay out
their training windows (``modalforge_robotics.data.windows``), from the reader's stored state:
which observation keys feed which camera, depth map and state vector, and the history length."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from modalforge.errors import DataError


class ObservationFrames:
    """The last ``history`` observations of each environment slot, as model samples.

    An episode's first observation fills the whole history (the readers pad the frames before an
    episode's start with its first frame, so the policy sees at run time what it saw in training).
    """

    def __init__(self, dataset_state: Mapping[str, Any]) -> None:
        missing = [
            k for k in ("cameras", "depth", "state_keys", "history") if k not in dataset_state
        ]
        if missing:
            raise DataError(
                f"the checkpoint's data set state has no {', '.join(missing)}: it was not "
                "trained on an episode data set (robomimic, lerobot)",
                hint="roll out a policy trained on episodes (data.dataset: robomimic or lerobot)",
            )
        self.cameras = dict(dataset_state["cameras"])
        self.depth = dict(dataset_state["depth"])
        self.state_keys = list(dataset_state["state_keys"])
        self.history = int(dataset_state["history"])
        self._frames: dict[int, deque] = {}

    @property
    def keys(self) -> list[str]:
        """The environment observation keys a sample is made of."""
        return [*self.cameras, *self.depth, *self.state_keys]

    def reset(self, slot: int) -> None:
        """Slot ``slot`` starts a new episode: its next observation fills the history."""
        self._frames.pop(slot, None)

    def push(self, slot: int, obs: Mapping[str, Any]) -> None:
        missing = [k for k in self.keys if k not in obs]
        if missing:
            raise DataError(
                f"the environment's observation has no {', '.join(map(repr, missing))} (it has "
                f"{', '.join(map(repr, obs))}), which the policy was trained on",
                hint="map the environment's observations to the training data's keys, or "
                "train on episodes recorded from this environment",
            )
        frames = self._frames.get(slot)
        if frames is None:
            self._frames[slot] = deque([obs] * self.history, maxlen=self.history)
        else:
            frames.append(obs)

    def sample(self, slot: int) -> dict[str, Any]:
        """The slot's current sample: ``image_<cam>`` (T·3, H, W) in [0, 1], ``depth_<cam>``
        (T, H, W), ``state`` (T·D,), ``instruction``."""
        frames = list(self._frames[slot])
        out: dict[str, Any] = {}
        for key, cam in self.cameras.items():
            x = np.stack([np.asarray(f[key]) for f in frames])
            if x.ndim != 4 or x.shape[-1] != 3 or x.dtype != np.uint8:
                raise DataError(
                    f"observation {key!r} has shape {x.shape[1:]} and dtype {x.dtype}; the "
                    "policy's camera images are uint8 H×W×3",
                    hint="give the environment's RGB frames as uint8 (H, W, 3) arrays",
                )
            t = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2)
            out[f"image_{cam}"] = t.reshape(-1, t.shape[2], t.shape[3]).float().div_(255.0)
        for key, cam in self.depth.items():
            x = np.stack([np.asarray(f[key], dtype=np.float32) for f in frames])
            out[f"depth_{cam}"] = torch.from_numpy(x.reshape(len(frames), *x.shape[-2:]).copy())
        if self.state_keys:
            parts = [
                np.concatenate(
                    [np.asarray(f[k], dtype=np.float32).reshape(-1) for k in self.state_keys]
                )
                for f in frames
            ]
            out["state"] = torch.from_numpy(np.stack(parts).reshape(-1))
        instruction = frames[-1].get("instruction")
        if instruction is not None:
            out["instruction"] = str(instruction)
        return out
