"""``demonstrations``: scripted-expert episodes of a built-in environment, collected on first
use into the cache as a robomimic HDF5 file (training and validation filter keys) and read back
through the real ``robomimic`` reader — the data of the robotics recipes."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from modalforge.errors import SpecError
from modalforge_robotics.data.normalize import NormalizeMode
from modalforge_robotics.data.robomimic import RobomimicDataset

VERSION = 2  # bump when the collection changes, so cached files are not reused


def default_cache_dir() -> Path:
    """``$MODALFORGE_CACHE/demonstrations``, else ``~/.cache/modalforge/demonstrations``."""
    base = os.environ.get("MODALFORGE_CACHE") or Path.home() / ".cache" / "modalforge"
    return Path(base) / "demonstrations"


def ensure_demonstrations(config: dict[str, Any], cache_dir: str | Path | None = None) -> Path:
    """The HDF5 file of ``config``'s demonstrations, collected on first use."""
    from modalforge_robotics.data.robomimic import write_robomimic
    from modalforge_robotics.gymenv import make_env
    from modalforge_robotics.gymenv.factory import collect_expert_episodes

    text = json.dumps({**config, "version": VERSION}, sort_keys=True)
    key = hashlib.sha256(text.encode()).hexdigest()[:16]
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = folder / f"{config['env']}-{key}.hdf5"
    if path.is_file():
        return path
    env = make_env(config["env"], **config["env_params"])
    try:
        total = config["episodes"] + config["val_episodes"]
        episodes = collect_expert_episodes(
            env,
            total,
            noise=config["noise"],
            seed=config["seed"],
            clean_labels=bool(config.get("clean_labels")),
        )
    finally:
        env.close()
    train = list(range(config["episodes"]))
    split = {"train": train, "valid": list(range(config["episodes"], total))}
    env_meta = {"env_name": config["env"], "env_kwargs": config["env_params"], "expert": True}
    folder.mkdir(parents=True, exist_ok=True)
    return write_robomimic(path, episodes, env_meta, split=split)


class DemonstrationsDataset(RobomimicDataset):
    """Windows of ``episodes`` training and ``val_episodes`` validation (split ``test``)
    demonstrations of the scripted expert in ``env`` (``tabletop_reach``, ``tabletop_push`` or
    ``reacher``), with Gaussian action ``noise`` for diverse states (in the recorded actions, or
    with ``clean_labels`` only in the executed ones, the expert's own actions recorded: DART,
    see :func:`~modalforge_robotics.envs.collect_episodes`), collected once per
    configuration into ``cache_dir`` (default ``$MODALFORGE_CACHE/demonstrations``).

    ``env_params`` go to the environment (e.g. ``image_size``, ``num_objects``, and for the
    tabletop ``combinations: train``, which keeps the held-out instruction–object combinations
    out of the demonstrations); ``history``, ``chunk``, ``normalize`` and the observation
    mapping are the ``robomimic`` reader's.
    """

    reader_name = "demonstrations"

    def __init__(
        self,
        env: str = "tabletop_reach",
        episodes: int = 200,
        val_episodes: int = 20,
        noise: float = 0.3,
        clean_labels: bool = False,
        seed: int = 0,
        env_params: dict[str, Any] | None = None,
        history: int = 1,
        chunk: int = 1,
        normalize: NormalizeMode = "minmax",
        cameras: dict[str, str] | None = None,
        depth: dict[str, str] | None = None,
        state_keys: list[str] | None = None,
        cache_dir: str | None = None,
    ) -> None:
        from modalforge_robotics.gymenv import BUILT_IN

        if env not in BUILT_IN:
            raise SpecError(
                "data.dataset.params.env",
                f"no scripted expert for {env!r}",
                hint=f"use one of {', '.join(BUILT_IN)}, or record your own demonstrations "
                "and read them with the robomimic or lerobot reader",
            )
        if episodes < 1 or val_episodes < 1:
            raise SpecError(
                "data.dataset.params.episodes",
                f"needs at least one training and one validation episode, got {episodes} and "
                f"{val_episodes}",
            )
        config = {
            "env": env,
            "episodes": int(episodes),
            "val_episodes": int(val_episodes),
            "noise": float(noise),
            "clean_labels": bool(clean_labels),
            "seed": int(seed),
            "env_params": dict(env_params or {}),
        }
        self.config = config
        path = ensure_demonstrations(config, cache_dir)
        super().__init__(
            str(path),
            cameras=cameras,
            depth=depth,
            state_keys=state_keys,
            history=history,
            chunk=chunk,
            normalize=normalize,
            use_filter_keys=True,
            in_memory=True,
        )

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "demonstrations": self.config}
