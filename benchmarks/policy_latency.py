"""Policy inference time per step at batch 1, and closed-loop rollout speed, of a trained policy.

Loads a run (e.g. ``modalforge train recipe:robotics_tabletop_reach --out runs/reach``), records
observations of seeded episodes of its environment, then times ``TrainedPolicy.act`` on one
observation at a time (observation layout, the pipeline's transforms, collate, the model, the
head's ``act``, temporal ensembling and un-normalisation: everything a robot's control loop pays
per step), after warm-up, and reports the median and 90th percentile. Then it times whole
rollouts (``run_episodes``) at 1 and 4 environments for steps per second.

Run: ``.venv/bin/python benchmarks/policy_latency.py --run runs/reach [--env tabletop_reach]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from modalforge.pipeline import load_trained
from modalforge_robotics.gymenv import make_env
from modalforge_robotics.rollout import run_episodes
from modalforge_robotics.rollout.evaluate import policy_env_params
from modalforge_robotics.rollout.policy import TrainedPolicy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--env", default="tabletop_reach")
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--episodes", type=int, default=40)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    trained = load_trained(args.run / "spec.yaml", args.run, device="cpu")
    params = policy_env_params(trained, args.env)
    env = make_env(args.env, **params)
    policy = TrainedPolicy(trained)
    obs, _ = env.reset(seed=0)
    observations = [obs]
    while len(observations) < args.calls:
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        observations.append(obs)
        if terminated or truncated:
            obs, _ = env.reset(seed=len(observations))
            observations.append(obs)
    policy.reset(0)
    for obs in observations[:20]:  # warm-up
        policy.act([obs], [0])
    times = []
    for obs in observations[: args.calls]:
        start = time.perf_counter()
        policy.act([obs], [0])
        times.append(time.perf_counter() - start)
    q = statistics.quantiles(times, n=10)
    print(
        f"policy {args.run} in {args.env}, torch threads {torch.get_num_threads()}: batch-1 act "
        f"median {statistics.median(times) * 1e3:.2f} ms, p90 {q[-1] * 1e3:.2f} ms "
        f"({len(times)} calls)"
    )
    for num_envs in (1, 4):
        start = time.perf_counter()
        results = run_episodes(
            lambda: make_env(args.env, **params),
            TrainedPolicy(trained),
            args.episodes,
            num_envs=num_envs,
            seed=1000,
        )
        wall = time.perf_counter() - start
        steps = sum(r.length for r in results)
        success = sum(r.success for r in results) / len(results)
        print(
            f"  rollout, {num_envs} env(s): {steps / wall:.0f} env steps/s, {args.episodes} "
            f"episodes in {wall:.1f} s, success {success:.3f}"
        )


if __name__ == "__main__":
    main()
