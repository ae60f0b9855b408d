"""Finding and validating checkpoint folders on disk, with errors that say what a path really is."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from modalforge.errors import CheckpointError

FORMAT = "modalforge-checkpoint"
INDEX_FORMAT = "modalforge-checkpoint-index"
FORMAT_VERSION = 1
CHECKPOINTS_DIR = "checkpoints"
LATEST_FILE = "latest.json"
MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
STATE_FILE = "state.json"

_WHAT_TO_PASS = (
    "pass a run folder written by `modalforge train` (e.g. runs/<name>), its checkpoints/ folder, "
    "or one checkpoints/step_<N> folder"
)
_STEP_DIR = re.compile(r"^step_(\d+)$")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def resolve_checkpoint(path: str | Path) -> Path:
    """The step folder that ``path`` designates.

    Accepts a run folder (follows ``checkpoints/latest.json``), a checkpoints folder, a step folder,
    or a file inside a step folder (``state.json``, ``model.safetensors``).
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise CheckpointError(f"checkpoint {p} does not exist", hint=_WHAT_TO_PASS)
    if p.is_file():
        if p.name == LATEST_FILE:
            return _from_index(p)
        if p.name in (STATE_FILE, MODEL_FILE, OPTIMIZER_FILE) and (p.parent / STATE_FILE).is_file():
            return p.parent
        raise _foreign_file(p)
    if (p / STATE_FILE).is_file():
        return p
    if (p / LATEST_FILE).is_file():
        return _from_index(p / LATEST_FILE)
    steps = _step_dirs(p)
    if steps:
        return steps[-1]
    sub = p / CHECKPOINTS_DIR
    if sub.is_dir():
        if (sub / LATEST_FILE).is_file():
            return _from_index(sub / LATEST_FILE)
        steps = _step_dirs(sub)
        if steps:
            return steps[-1]
        raise CheckpointError(
            f"run folder {p} has no checkpoint yet ({sub} is empty)",
            hint="the run stopped before its first checkpoint; start it again without --resume",
        )
    raise CheckpointError(
        f"{p} is not a modalforge checkpoint: it has no {STATE_FILE}, {LATEST_FILE} or "
        f"{CHECKPOINTS_DIR}/ inside",
        hint=_WHAT_TO_PASS,
    )


def _step_dirs(folder: Path) -> list[Path]:
    found = []
    for child in folder.iterdir():
        m = _STEP_DIR.match(child.name)
        if m and (child / STATE_FILE).is_file():
            found.append((int(m.group(1)), child))
    return [p for _, p in sorted(found)]


def _from_index(index: Path) -> Path:
    data = _read_json(index)
    if not isinstance(data, dict) or data.get("format") != INDEX_FORMAT or "latest" not in data:
        raise CheckpointError(
            f'{index} is not a modalforge checkpoint index (no "format": "{INDEX_FORMAT}")',
            hint=_WHAT_TO_PASS,
        )
    target = index.parent / str(data["latest"])
    if not (target / STATE_FILE).is_file():
        steps = _step_dirs(index.parent)
        others = f"; present: {', '.join(s.name for s in steps)}" if steps else ""
        raise CheckpointError(
            f"{index} points to {target.name}, which is missing or incomplete{others}",
            hint="pass one of the step_<N> folders explicitly",
        )
    return target


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(
            f"{path} is corrupt: not valid JSON ({exc})",
            hint="use an earlier checkpoint (see the step_* folders beside it)",
        ) from None
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from None


def _foreign_file(p: Path) -> CheckpointError:
    """Explain what a file that is not a modalforge checkpoint looks like."""
    try:
        with open(p, "rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        return CheckpointError(f"cannot read {p}: {exc}")
    if head.startswith(b"PK\x03\x04"):
        what = "a zip archive, the format torch.save writes (a pickled PyTorch checkpoint)"
    elif head[:1] == b"\x80":
        what = "a Python pickle (a legacy torch.save file)"
    elif p.suffix == ".safetensors" or (len(head) >= 9 and head[8:9] == b"{"):
        what = "a bare safetensors file without the state.json a modalforge checkpoint has"
    elif head.lstrip()[:1] in (b"{", b"["):
        what = f'a JSON file without the "format": "{FORMAT}" marker'
    else:
        what = "a file of unknown format"
    hint = _WHAT_TO_PASS
    if "pickle" in what:
        hint += "; modalforge never unpickles checkpoints (loading a pickle can run arbitrary code)"
    return CheckpointError(f"{p} is not a modalforge checkpoint: it is {what}", hint=hint)


def read_state(folder: str | Path) -> dict[str, Any]:
    """The validated ``state.json`` of a step folder."""
    folder = Path(folder)
    path = folder / STATE_FILE
    if not path.is_file():
        raise CheckpointError(
            f"{folder} is not a modalforge checkpoint: {STATE_FILE} is missing", hint=_WHAT_TO_PASS
        )
    state = _read_json(path)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            f'{path} is not a modalforge checkpoint: it lacks the "format": "{FORMAT}" marker',
            hint=_WHAT_TO_PASS,
        )
    version = state.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {version!r}; this modalforge "
            f"reads up to {FORMAT_VERSION}",
            hint="upgrade modalforge to read this checkpoint",
        )
    for key, ok, want in (
        ("step", _count, "a whole number >= 0"),
        ("epoch", _count, "a whole number >= 0"),
        ("files", lambda v: isinstance(v, dict), "an object of file hashes"),
    ):
        if key not in state:
            raise CheckpointError(
                f"{path} is corrupt: field {key!r} is missing", hint="use an earlier checkpoint"
            )
        if not ok(state[key]):
            raise CheckpointError(
                f"{path} is corrupt: field {key!r} is {state[key]!r}, not {want}",
                hint="use an earlier checkpoint (state.json is written by modalforge; do not "
                "edit it)",
            )
    return state


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def verify_file(path: Path, state: dict[str, Any]) -> None:
    """Check that ``path`` exists and matches the SHA-256 recorded in ``state.json``."""
    expected = (state.get("files") or {}).get(path.name)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint is incomplete: {path} is missing",
            hint="use an earlier checkpoint (see the step_* folders beside it)",
        )
    if expected is None:
        raise CheckpointError(
            f"{path.parent / STATE_FILE} records no hash for {path.name}",
            hint="use an earlier checkpoint",
        )
    actual = sha256_file(path)
    if actual != expected:
        raise CheckpointError(
            f"{path} is truncated or corrupt: its SHA-256 does not match {STATE_FILE} "
            f"(expected {expected[:12]}..., found {actual[:12]}...)",
            hint="the file was damaged after it was written; use an earlier checkpoint "
            "(see the step_* folders beside it) or retrain",
        )
