"""Checkpoints as folders of safetensors plus a JSON state file; never unpickled.

Layout::

    <run>/checkpoints/latest.json          {"latest": "step_00000120", "best": ...}
    <run>/checkpoints/step_00000120/
        model.safetensors                   model state dict (+ loss params under ``loss.``)
        optimizer.safetensors               optimizer state tensors, ``<optimizer>.state.<i>.<key>``
        state.json                          format marker, step, schedulers, RNG, file hashes, ...

A folder is written to a temporary sibling and renamed when complete, so a crash mid-write never
damages an earlier checkpoint; ``latest.json`` is replaced atomically afterwards.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from torch import Tensor, nn

from modalforge.engine.checkpoint_files import (
    CHECKPOINTS_DIR,
    FORMAT,
    FORMAT_VERSION,
    INDEX_FORMAT,
    LATEST_FILE,
    MODEL_FILE,
    OPTIMIZER_FILE,
    STATE_FILE,
    read_state,
    resolve_checkpoint,
    sha256_file,
    verify_file,
)
from modalforge.engine.runtime import capture_rng_state, restore_rng_state
from modalforge.errors import CheckpointError
from modalforge.io import atomic_dir, write_json

LOSS_PREFIX = "loss."
_STEP_DIR = re.compile(r"^step_(\d+)$")
# Optimizer settings that describe the implementation, not the optimisation: kept from the live one.
_IMPL_KEYS = ("fused", "foreach", "capturable", "differentiable")
_MAX_LISTED = 10

__all__ = [
    "architecture_hash",
    "load_checkpoint",
    "model_tensors",
    "read_state",
    "resolve_checkpoint",
    "save_checkpoint",
    "step_dir_name",
]


def step_dir_name(step: int) -> str:
    return f"step_{step:08d}"


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "_orig_mod", model)  # torch.compile wrapper


def _expected_shapes(model: nn.Module, loss: nn.Module | None) -> dict[str, tuple[int, ...]]:
    shapes = {k: tuple(v.shape) for k, v in _unwrap(model).state_dict().items()}
    if loss is not None:
        for k, v in loss.state_dict().items():
            key = LOSS_PREFIX + k
            if key in shapes:
                raise ValueError(f"model state key {key!r} collides with the loss's {k!r}")
            shapes[key] = tuple(v.shape)
    return shapes


def model_tensors(model: nn.Module, loss: nn.Module | None = None) -> dict[str, Tensor]:
    """The tensors written to ``model.safetensors``: CPU copies, contiguous, no shared storage."""
    out = {k: _cpu_copy(v) for k, v in _unwrap(model).state_dict().items()}
    if loss is not None:
        for k, v in loss.state_dict().items():
            if LOSS_PREFIX + k in out:
                raise ValueError(f"model state key {LOSS_PREFIX + k!r} collides with the loss")
            out[LOSS_PREFIX + k] = _cpu_copy(v)
    return out


def _cpu_copy(t: Tensor) -> Tensor:
    return t.detach().to("cpu", copy=True).contiguous()


def architecture_hash(shapes: Mapping[str, tuple[int, ...]]) -> str:
    """SHA-256 over sorted ``name:shape`` pairs: equal iff the tensors line up."""
    text = ";".join(f"{k}:{'x'.join(map(str, shapes[k]))}" for k in sorted(shapes))
    return hashlib.sha256(text.encode()).hexdigest()


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Tensor):
        return obj.item() if obj.numel() == 1 else obj.tolist()
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)


def _flatten_optimizer(name: str, opt: torch.optim.Optimizer) -> tuple[dict[str, Tensor], dict]:
    sd = opt.state_dict()
    tensors: dict[str, Tensor] = {}
    other: dict[str, dict[str, Any]] = {}
    for idx, st in sd["state"].items():
        for key, value in st.items():
            if isinstance(value, Tensor):
                tensors[f"{name}.state.{idx}.{key}"] = _cpu_copy(value)
            else:
                other.setdefault(str(idx), {})[key] = _jsonable(value)
    meta = {"class": _class_name(opt), "param_groups": _jsonable(sd["param_groups"])}
    return tensors, {**meta, "state": other}


def _class_name(obj: object) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def model_class(model: nn.Module) -> str:
    """``module.QualName`` of the (unwrapped) model, recorded so that a checkpoint of one model
    type is refused by another by name, before any tensor comparison."""
    cls = type(_unwrap(model))
    return f"{cls.__module__}.{cls.__qualname__}"


def save_checkpoint(
    run_dir: str | Path,
    *,
    model: nn.Module,
    step: int,
    epoch: int,
    loss: nn.Module | None = None,
    optimizers: Mapping[str, torch.optim.Optimizer] | None = None,
    schedulers: Mapping[str, Any] | None = None,
    spec_name: str = "",
    best: Mapping[str, Any] | None = None,
    keep: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``<run_dir>/checkpoints/step_<step>/`` atomically, update ``latest.json``, rotate.

    ``best`` (``{"metric", "mode", "value", "step", "checkpoint"}``) is recorded, and the folder
    it names is never rotated away. ``keep`` newest step folders are kept (all when ``None``).
    Returns the checkpoint folder.
    """
    ckpt_root = Path(run_dir) / CHECKPOINTS_DIR
    ckpt_root.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(ckpt_root)
    name = step_dir_name(step)
    weights = model_tensors(model, loss)
    opt_tensors: dict[str, Tensor] = {}
    opt_meta: dict[str, Any] = {}
    for opt_name, opt in (optimizers or {}).items():
        tensors, meta = _flatten_optimizer(opt_name, opt)
        opt_tensors.update(tensors)
        opt_meta[opt_name] = meta
    state: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "step": int(step),
        "epoch": int(epoch),
        "spec_name": spec_name,
        "model_class": model_class(model),
        "architecture": {
            "sha256": architecture_hash({k: tuple(v.shape) for k, v in weights.items()}),
            "num_tensors": len(weights),
            "num_params": int(sum(v.numel() for v in weights.values())),
        },
        "optimizers": opt_meta,
        "schedulers": {k: _jsonable(s.state_dict()) for k, s in (schedulers or {}).items()},
        "rng": capture_rng_state(),
        "best": dict(best) if best else None,
        "trainer": _jsonable(dict(extra or {})),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "torch_version": torch.__version__,
    }
    target = ckpt_root / name
    with atomic_dir(target) as tmp:
        files = {}
        for fname, tensors in ((MODEL_FILE, weights), (OPTIMIZER_FILE, opt_tensors)):
            safetensors.torch.save_file(tensors, str(tmp / fname), metadata={"format": "pt"})
            files[fname] = sha256_file(tmp / fname)
        state["files"] = files
        write_json(tmp / STATE_FILE, state)
    best_name = best.get("checkpoint") if best else None
    write_json(
        ckpt_root / LATEST_FILE,
        {
            "format": INDEX_FORMAT,
            "format_version": FORMAT_VERSION,
            "latest": name,
            "step": int(step),
            "best": best_name,
        },
    )
    if keep is not None:
        _rotate(ckpt_root, keep, protect={name, best_name})
    return target


