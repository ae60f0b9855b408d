"""``modalforge collect``: scripted-expert demonstrations of a built-in environment, written as a
robomimic HDF5 file (filter keys ``train`` / ``valid``) or a LeRobot dataset folder — the files
a lab's own pipeline reads with the ``robomimic`` / ``lerobot`` readers."""

from __future__ import annotations

import argparse
from pathlib import Path

from modalforge.errors import ModalforgeError


def cmd_collect(args: argparse.Namespace) -> int:
    from modalforge_apps.cli.rollout_cmd import parse_env_params
    from modalforge_robotics.data import write_lerobot, write_robomimic
    from modalforge_robotics.gymenv import make_env
    from modalforge_robotics.gymenv.factory import collect_expert_episodes

    out = Path(args.out)
    if out.exists():
        raise ModalforgeError(
            f"{out} already exists; collect does not overwrite demonstrations",
            hint="choose another --out, or remove the old file or folder first",
        )
    if not 0.0 <= args.val_fraction < 1.0:
        raise ModalforgeError(
            f"--val-fraction must be in [0, 1), got {args.val_fraction}",
            hint="e.g. 0.1 keeps a tenth of the episodes for validation",
        )
    params = parse_env_params(args.env_param)
    env = make_env(args.env, **params)
    try:
        episodes = collect_expert_episodes(
            env, args.episodes, noise=args.noise, seed=args.seed, clean_labels=args.clean_labels
        )
    finally:
        env.close()
    kept = [ep for ep in episodes if ep["success"] or not args.only_success]
    if not kept:
        raise ModalforgeError(
            f"none of the {len(episodes)} expert episodes succeeded, so --only-success kept none",
            hint="lower --noise, or collect without --only-success",
        )
    steps = sum(len(ep["actions"]) for ep in kept)
    what = f"{len(kept)} episodes ({sum(ep['success'] for ep in kept)} successful, {steps} steps"
    if args.format == "robomimic":
        n_val = round(len(kept) * args.val_fraction)
        if args.val_fraction > 0 and len(kept) >= 2:
            n_val = min(max(n_val, 1), len(kept) - 1)
        train = list(range(len(kept) - n_val))
        split = {"train": train, "valid": list(range(len(train), len(kept)))}
        env_meta = {
            "env_name": args.env,
            "env_kwargs": params,
            "expert": True,
            "noise": args.noise,
            "clean_labels": args.clean_labels,
        }
        write_robomimic(out, kept, env_meta, split=split if n_val else None)
        what += f"; filter keys: {len(train)} train, {n_val} valid"
    else:  # LeRobot folders hold no split: the lerobot reader splits by val_fraction
        write_lerobot(out, kept, fps=args.fps)
    print(f"{what}) of the {args.env} expert → {out} ({args.format})")
    return 0
