"""Atomic file writes: write to a temporary file in the same folder, fsync, then rename.

A crash or a full disk mid-write leaves the previous file intact, never a half-written one. The
result gets the permissions a plain ``open(path, "w")`` or ``mkdir`` would give (those of the file
it replaces, else the process umask's), not the owner-only ones of a temporary file, so that
colleagues sharing a run folder can read its checkpoints and reports.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from modalforge.errors import OutputError


def check_output_file(path: str | Path, option: str) -> Path:
    """``path`` if a file can be written there: not an existing folder, no parent that is a file
    (missing parent folders are created when writing). Else an :class:`OutputError` naming
    ``option`` (e.g. ``--output``); call it before the work whose result goes there."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(
            f"{option} {path} is a folder; it must name a file",
            hint=f"pass a file path, e.g. {_arg(option, path / _example_name(option))}",
        )
    _check_parents(path, option)
    return path


def check_output_dir(path: str | Path, option: str) -> Path:
    """``path`` if it is, or can become, a folder: not an existing file, no parent that is a
    file. Else an :class:`OutputError` naming ``option`` (e.g. ``--out``)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(
            f"{option} {path} is an existing file; it must name a folder",
            hint=f"pass a folder path (e.g. {_arg(option, path.with_name(path.name + '_out'))}), "
            "or remove the file",
        )
    _check_parents(path, option)
    return path


def _check_parents(path: Path, option: str) -> None:
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(
                    f"{option} {path}: {parent} is a file, so no folder can be made inside it",
                    hint=f"choose a path outside {parent}",
                )
            if not os.access(parent, os.W_OK | os.X_OK):
                raise OutputError(
                    f"{option} {path}: no permission to write in {parent}",
                    hint="choose a folder you can write to",
                )
            return


def _arg(option: str, path: Path) -> str:
    """``--out PATH`` for a command-line option, ``output_dir=PATH`` for a spec field."""
    return f"{option} {path}" if option.startswith("-") else f"{option}={path}"


def _example_name(option: str) -> str:
    return "grid.png" if option == "--out" else "results.json"


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        _check_parents(path, "output")
        raise


@contextmanager
def atomic_path(path: str | Path, *, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    An existing folder at ``path``, or a file where a parent folder should be, is an
    :class:`OutputError` (raised before anything is written)."""
    path = Path(path)
    check_output_file(path, "output")
    _make_parent(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        _fsync(tmp_path)
        if tmp_path.exists():
            os.chmod(tmp_path, _mode_for(path, 0o666))
        os.replace(tmp_path, path)
        _fsync_dir(path.parent)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any, *, indent: int | None = 2) -> None:
    write_text(path, json.dumps(obj, indent=indent, sort_keys=False, default=str) + "\n")


def write_with(path: str | Path, writer: Callable[[Path], None]) -> None:
    """Atomically produce ``path`` with a writer that takes a file path (e.g. safetensors)."""
    with atomic_path(path, suffix=Path(path).suffix) as tmp:
        writer(tmp)


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it is renamed to ``path``.

    An existing ``path`` is replaced only after the new folder is complete; an existing *file*
    at ``path`` is an :class:`OutputError` (a folder never silently replaces a file).
    """
    path = Path(path)
    check_output_dir(path, "output")
    _make_parent(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        for f in tmp.iterdir():
            _fsync(f)
        os.chmod(tmp, _mode_for(path, 0o777))
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def append_line(path: str | Path, line: str) -> None:
    """Append one line and flush it to disk (JSONL logs: a crash loses at most this line)."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line.rstrip("\n") + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _mode_for(path: Path, full: int) -> int:
    """The permission bits of ``path`` if it exists, else ``full`` less the process umask."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return full & ~_umask()


def _umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: read by setting, then restore at once
    os.umask(mask)
    return mask


def _fsync(path: Path) -> None:
    if path.is_file():
        with open(path, "rb") as fh:
            os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
