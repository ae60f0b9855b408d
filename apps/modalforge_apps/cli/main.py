"""Argument parsing, dispatch and error handling for ``modalforge``.

User errors (:class:`modalforge.errors.ModalforgeError`) print one message and exit 2, with the
traceback only under ``--debug``. This module imports nothing heavy so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable, Sequence

from modalforge_apps import recipes

EXIT_USER_ERROR = 2

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modalforge",
        description="Assemble, train and evaluate multimodal pipelines from registered components.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("plugins", help="list installed plugins, their components and failures")
    p.add_argument("--verbose", "-v", action="store_true", help="show tracebacks of failures")
    p.set_defaults(handler=_lazy("modalforge_apps.cli.listing", "cmd_plugins"))

    p = sub.add_parser("components", help="list registered components and their parameters")
    p.add_argument("kind", nargs="?", help="encoder, fusion, head, loss, dataset, metric, ...")
    p.add_argument("name", nargs="?", help="show one component in detail")
    p.set_defaults(handler=_lazy("modalforge_apps.cli.listing", "cmd_components"))

    p = sub.add_parser("check", help="validate a spec and print the assembled pipeline")
    _spec_args(p)
    p.set_defaults(handler=_lazy("modalforge_apps.cli.run", "cmd_check"))

    p = sub.add_parser("train", help="train a pipeline from a spec")
    _spec_args(p)
    p.add_argument("--out", help="output folder (default: the spec's output_dir or runs/<name>)")
    p.add_argument("--resume", metavar="PATH", help="continue from a run folder or checkpoint")
    p.set_defaults(handler=_lazy("modalforge_apps.cli.run", "cmd_train"))

    p = sub.add_parser("eval", help="evaluate a checkpoint on a split of the spec's data")
    _spec_args(p)
    p.add_argument("--checkpoint", required=True, metavar="PATH", help="run folder or checkpoint")
    p.add_argument("--split", help="data split (default: the spec's data.eval_split)")
    p.add_argument("--output", metavar="FILE", help="also write the metrics as JSON here")
    p.add_argument(
        "--missing",
        action="append",
        metavar="MOD[,MOD]",
        help="withhold these modalities from every sample (missing-modality evaluation)",
    )
    p.set_defaults(handler=_lazy("modalforge_apps.cli.run", "cmd_eval"))

    p = sub.add_parser(
        "zeroshot", help="zero-shot classify a split: class-name prompts, or finding prompt pairs"
    )
    _spec_args(p)
    _inference_args(p)
    p.add_argument("--classes", metavar="A,B,C", help="class names in label order (default: data)")
    p.add_argument(
        "--templates", metavar="FILE", help="prompt templates, one per line with {} (default: data)"
    )
    pairs = p.add_argument_group(
        "prompt pairs", "multi-label findings (the default for a multi-label target, or --prompts)"
    )
    pairs.add_argument(
        "--prompts",
        metavar="FILE",
        help="YAML/JSON: FINDING: {positive: [...], negative: [...]} (default: data)",
    )
    pairs.add_argument(
        "--bootstrap", type=int, default=1000, metavar="N", help="resamples for 95%% CIs (1000)"
    )
    pairs.add_argument("--seed", type=int, default=0, metavar="N", help="bootstrap seed (0)")
    pairs.add_argument(
        "--threshold", type=float, default=0.5, metavar="P", help="called positive from P (0.5)"
    )
    pairs.add_argument(
        "--scale", type=float, default=1.0, metavar="S", help="similarity logit scale (1)"
    )
    pairs.add_argument(
        "--subset", metavar="COLUMN", help="also one table per value of this per-sample column"
    )
    p.add_argument("--batch-size", type=int, default=256, help="prompts per text batch")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--output", metavar="FILE", help="also write the results as JSON here")
    p.set_defaults(handler=_lazy("modalforge_apps.cli.zeroshot_cmd", "cmd_zeroshot"))

    p = sub.add_parser("retrieve", help="images for a text query, or captions for an image")
    _spec_args(p)
    _inference_args(p)
    query = p.add_mutually_exclusive_group(required=True)
    query.add_argument("--query", metavar="TEXT", help="text query: rank the split's images")
    query.add_argument("--query-image", metavar="PATH", help="image file: rank the captions")
    query.add_argument(
        "--query-index", type=int, metavar="N", help="sample N of the split: rank the captions"
    )
    p.add_argument("-k", type=int, default=5, help="number of results (default: 5)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(handler=_lazy("modalforge_apps.cli.retrieve_cmd", "cmd_retrieve"))

    p = sub.add_parser("embed", help="write a split's embeddings (safetensors) with ids and labels")
    _spec_args(p)
    p.add_argument("--checkpoint", required=True, metavar="PATH", help="run folder or checkpoint")
    p.add_argument("--split", help="data split (default: the spec's data.eval_split)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--modalities", metavar="A,B", help="modalities to embed (default: all)")
    p.add_argument(
        "--encoder-features",
        action="store_true",
        help="a contrastive model's encoder features before the projection (for linear probes), "
        "not its shared-space embeddings",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    p.set_defaults(handler=_lazy("modalforge_apps.cli.embed_cmd", "cmd_embed"))

    p = sub.add_parser(
        "rollout", help="run a policy in closed loop: success rate with its interval, GIF grid"
    )
    p.add_argument(
        "spec", nargs="?", type=spec_path, help="the policy's spec (YAML or recipe:NAME)"
    )
    p.add_argument("overrides", nargs="*", metavar="a.b.c=value", help="override spec fields")
    p.add_argument("--checkpoint", metavar="PATH", help="run folder or checkpoint of the policy")
    p.add_argument(
        "--env",
        required=True,
        help="tabletop_reach, tabletop_push, reacher (MuJoCo Reacher-v5), or a gymnasium id",
    )
    p.add_argument("--episodes", type=_positive_int, default=50, help="episodes (default: 50)")
    p.add_argument("--num-envs", type=_positive_int, default=4, help="parallel environments")
    p.add_argument("--seed", type=int, default=1000, help="episode i is reset with seed + i")
    p.add_argument(
        "--policy",
        choices=("trained", "random", "expert"),
        default="trained",
        help="the checkpoint's policy, or a baseline: uniform random actions, the scripted expert",
    )
    p.add_argument(
        "--execution",
        choices=("ensemble", "receding", "chunk"),
        default="ensemble",
        help="how action chunks run: temporal ensembling (ACT), first action each step, or the "
        "whole chunk open loop (default: ensemble)",
    )
    p.add_argument("--ensemble-m", type=float, default=0.01, help="ensembling weight exp(-m·i)")
    p.add_argument("--sample", action="store_true", help="sample actions (default: most likely)")
    p.add_argument(
        "--shuffle-instructions",
        action="store_true",
        help="give each episode another episode's instruction (does the policy follow language?)",
    )
    p.add_argument(
        "--env-param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment parameter, e.g. combinations=heldout (repeatable)",
    )
    p.add_argument("--record", type=int, default=8, help="episodes kept for the GIF (default: 8)")
    p.add_argument("--max-steps", type=_positive_int, help="cap on an episode's steps")
    p.add_argument(
        "--success",
        choices=("any", "final"),
        help="an episode succeeds when is_success holds at any step, or on its last step "
        "(default: the environment's rule; Reacher: final, others: any)",
    )
    p.add_argument("--interval", choices=("wilson", "beta"), default="wilson")
    p.add_argument("--out", metavar="DIR", help="output folder (default: <run>/rollout_<env>)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(handler=_lazy("modalforge_apps.cli.rollout_cmd", "cmd_rollout"))

    p = sub.add_parser(
        "collect", help="scripted-expert demonstrations → a robomimic HDF5 file or LeRobot folder"
    )
    p.add_argument("--env", required=True, help="tabletop_reach, tabletop_push or reacher")
    p.add_argument("--episodes", type=_positive_int, default=100, help="episodes (default: 100)")
    p.add_argument("--out", required=True, help="the .hdf5 file or LeRobot folder to write")
    p.add_argument("--format", choices=("robomimic", "lerobot"), default="robomimic")
    p.add_argument("--noise", type=float, default=0.3, help="Gaussian action noise (std)")
    p.add_argument("--seed", type=int, default=0, help="episode i is reset with seed + i")
    p.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        help="last episodes in robomimic's `valid` filter key (default: 0.1)",
    )
    p.add_argument(
        "--clean-labels",
        action="store_true",
        help="add the noise to the executed actions only and record the expert's own (DART)",
    )
    p.add_argument("--only-success", action="store_true", help="keep successful episodes only")
    p.add_argument("--fps", type=_positive_int, default=10, help="LeRobot frame rate")
    p.add_argument(
        "--env-param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment parameter, e.g. combinations=train (repeatable)",
    )
    p.set_defaults(handler=_lazy("modalforge_apps.cli.collect_cmd", "cmd_collect"))

    p = sub.add_parser("explain", help="saliency maps (Grad-CAM, occlusion) of a classifier")
    _spec_args(p)
    p.add_argument("--checkpoint", required=True, metavar="PATH", help="run folder or checkpoint")
    p.add_argument(
        "--sample",
        dest="samples",
        type=int,
        action="append",
        required=True,
        metavar="N",
        help="index of a sample in the split (repeatable)",
    )
    p.add_argument("--split", help="data split (default: the spec's data.eval_split)")
    p.add_argument(
        "--method", choices=["gradcam", "occlusion"], default="gradcam", help="default: gradcam"
    )
    p.add_argument("--modality", metavar="NAME", help="input to explain (default: the only image)")
    p.add_argument(
        "--class", dest="class_name", metavar="NAME", help="class to explain (default: predicted)"
    )
    p.add_argument("--layer", metavar="NAME", help="Grad-CAM layer of the encoder (default: last)")
    p.add_argument("--mask-size", type=int, metavar="N", help="occlusion patch size (default: 1/4)")
    p.add_argument("--out", metavar="DIR", help="output folder (default: <run folder>/explain)")
    p.set_defaults(handler=_lazy("modalforge_apps.cli.explain_cmd", "cmd_explain"))

    p = sub.add_parser(
        "demo", help="the main job: train a small CLIP on the built-in digits, evaluate, report"
    )
    p.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    p.add_argument("overrides", nargs="*", metavar="a.b.c=value", help="spec overrides")
    p.set_defaults(handler=_lazy("modalforge_apps.cli.run", "cmd_demo"))

    p = sub.add_parser("bench", help="run a grid of pipeline variants × seeds; rank and report")
    p.add_argument("grid", help="benchmark grid (YAML): base spec, axes, seeds")
    p.add_argument("--out", metavar="DIR", help="output folder (required unless --dry-run)")
    p.add_argument(
        "--executor",
        choices=["local", "ray"],
        default="local",
        help="where runs execute: local processes (default) or a Ray cluster (needs "
        "modalforge[ray]; one GPU per run where the cluster has GPUs)",
    )
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="local executor: parallel local processes (default 1)",
    )
    p.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="ray executor: cluster to join (HOST:PORT, ray://HOST:PORT or auto; "
        "default: start a local Ray instance)",
    )
    p.add_argument(
        "--ray-cpus-per-cell",
        type=float,
        metavar="N",
        help="ray executor: CPUs reserved per run, also its torch threads (default 1)",
    )
    p.add_argument(
        "--ray-gpus-per-cell",
        type=float,
        metavar="N",
        help="ray executor: GPUs per run (default: 1 if the cluster has GPUs, else 0)",
    )
    p.add_argument("--dry-run", action="store_true", help="validate and list the cells only")
    p.set_defaults(handler=_lazy("modalforge_apps.cli.bench_cmd", "cmd_bench"))

    p = sub.add_parser("generate", help="sample a trained generator; optionally rerank by CLIP")
    p.add_argument("spec", type=spec_path, help="generator pipeline spec (YAML, or recipe:NAME)")
    p.add_argument("prompts", nargs="+", metavar="PROMPT", help="text prompts, one row each")
    p.add_argument("--checkpoint", required=True, metavar="PATH", help="run folder or checkpoint")
    p.add_argument("-n", type=int, default=8, help="samples per prompt (default: 8)")
    p.add_argument("--out", required=True, metavar="FILE.png", help="image grid to write")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    p.add_argument(
        "--rerank", type=spec_path, metavar="SPEC", help="reranker's spec, e.g. a CLIP's spec"
    )
    p.add_argument("--rerank-checkpoint", metavar="PATH", help="the reranker's trained weights")
    p.add_argument("--reranker", default="clip", help="registered reranker (default: clip)")
    p.add_argument("--keep", type=int, help="with --rerank: best samples kept per prompt")
    p.add_argument("--temperature", type=float, help="sampling temperature (autoregressive)")
    p.add_argument("--top-k", type=int, help="sample among the k likeliest tokens")
    p.add_argument("--top-p", type=float, help="nucleus sampling: smallest set with mass p")
    p.add_argument("--guidance-scale", type=float, help="classifier-free guidance strength")
    p.add_argument("--steps", type=int, help="denoising steps (diffusion; default: the spec's)")
    p.add_argument("--eta", type=float, help="DDIM noise: 0 deterministic, 1 DDPM-like (diffusion)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="a.b.c=value",
        help="override a spec field (repeatable)",
    )
    p.set_defaults(handler=_lazy("modalforge_apps.cli.generate_cmd", "cmd_generate"))

    p = sub.add_parser(
        "genbench", help="train text-to-image generators and judge them with independent judges"
    )
    p.add_argument("config", help="generation benchmark (YAML): stages, generators, judge")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (reused on rerun)")
    p.set_defaults(handler=_lazy("modalforge_apps.cli.genbench_cmd", "cmd_genbench"))

    p = sub.add_parser("new-plugin", help="scaffold an installable plugin package")
    p.add_argument("name", help="Python package name of the plugin, e.g. my_plugin")
    p.add_argument("--dest", default=".", help="parent folder (default: current folder)")
    p.set_defaults(handler=_lazy("modalforge_apps.cli.scaffold_cmd", "cmd_new_plugin"))
    parser.epilog = "Installed plugins may add commands: `modalforge plugins` lists them."
    parser.set_defaults(subparsers=sub)
    return parser


def add_plugin_commands(parser: argparse.ArgumentParser) -> None:
    """Add the sub-commands of installed plugins (this loads the plugins, so it runs only when
    the command line names a command that is not built in)."""
    from modalforge.plugin import get_host

    sub = parser.get_default("subparsers")
    for command in get_host().extensions.commands.values():
        if command.name in sub.choices:
            warnings.warn(
                f"modalforge: plugin {command.provider!r} adds command {command.name!r}, which "
                "is a built-in command; the plugin's is ignored",
                RuntimeWarning,
                stacklevel=2,
            )
            continue
        p = sub.add_parser(command.name, help=f"{command.help} [plugin {command.provider}]")
        command.configure(p)
        p.set_defaults(handler=command.run)


def _named_command(argv: Sequence[str]) -> str | None:
    """The first argument that is not an option: the sub-command's name."""
    return next((a for a in argv if not a.startswith("-")), None)


