"""Atomic writes: all or nothing, no temporary files left, ordinary permissions."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from modalforge import io


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_json_replaces_the_file_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "sub" / "results.json"
    io.write_json(target, {"a": 1})
    io.write_json(target, {"a": 2})
    assert target.read_text() == '{\n  "a": 2\n}\n'
    assert [p.name for p in target.parent.iterdir()] == ["results.json"]


def test_a_failed_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "model.bin"
    io.write_bytes(target, b"good")

    def half_then_fail(tmp: Path) -> None:
        tmp.write_bytes(b"ha")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        io.write_with(target, half_then_fail)
    assert target.read_bytes() == b"good"
    assert [p.name for p in tmp_path.iterdir()] == ["model.bin"]


def test_new_files_and_folders_get_the_umask_permissions_not_owner_only(tmp_path, umask_027):
    io.write_text(tmp_path / "report.html", "<html></html>")
    io.write_with(tmp_path / "w.safetensors", lambda p: p.write_bytes(b"x"))
    with io.atomic_dir(tmp_path / "checkpoint") as tmp:
        (tmp / "state.json").write_text("{}")
    assert _mode(tmp_path / "report.html") == 0o640  # 0o666 & ~0o027
    assert _mode(tmp_path / "w.safetensors") == 0o640
    assert _mode(tmp_path / "checkpoint") == 0o750  # 0o777 & ~0o027
    assert (tmp_path / "checkpoint" / "state.json").read_text() == "{}"


def test_replacing_keeps_the_existing_permissions(tmp_path, umask_027):
    target = tmp_path / "results.json"
    io.write_json(target, {})
    target.chmod(0o604)
    io.write_json(target, {"b": 1})
    assert _mode(target) == 0o604
    folder = tmp_path / "run"
    folder.mkdir(mode=0o700)
    with io.atomic_dir(folder) as tmp:
        (tmp / "x").write_text("1")
    assert _mode(folder) == 0o700 and (folder / "x").read_text() == "1"


def test_the_umask_is_read_without_changing_it(umask_027):
    assert io._umask() == 0o027
    assert io._umask() == 0o027


# ------------------------------------------------------------------ output paths
def test_an_output_file_cannot_be_a_folder_or_sit_under_a_file(tmp_path):
    from modalforge.errors import OutputError

    (tmp_path / "d").mkdir()
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match=r"^--output .*d is a folder; it must name a file"):
        io.check_output_file(tmp_path / "d", "--output")
    with pytest.raises(OutputError, match=r"f is a file, so no folder can be made inside it"):
        io.check_output_file(tmp_path / "f" / "a" / "m.json", "--output")
    assert (
        io.check_output_file(tmp_path / "new" / "m.json", "--output") == tmp_path / "new" / "m.json"
    )
    with pytest.raises(OutputError, match="is a folder"):  # the atomic writer checks too
        io.write_json(tmp_path / "d", {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "f"]  # no temporary left behind


def test_an_output_folder_never_replaces_a_file(tmp_path):
    from modalforge.errors import OutputError

    (tmp_path / "f").write_text("keep")
    with pytest.raises(OutputError, match=r"^out_dir .*f is an existing file; it must name a fold"):
        io.check_output_dir(tmp_path / "f", "out_dir")
    with pytest.raises(OutputError, match=r"out_dir=.*f_out"):  # a spec field's fix reads as one
        io.check_output_dir(tmp_path / "f", "out_dir")
    with pytest.raises(OutputError, match="is an existing file"):
        with io.atomic_dir(tmp_path / "f") as tmp:
            (tmp / "x").write_text("new")
    assert (tmp_path / "f").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_an_output_where_the_folder_is_not_writable(tmp_path, monkeypatch):
    from modalforge.errors import OutputError

    monkeypatch.setattr(io.os, "access", lambda path, mode: False)  # as root every path is
    with pytest.raises(OutputError, match=r"no permission to write in"):
        io.check_output_dir(tmp_path / "run", "--out")
