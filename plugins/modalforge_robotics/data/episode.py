"""One demonstration in memory: what the environment's collector produces and the writers take.

An episode is a plain ``dict`` (so the env part can build it without importing this module)::

    {"obs": {key: array (T, ...)}, "actions": float32 (T, A), "rewards": float32 (T,),
     "success": bool, "instruction": str, "meta": {JSON values}}

:func:`check_episode` validates one and returns it with arrays of the right dtypes; every error
names the episode and the key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypedDict

import numpy as np

from modalforge.errors import DataError

#: keys of ``ep_meta`` that the writers set themselves (an episode's ``meta`` cannot use them)
RESERVED_META = ("lang", "success")


class Episode(TypedDict):
    """One demonstration (see the module docstring)."""

    obs: dict[str, np.ndarray]
    actions: np.ndarray
    rewards: np.ndarray
    success: bool
    instruction: str
    meta: dict[str, Any]


def check_episode(episode: Mapping[str, Any], name: str) -> Episode:
    """``episode`` validated: every observation has ``T`` rows (``T`` = number of actions),
    actions are a finite float (T, A) array, rewards (T,), the instruction a ``str`` and meta a
    dict of JSON values. ``name`` (e.g. ``episode 3``) starts every error message."""
    if not isinstance(episode, Mapping):
        raise DataError(f"{name}: an episode is a dict, got {type(episode).__name__}")
    missing = [k for k in ("obs", "actions") if k not in episode]
    if missing:
        raise DataError(
            f"{name}: missing {', '.join(repr(k) for k in missing)}",
            hint="an episode has obs, actions, rewards, success, instruction and meta",
        )
    actions = np.asarray(episode["actions"])
    if actions.ndim != 2 or not np.issubdtype(actions.dtype, np.number):
        raise DataError(
            f"{name}: 'actions' must be a numeric (T, A) array, got {actions.dtype} of shape "
            f"{actions.shape}",
            hint="stack one (A,) action per step",
        )
    actions = actions.astype(np.float32)
    check_finite_actions(actions, name)
    steps = len(actions)
    if steps == 0:
        raise DataError(f"{name}: the episode has no steps", hint="leave empty episodes out")
    obs = episode["obs"]
    if not isinstance(obs, Mapping) or not obs:
        raise DataError(f"{name}: 'obs' must be a non-empty dict of (T, ...) arrays")
    arrays: dict[str, np.ndarray] = {}
    for key, value in obs.items():
        arr = np.asarray(value)
        if arr.ndim == 0 or len(arr) != steps:
            got = "a scalar" if arr.ndim == 0 else f"{len(arr)} rows"
            raise DataError(
                f"{name}: observation {key!r} has {got} but the episode has {steps} actions",
                hint="record one observation per action (the observation the action was taken in)",
            )
        arrays[str(key)] = arr
    rewards = np.asarray(episode.get("rewards", np.zeros(steps)), dtype=np.float32).reshape(-1)
    if len(rewards) != steps:
        raise DataError(f"{name}: 'rewards' has {len(rewards)} values for {steps} actions")
    instruction = episode.get("instruction", "")
    if not isinstance(instruction, str):
        raise DataError(
            f"{name}: 'instruction' must be a str, got {type(instruction).__name__}",
            hint='give the language instruction as text, e.g. "push the red block left"',
        )
    meta = dict(episode.get("meta") or {})
    clash = [k for k in RESERVED_META if k in meta]
    if clash:
        raise DataError(
            f"{name}: meta key {clash[0]!r} is reserved (the instruction and success are stored "
            "under 'lang' and 'success')",
            hint="rename that meta key",
        )
    try:
        json.dumps(meta)
    except TypeError as exc:
        raise DataError(f"{name}: 'meta' must hold JSON values: {exc}") from None
    return Episode(
        obs=arrays,
        actions=actions,
        rewards=rewards,
        success=bool(episode.get("success", False)),
        instruction=instruction,
        meta=meta,
    )


def check_finite_actions(actions: np.ndarray, name: str) -> None:
    """A :class:`DataError` naming the first step and dimension of a NaN or infinite action."""
    bad = ~np.isfinite(actions)
    if bad.any():
        step, dim = (int(i) for i in np.argwhere(bad)[0])
        raise DataError(
            f"{name}: 'actions' has {int(bad.sum())} NaN or infinite values (first at step "
            f"{step}, dimension {dim}: {actions[step, dim]})",
            hint="drop or repair that episode; a policy cannot learn from non-finite actions",
        )


def check_chw_image(image: Any, name: str) -> None:  # noqa: ANN401 - an array or a tensor
    """A :class:`DataError` when ``image`` (C, H, W) or (B, C, H, W) looks channels-last."""
    shape = tuple(getattr(image, "shape", ()))
    if len(shape) < 3:
        raise DataError(f"{name}: an image needs (C, H, W) dimensions, got shape {shape}")
    c, last = shape[-3], shape[-1]
    if last in (1, 3, 4) and c not in (1, 3, 4):
        raise DataError(
            f"{name}: image of shape {shape} is channels-last (H, W, C) where (C, H, W) is "
            "expected",
            hint="transpose it, e.g. np.moveaxis(image, -1, -3)",
        )