def _step_dirs(ckpt_root: Path) -> list[tuple[int, Path]]:
    found = []
    for p in ckpt_root.iterdir():
        m = _STEP_DIR.match(p.name)
        if m and p.is_dir():
            found.append((int(m.group(1)), p))
    return sorted(found)


def _rotate(ckpt_root: Path, keep: int, protect: set[str | None]) -> None:
    dirs = _step_dirs(ckpt_root)
    for _, p in dirs[: max(0, len(dirs) - keep)]:
        if p.name not in protect:
            shutil.rmtree(p, ignore_errors=True)


def _remove_stale_temps(ckpt_root: Path) -> None:
    """Temporary folders left by a process killed mid-write (``atomic_dir`` cleans the rest)."""
    for p in ckpt_root.glob(".step_*"):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)


def load_checkpoint(
    path: str | Path,
    *,
    model: nn.Module,
    loss: nn.Module | None = None,
    optimizers: Mapping[str, torch.optim.Optimizer] | None = None,
    schedulers: Mapping[str, Any] | None = None,
    restore_rng: bool = False,
) -> dict[str, Any]:
    """Restore weights (and optionally optimizer, scheduler and RNG state) in place.

    ``path`` may be a run folder, its ``checkpoints`` folder or a step folder. Returns the
    checkpoint's ``state.json`` contents plus ``"path"``. Raises :class:`CheckpointError` for a
    missing, foreign, corrupt or architecture-mismatched checkpoint.
    """
    folder = resolve_checkpoint(path)
    state = read_state(folder)
    written_by, wanted = state.get("model_class"), model_class(model)
    if written_by and written_by != wanted:
        raise CheckpointError(
            f"checkpoint {folder} holds a {written_by.rsplit('.', 1)[-1]} ({written_by}), but "
            f"this spec builds a {wanted.rsplit('.', 1)[-1]} ({wanted})",
            hint="use the spec that wrote this checkpoint (its run folder holds spec.yaml)",
        )
    model_file = folder / MODEL_FILE
    verify_file(model_file, state)
    _check_architecture(model_file, _expected_shapes(model, loss), ignore_loss=loss is None)
    weights = _load_tensors(model_file)
    model_keys = set(_unwrap(model).state_dict())
    model_sd = {k: v for k, v in weights.items() if k in model_keys}
    _unwrap(model).load_state_dict(model_sd, strict=True)
    if loss is not None:
        loss_sd = {
            k[len(LOSS_PREFIX) :]: v
            for k, v in weights.items()
            if k.startswith(LOSS_PREFIX) and k not in model_sd
        }
        loss.load_state_dict(loss_sd, strict=True)
    if optimizers:
        opt_file = folder / OPTIMIZER_FILE
        verify_file(opt_file, state)
        tensors = _load_tensors(opt_file)
        saved = state.get("optimizers") or {}
        for name, opt in optimizers.items():
            _load_optimizer(name, opt, saved, tensors, opt_file)
    for name, sched in (schedulers or {}).items():
        sd = (state.get("schedulers") or {}).get(name)
        if sd is None:
            raise CheckpointError(
                f"{folder / STATE_FILE} has no learning-rate schedule {name!r}",
                hint="resume with the same spec that wrote the checkpoint",
            )
        sched.load_state_dict(sd)
    if restore_rng and state.get("rng"):
        restore_rng_state(state["rng"])
    state["path"] = str(folder)
    return state


