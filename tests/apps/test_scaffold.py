"""`modalforge new-plugin`: the generated project is valid, installs, and its own tests pass."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from modalforge.errors import ModalforgeError
from modalforge_apps.cli import main
from modalforge_apps.scaffold import create_plugin
from modalforge_apps.scaffold.render import template_files

NAME = "mf_scaffold_probe"


def run(cmd: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **env}
    full_env.pop("MODALFORGE_PLUGINS", None)
    return subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return create_plugin(NAME, tmp_path_factory.mktemp("scaffold"))


@pytest.fixture(scope="module")
def site(project: Path, tmp_path_factory) -> Path:
    """The generated project installed into a temporary folder; the project's .venv is untouched."""
    target = tmp_path_factory.mktemp("site")
    pip = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "--disable-pip-version-check",
        "--target",
        str(target),
        str(project),
    ]
    result = run(pip, cwd=project)
    assert result.returncode == 0, result.stderr
    return target


def test_creates_the_documented_files(project):
    files = sorted(p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file())
    assert files == [
        ".gitignore",
        "README.md",
        f"{NAME}/__init__.py",
        f"{NAME}/encoder.py",
        "pyproject.toml",
        f"tests/test_{NAME}.py",
    ]
    pyproject = (project / "pyproject.toml").read_text()
    assert 'name = "mf-scaffold-probe"' in pyproject
    assert f'[project.entry-points.modalforge]\n{NAME} = "{NAME}"' in pyproject
    init = (project / NAME / "__init__.py").read_text()
    assert f'registry.encoder("{NAME}_mlp", MfScaffoldProbeMLP)' in init
    assert "pip install -e ." in (project / "README.md").read_text()


def test_every_placeholder_is_filled(project):
    assert any("{{" in text for _, text in template_files())  # the template does use them
    for path in project.rglob("*"):
        if path.is_file():
            assert not re.search(r"\{\{\w+\}\}", path.read_text()), path


def test_generated_code_is_lint_clean(project):
    for cmd in (["check", "--no-cache", "."], ["format", "--check", "--no-cache", "."]):
        result = run([sys.executable, "-m", "ruff", *cmd], cwd=project)
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_generated_tests_pass_after_install(project, site):
    result = run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        PYTHONPATH=str(site),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ passed in [\d.]+s", summary), summary  # no failures, no skips
    defined = (project / "tests" / f"test_{NAME}.py").read_text().count("\ndef test_")
    assert int(summary.split()[0]) == defined >= 6


@pytest.mark.parametrize(
    "name",
    [
        "My_Plugin",
        "my-plugin",
        "1plugin",
        "_private",
        "",
        "a b",
        "class",
        "json",
        "modalforge",
        "encoders",
    ],
)
def test_bad_names_raise(tmp_path, name):
    with pytest.raises(ModalforgeError, match="name"):
        create_plugin(name, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_name_shadowing_an_installed_package_raises(tmp_path):
    with pytest.raises(ModalforgeError, match="shadow"):
        create_plugin("torch", tmp_path)


def test_refuses_a_non_empty_target_and_keeps_it(tmp_path):
    (tmp_path / NAME).mkdir()
    (tmp_path / NAME / "notes.txt").write_text("mine")
    with pytest.raises(ModalforgeError, match="not empty"):
        create_plugin(NAME, tmp_path)
    assert [p.name for p in (tmp_path / NAME).iterdir()] == ["notes.txt"]


def test_fills_an_existing_empty_folder(tmp_path):
    (tmp_path / NAME).mkdir()
    assert create_plugin(NAME, tmp_path) == (tmp_path / NAME).resolve()
    assert (tmp_path / NAME / "pyproject.toml").is_file()


def test_cli_new_plugin(tmp_path, capsys):
    assert main(["new-plugin", NAME, "--dest", str(tmp_path)]) == 0
    assert (tmp_path / NAME / NAME / "encoder.py").is_file()
    assert main(["new-plugin", "Bad-Name", "--dest", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: plugin name 'Bad-Name'") and "Traceback" not in err