def spec_path(value: str) -> str:
    """A spec argument: ``recipe:NAME`` is that recipe's file, anything else a path."""
    from modalforge.errors import ModalforgeError

    try:
        return recipes.resolve(value)
    except ModalforgeError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive whole number")
    return number


def _spec_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", type=spec_path, help="pipeline spec (YAML, or recipe:NAME)")
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="a.b.c=value",
        help="override spec fields, e.g. train.lr=1e-4",
    )


def _inference_args(p: argparse.ArgumentParser) -> None:
    """Checkpoint, split and modality options of the embedding-model commands."""
    p.add_argument("--checkpoint", required=True, metavar="PATH", help="run folder or checkpoint")
    p.add_argument("--split", help="data split (default: the spec's data.eval_split)")
    p.add_argument("--image-modality", metavar="NAME", help="default: the non-text modality")
    p.add_argument("--text-modality", metavar="NAME", help="default: the text modality")


def _lazy(module: str, func: str) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        import importlib

        return getattr(importlib.import_module(module), func)(args)

    return handler


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    text = str(message)
    if text.startswith("modalforge"):
        print(f"warning: {text}", file=sys.stderr)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    warnings.showwarning = _show_warning
    name = _named_command(argv)
    if name is not None and name not in parser.get_default("subparsers").choices:
        add_plugin_commands(parser)
    args, extra = parser.parse_known_args(argv)
    # overrides may come after options (`train spec.yaml --out d a.b=c`): argparse leaves them over
    stray = [a for a in extra if a.startswith("-") or "=" not in a]
    if stray or (extra and not hasattr(args, "overrides")):
        parser.error(f"unrecognized arguments: {' '.join(stray or extra)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return EXIT_USER_ERROR
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed: not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # noqa: BLE001 - the one place errors become exit codes
        from modalforge.errors import ModalforgeError

        if args.debug:
            raise
        if isinstance(exc, ModalforgeError):
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USER_ERROR
        print(
            f"internal error: {type(exc).__name__}: {exc}\n"
            "  this is a bug in modalforge or a plugin; rerun with --debug for the traceback",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
