"""The demo recipe end to end: spec → registry → engine on the real built-in plugins."""

import json

import pytest

from modalforge.plugin import set_host
from modalforge_apps.cli import main


@pytest.mark.slow
def test_demo_reaches_target_and_rerun_keeps_previous(tmp_path, capsys):
    set_host(None)  # the real installed plugins
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "train.progress=false"]) == 0
    printed = capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    accuracy = results["metrics"]["accuracy"]
    assert accuracy >= 0.95
    assert f"held-out accuracy: {accuracy:.4f}" in printed

    # a second run keeps the first as <out>.previous; one epoch is enough to show it
    assert main(["demo", "--out", str(out), "train.progress=false", "train.epochs=1"]) == 0
    previous = json.loads((tmp_path / "demo.previous" / "results.json").read_text())
    assert previous["metrics"]["accuracy"] == accuracy
    assert json.loads((out / "results.json").read_text())["epochs"] == 1


def test_demo_refuses_foreign_folder(tmp_path, capsys):
    (tmp_path / "precious.txt").write_text("keep me")
    assert main(["demo", "--out", str(tmp_path)]) == 2
    assert "not an earlier demo run" in capsys.readouterr().err
    assert (tmp_path / "precious.txt").read_text() == "keep me"
