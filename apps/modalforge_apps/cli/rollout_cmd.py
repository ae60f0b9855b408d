"""``modalforge rollout``: a policy in closed loop — seeded episodes of an environment, the
success rate with its confidence interval, mean return and length, and a GIF grid.

Output folder (each file written atomically)::

    <out>/results.json   success rate and interval, return, length, speed, per-episode rows
    <out>/episodes.gif   the first ``--record`` episodes, framed green (success) or red
    <out>/report.html    the summary table and the GIF grid, one self-contained page
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from modalforge.errors import ModalforgeError, SpecError

RESULTS_FILE, GIF_FILE, REPORT_FILE = "results.json", "episodes.gif", "report.html"


def cmd_rollout(args: argparse.Namespace) -> int:
    from modalforge import io
    from modalforge_robotics.gymenv import expert_for, make_env
    from modalforge_robotics.rollout import run_episodes, success_rate, success_rule
    from modalforge_robotics.rollout.baselines import (
        ExpertPolicy,
        RandomPolicy,
        shuffled_instructions,
    )
    from modalforge_robotics.rollout.evaluate import check_action_dim

    out = _out_folder(args)
    io.check_output_dir(out, "--out")
    trained = _load(args)
    env_params = _env_params(args, trained)
    probe = make_env(args.env, **env_params)
    pool = _instruction_pool(probe, args) if args.shuffle_instructions else None
    envs: list[Any] = []

    def make() -> Any:  # noqa: ANN401
        env = make_env(args.env, **env_params)
        if pool is not None:
            env = shuffled_instructions(env, pool)
        envs.append(env)
        return env

    if args.policy == "random":
        policy: Any = RandomPolicy(probe.action_space, seed=args.seed)
    elif args.policy == "expert":
        policy = ExpertPolicy(envs, lambda env: expert_for(env, seed=args.seed))
    else:
        from modalforge_robotics.rollout.policy import TrainedPolicy

        policy = TrainedPolicy(
            trained,
            execution=args.execution,
            ensemble_m=args.ensemble_m,
            sample=args.sample,
            seed=args.seed,
        )
        check_action_dim(probe, policy.action_dim, args.env)
    rule = args.success or success_rule(probe)
    probe.close()
    timed = _Timed(policy)
    start = time.perf_counter()
    results = run_episodes(
        make,
        timed,
        args.episodes,
        num_envs=args.num_envs,
        seed=args.seed,
        record=args.record,
        max_steps=args.max_steps,
        success_at=rule,
    )
    wall = time.perf_counter() - start
    rate = success_rate(sum(r.success for r in results), len(results), method=args.interval)
    steps = sum(r.length for r in results)
    summary = {
        "env": args.env,
        "env_params": env_params,
        "policy": args.policy,
        "checkpoint": str(trained.checkpoint) if trained is not None else None,
        "execution": args.execution if trained is not None else None,
        "shuffled_instructions": bool(args.shuffle_instructions),
        "success_at": rule,
        "episodes": len(results),
        "seed": args.seed,
        "success_rate": rate.rate,
        "success_ci": [rate.low, rate.high],
        "interval": f"{rate.method} {rate.confidence:.0%}",
        "mean_return": sum(r.ret for r in results) / len(results),
        "mean_length": steps / len(results),
        "mean_max_reward": sum(r.max_reward for r in results) / len(results),
        "env_steps_per_second": steps / wall,
        "policy_ms_per_call": 1e3 * timed.seconds / max(timed.calls, 1),
        "policy_mean_batch": timed.rows / max(timed.calls, 1),
        "num_envs": args.num_envs,
        "per_episode": [
            {
                "index": r.index,
                "seed": r.seed,
                "success": r.success,
                "return": r.ret,
                "length": r.length,
                "max_reward": r.max_reward,
                "instruction": r.instruction,
            }
            for r in results
        ],
    }
    coverage = [r.max_coverage for r in results if r.max_coverage is not None]
    if coverage:  # PushT's overlap with the goal, LeRobot's headline besides success
        summary["mean_max_coverage"] = sum(coverage) / len(coverage)
    out.mkdir(parents=True, exist_ok=True)
    io.write_json(out / RESULTS_FILE, summary)
    _write_report(out, summary, [r for r in results if r.frames])
    if args.json:
        print(json.dumps({k: v for k, v in summary.items() if k != "per_episode"}, indent=2))
    else:
        print(
            f"{args.policy} policy in {args.env}: success {rate.rate:.3f} "
            f"[{rate.low:.3f}, {rate.high:.3f}] ({rate.successes}/{rate.episodes}, "
            f"{summary['interval']}), return {summary['mean_return']:.3f}, length "
            f"{summary['mean_length']:.1f}, {summary['env_steps_per_second']:.0f} env steps/s, "
            f"policy {summary['policy_ms_per_call']:.2f} ms per call\nwrote {out}"
        )
    return 0


class _Timed:
    """The policy, with the time spent in ``act`` (inference, un-normalisation) counted."""

    def __init__(self, policy: Any) -> None:  # noqa: ANN401
        self.policy, self.seconds, self.calls, self.rows = policy, 0.0, 0, 0

    def reset(self, slot: int) -> None:
        self.policy.reset(slot)

    def act(self, observations, slots):  # noqa: ANN001, ANN201
        start = time.perf_counter()
        actions = self.policy.act(observations, slots)
        self.seconds += time.perf_counter() - start
        self.calls, self.rows = self.calls + 1, self.rows + len(slots)
        return actions


def _load(args: argparse.Namespace) -> Any:  # noqa: ANN401 - a TrainedPipeline or None
    if args.policy != "trained":
        return None
    if args.spec is None or args.checkpoint is None:
        raise SpecError(
            "--checkpoint",
            "a trained policy needs its SPEC and --checkpoint",
            hint="pass SPEC --checkpoint RUN, or --policy random / expert for a baseline",
        )
    from modalforge.pipeline import load_trained

    return load_trained(args.spec, args.checkpoint, list(args.overrides))


def _env_params(args: argparse.Namespace, trained: Any) -> dict[str, Any]:  # noqa: ANN401
    """The training demonstrations' environment parameters (a trained policy sees the images it
    was trained on), then each ``--env-param key=value``."""
    from modalforge_robotics.rollout.evaluate import policy_env_params

    return {**policy_env_params(trained, args.env), **parse_env_params(args.env_param)}


def parse_env_params(items: list[str]) -> dict[str, Any]:
    """``--env-param key=value`` items (values read as YAML: numbers, booleans, lists)."""
    import yaml

    params: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SpecError("--env-param", f"{item!r} is not key=value", hint="e.g. image_size=64")
        params[key] = yaml.safe_load(value)
    return params


def _instruction_pool(env: Any, args: argparse.Namespace) -> list[str]:  # noqa: ANN401
    """The instructions of the evaluated episodes (their reset observations)."""
    pool = {str(env.reset(seed=args.seed + i)[0].get("instruction")) for i in range(args.episodes)}
    if len(pool) < 2:
        raise SpecError(
            "--shuffle-instructions",
            f"{args.env} gives {len(pool)} distinct instruction(s) over these episodes",
            hint="shuffle instructions in an environment with several tasks (e.g. tabletop_*)",
        )
    return sorted(pool)


def _out_folder(args: argparse.Namespace) -> Path:
    if args.out:
        return Path(args.out)
    if args.checkpoint is None:
        raise ModalforgeError(
            "--out is needed for a baseline (there is no run folder to write into)",
            hint="pass --out DIR",
        )
    from modalforge_apps.cli.inference import run_folder

    run = run_folder(Path(args.checkpoint))
    tag = "_shuffled" if args.shuffle_instructions else ""
    return run / f"rollout_{args.env.replace('/', '_')}{tag}"


def _write_report(out: Path, summary: dict[str, Any], recorded: list) -> None:  # noqa: ANN001
    from modalforge import io
    from modalforge_apps.report import page_html
    from modalforge_apps.report.rollout import gif_grid, rollout_section

    gif = None
    if recorded:
        gif = gif_grid([r.frames for r in recorded], [r.success for r in recorded], out / GIF_FILE)
    low, high = summary["success_ci"]
    table = {
        "environment": f"{summary['env']} {summary['env_params'] or ''}".strip(),
        "policy": summary["policy"]
        + (f" ({summary['checkpoint']})" if summary["checkpoint"] else ""),
        "success rate": f"{summary['success_rate']:.3f} [{low:.3f}, {high:.3f}] "
        f"({summary['interval']}, {summary['episodes']} episodes)",
        "mean return": f"{summary['mean_return']:.3f}",
        "mean episode length": f"{summary['mean_length']:.1f}",
        "environment steps per second": f"{summary['env_steps_per_second']:.0f}",
        "policy time per call": f"{summary['policy_ms_per_call']:.2f} ms "
        f"(mean batch {summary['policy_mean_batch']:.1f})",
    }
    if "mean_max_coverage" in summary:
        table["mean max coverage (LeRobot)"] = f"{summary['mean_max_coverage']:.3f}"
    if summary["shuffled_instructions"]:
        table["instructions"] = "shuffled between episodes (ablation)"
    title = f"Rollout: {summary['policy']} policy in {summary['env']}"
    tiles = [(r.instruction or "", r.success) for r in recorded]
    section = rollout_section(gif, table, tiles=tiles)
    io.write_text(out / REPORT_FILE, page_html(title, section))
