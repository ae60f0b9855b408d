"""Every command that writes refuses an output path it cannot use, before doing the work:
a file where a folder goes, a folder where a file goes, a parent that is a file."""

import pytest
import yaml

from modalforge_apps.cli import main
from tests.core.toy import toy_spec

pytestmark = pytest.mark.usefixtures("toy_host")


@pytest.fixture
def spec(toy_spec_file):
    return str(toy_spec_file)


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("keep me\n")
    return path


def _fails(argv, capsys, expected: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err, err
    assert "Traceback" not in err and "internal error" not in err
    return err


# Commands whose --out (or --dest) is a folder: an existing file there, or under it, is refused.
FOLDER_COMMANDS = {
    "train": lambda spec, out: ["train", spec, "--out", out],
    "embed": lambda spec, out: ["embed", spec, "--checkpoint", "nowhere", "--out", out],
    "embed --overwrite": lambda spec, out: [
        "embed", spec, "--checkpoint", "nowhere", "--out", out, "--overwrite"
    ],
    "demo": lambda spec, out: ["demo", "--out", out],
    "bench": lambda spec, out: ["bench", "grid.yaml", "--out", out],
    "genbench": lambda spec, out: ["genbench", "missing.yaml", "--out", out],
    "new-plugin": lambda spec, out: ["new-plugin", "my_plugin", "--dest", out],
}  # fmt: skip


@pytest.mark.parametrize("command", FOLDER_COMMANDS)
def test_an_existing_file_as_the_output_folder_is_refused_and_kept(
    command, spec, a_file, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "grid.yaml").write_text(
        yaml.safe_dump({"base": toy_spec(), "axes": {"model.fusion": ["concat"]}, "seeds": [0]})
    )
    argv = FOLDER_COMMANDS[command](spec, str(a_file))
    option = "--dest" if command == "new-plugin" else "--out"
    _fails(argv, capsys, f"{option} {a_file} is an existing file; it must name a folder")
    assert a_file.read_text() == "keep me\n"  # never replaced by a folder
    argv = FOLDER_COMMANDS[command](spec, str(a_file / "sub"))
    _fails(argv, capsys, f"{a_file} is a file, so no folder can be made inside it")
    assert not (tmp_path / "runs").exists()


def test_train_refuses_a_file_as_the_specs_output_dir(spec, a_file, capsys):
    _fails(["train", spec, f"output_dir={a_file}"], capsys, "output_dir")


# Commands whose output is one file: an existing folder there, or a parent that is a file.
FILE_COMMANDS = {
    "eval --output": lambda spec, out: ["eval", spec, "--checkpoint", "nowhere", "--output", out],
    "zeroshot --output": lambda spec, out: [
        "zeroshot", spec, "--checkpoint", "nowhere", "--output", out
    ],
    "generate --out": lambda spec, out: [
        "generate", spec, "a prompt", "--checkpoint", "nowhere", "--out", out
    ],
}  # fmt: skip


@pytest.mark.parametrize("command", FILE_COMMANDS)
def test_a_folder_as_the_output_file_is_refused_before_the_work(
    command, spec, a_file, tmp_path, capsys
):
    folder = tmp_path / ("grid.png" if "generate" in command else "metrics.json")
    folder.mkdir()
    option = command.split()[1]
    _fails(FILE_COMMANDS[command](spec, str(folder)), capsys, f"{option} {folder} is a folder")
    # "nowhere" is no checkpoint: refusing the path first shows nothing was loaded or computed
    _fails(FILE_COMMANDS[command](spec, str(a_file / "x.png")), capsys, "is a file, so no folder")


def test_a_missing_parent_folder_of_an_output_file_is_created(spec, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", spec, "--out", str(run)]) == 0
    out = tmp_path / "new" / "deeper" / "metrics.json"
    assert main(["eval", spec, "--checkpoint", str(run), "--output", str(out)]) == 0
    assert out.is_file() and "accuracy" in out.read_text()


def test_generate_refuses_a_folder_where_its_json_record_goes(spec, tmp_path, capsys):
    (tmp_path / "grid.json").mkdir()
    argv = ["generate", spec, "a 3", "--checkpoint", "nowhere"]
    _fails([*argv, "--out", str(tmp_path / "grid.png")], capsys, "grid.json, which is a folder")
    assert not (tmp_path / "grid.png").exists()