def _load_tensors(path: Path) -> dict[str, Tensor]:
    try:
        return safetensors.torch.load_file(str(path), device="cpu")
    except Exception as exc:  # noqa: BLE001 - the parser raises its own error types
        raise CheckpointError(
            f"{path} is corrupt or truncated and cannot be read ({exc})",
            hint="use an earlier checkpoint (see the step_* folders beside it) or retrain",
        ) from None


def _read_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    try:
        with safetensors.safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(
            f"{path} is corrupt or truncated and cannot be read ({exc})",
            hint="use an earlier checkpoint or retrain",
        ) from None


def _check_architecture(
    path: Path, expected: Mapping[str, tuple[int, ...]], *, ignore_loss: bool = False
) -> None:
    got = _read_shapes(path)
    if ignore_loss:  # weights-only loading without the loss module
        got = {k: v for k, v in got.items() if k in expected or not k.startswith(LOSS_PREFIX)}
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    mismatched = sorted(k for k in set(got) & set(expected) if got[k] != expected[k])
    if not (missing or unexpected or mismatched):
        return
    parts = []
    if missing:
        parts.append(
            f"{len(missing)} missing key(s) (in the model, not in the checkpoint): "
            + _listing(missing)
        )
    if unexpected:
        parts.append(
            f"{len(unexpected)} unexpected key(s) (in the checkpoint, not in the "
            "model): " + _listing(unexpected)
        )
    if mismatched:
        shown = [f"{k} checkpoint {got[k]} vs model {expected[k]}" for k in mismatched]
        parts.append(f"{len(mismatched)} shape mismatch(es): " + _listing(shown))
    raise CheckpointError(
        f"checkpoint {path} was written for a different model architecture:\n    "
        + "\n    ".join(parts),
        hint="use the spec that wrote this checkpoint (its run folder holds spec.yaml), "
        "or start a new run without --resume",
    )


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    return shown + (f", ... ({len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else "")


def _load_optimizer(
    name: str,
    opt: torch.optim.Optimizer,
    saved: Mapping[str, Any],
    tensors: Mapping[str, Tensor],
    opt_file: Path,
) -> None:
    meta = saved.get(name)
    if meta is None:
        have = ", ".join(repr(n) for n in saved) or "none"
        raise CheckpointError(
            f"{opt_file} has no state for optimizer {name!r} (it has: {have})",
            hint="resume with the same spec that wrote the checkpoint",
        )
    written, wanted = meta.get("class"), _class_name(opt)
    if written and written != wanted:
        raise CheckpointError(
            f"{opt_file}: optimizer {name!r} was {written.rsplit('.', 1)[-1]} ({written}), this "
            f"run's is {wanted.rsplit('.', 1)[-1]} ({wanted}); its state cannot continue another",
            hint="resume with the train.optimizer that wrote the checkpoint (its run folder "
            "holds spec.yaml), or start a new run without --resume",
        )
    live = opt.state_dict()["param_groups"]
    groups = meta["param_groups"]
    if len(groups) != len(live) or any(
        len(g["params"]) != len(lg["params"]) for g, lg in zip(groups, live, strict=False)
    ):
        raise CheckpointError(
            f"{opt_file}: optimizer {name!r} has parameter groups of sizes "
            f"{[len(g['params']) for g in groups]}, this model's are "
            f"{[len(g['params']) for g in live]}",
            hint="resume with the same model and trainable parameters that wrote the checkpoint",
        )
    merged = []
    for g, lg in zip(groups, live, strict=True):
        g = dict(g)
        for key in _IMPL_KEYS:
            if key in lg:
                g[key] = lg[key]
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
        merged.append(g)
    per_param: dict[int, dict[str, Any]] = {}
    prefix = f"{name}.state."
    for key, value in tensors.items():
        if key.startswith(prefix):
            idx, field = key[len(prefix) :].split(".", 1)
            per_param.setdefault(int(idx), {})[field] = value
    for idx, values in (meta.get("state") or {}).items():
        per_param.setdefault(int(idx), {}).update(values)
    opt.load_state_dict({"state": per_param, "param_groups": merged})
