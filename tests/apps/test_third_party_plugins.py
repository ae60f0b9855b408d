"""Third-party plugins load through entry points exactly like built-ins, and fail in isolation.

Throwaway distributions from tests/fixtures/plugins/ (see its README) are installed with
`pip --target` into a temporary folder (never into the project's environment) and exercised in
subprocesses that put that folder on PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.builtins import BUILTIN_PLUGINS

pytestmark = pytest.mark.slow  # installs packages and starts several Python processes

FIXTURES = Path(__file__).parents[1] / "fixtures" / "plugins"
THIRD_PARTY = ("mf_good", "mf_broken_import", "mf_broken_register", "mf_dup", "mf_lab")
BUILTINS = sorted(BUILTIN_PLUGINS)


class Env:
    """A folder with the fixture plugins installed, and a way to run Python against it."""

    def __init__(self, site: Path, work: Path) -> None:
        self.site = site
        self.work = work
        self.import_log = work / "imports.log"

    def run(self, args: list[str], plugins: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(self.site), os.environ.get("PYTHONPATH")])
            ),
            "MF_FIXTURE_IMPORT_LOG": str(self.import_log),
        }
        env.pop("MODALFORGE_PLUGINS", None)
        if plugins is not None:
            env["MODALFORGE_PLUGINS"] = plugins
        self.import_log.unlink(missing_ok=True)
        return subprocess.run(
            [sys.executable, *args],
            cwd=self.work,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def python(self, code: str, plugins: str | None = None) -> dict:
        """Run ``code`` (which prints one JSON object last) and return that object."""
        result = self.run(["-c", textwrap.dedent(code)], plugins)
        assert result.returncode == 0, result.stdout + result.stderr
        return json.loads(result.stdout.strip().splitlines()[-1])

    def imported(self) -> list[str]:
        return self.import_log.read_text().split() if self.import_log.exists() else []


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> Env:
    root = tmp_path_factory.mktemp("third_party")
    sources = []
    for folder in THIRD_PARTY:  # copy, so that builds leave nothing in the source tree
        sources.append(str(shutil.copytree(FIXTURES / folder, root / "src" / folder)))
    site = root / "site"
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
        str(site),
        *sources,
    ]
    result = subprocess.run(pip, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    work = root / "work"
    work.mkdir()
    return Env(site, work)


def plugin_rows(stdout: str) -> dict[str, list[str]]:
    """``modalforge plugins`` table rows by plugin name: [version, distribution, status, comps]."""
    rows = {}
    for line in stdout.splitlines():
        cells = line.split(maxsplit=4)
        if len(cells) >= 4 and cells[3] in ("ok", "FAILED"):
            rows[cells[0]] = cells[1:]
    return rows


def test_plugins_lists_good_and_broken_plugins(env):
    result = env.run(["-m", "modalforge", "plugins"])
    assert result.returncode == 0, result.stderr
    out = result.stdout
    rows = plugin_rows(out)

    assert rows["mf_good"][:3] == ["0.3.0", "mf-good-plugin", "ok"]
    assert "head:mf_scaled_head" in rows["mf_good"][3]
    for name in ("mf_broken_import", "mf_broken_register", "mf_dup"):
        assert rows[name][2] == "FAILED", out
    assert (
        "  error: import failed: RuntimeError: mf_broken_import needs the ACME_LICENSE "
        "environment variable" in out
    )
    assert (
        "  error: register_components raised: ValueError: calibration table mf_tables.csv is "
        "missing" in out
    )
    assert "  error: duplicate component: DuplicateComponentError: encoder 'mlp'" in out
    for name in BUILTINS:  # one broken plugin does not take anything else down
        assert rows[name][2] == "ok", out
    assert "Traceback" not in out


def test_failures_are_isolated_and_rolled_back(env):
    got = env.python(
        """
        import contextlib, io, json, warnings
        from modalforge.plugin import load_plugins, set_host
        from modalforge_apps.cli import main
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            host = load_plugins()
        set_host(host)  # the CLI lists this same load
        verbose = io.StringIO()
        with contextlib.redirect_stdout(verbose):
            main(["plugins", "--verbose"])
        reg = host.registry
        records = {r.name: r for r in host.records}
        print(json.dumps({
            "warnings": [str(w.message) for w in caught if w.category is RuntimeWarning],
            "mlp_provider": reg.get("encoder", "mlp").provider,
            "dup_error": records["mf_dup"].error,
            "rolled_back": [n for n in ("mf_half_head", "mf_dup_only_head") if ("head", n) in reg],
            "good": reg.get("head", "mf_scaled_head").provider,
            "verbose": verbose.getvalue(),
        }))
        """
    )
    assert len(got["warnings"]) == 1  # one warning for all failures, naming each
    for name in ("mf_broken_import", "mf_broken_register", "mf_dup"):
        assert name in got["warnings"][0]
    assert got["mlp_provider"] == "encoders"  # the built-in keeps its name
    assert "'encoders'" in got["dup_error"] and "'mf_dup'" in got["dup_error"]
    assert got["rolled_back"] == []  # a failing plugin leaves no partial registrations
    assert got["good"] == "mf_good"
    assert env.imported() == ["mf_broken_import"]  # it really was attempted (once per load)
    # `plugins --verbose` adds the real traceback, pointing into the plugin's own code.
    assert "Traceback" in got["verbose"]
    assert 'mf_broken_import/__init__.py", line 10' in got["verbose"]


def test_restricting_plugins_skips_the_others_entirely(env):
    allowed = "mf_good,datasets,encoders,heads,losses"
    result = env.run(["-m", "modalforge", "plugins"], plugins=allowed)
    assert result.returncode == 0, result.stderr
    assert set(plugin_rows(result.stdout)) == set(allowed.split(","))
    assert all(row[2] == "ok" for row in plugin_rows(result.stdout).values())
    assert "error:" not in result.stdout
    assert env.imported() == []  # the broken plugin was not even imported


def test_third_party_component_builds_trains_and_reloads(env):
    got = env.python(
        """
        import json
        import torch
        from modalforge.engine import evaluate, train
        from modalforge.pipeline import build_pipeline
        from modalforge.plugin import load_plugins
        from modalforge.spec import parse_spec

        host = load_plugins(warn=False)
        spec = parse_spec({
            "name": "third-party",
            "data": {
                "dataset": {"name": "synthetic", "params": {
                    "image2d_size": None, "tabular_features": 5, "lowdim_features": 3,
                    "num_samples": 48}},
                "batch_size": 16,
            },
            "model": {
                "encoders": {
                    "tabular": {"name": "mlp", "params": {"hidden_dims": [8], "out_dim": 8}},
                    "lowdim": {"name": "mlp", "params": {"hidden_dims": [8], "out_dim": 4}},
                },
                "fusion": "concat",
                "head": {"name": "mf_scaled_head", "params": {"scale": 3.0}},
            },
            "loss": "cross_entropy",
            "metrics": ["accuracy"],
            "train": {"epochs": 1, "max_steps": 2, "device": "cpu", "progress": False,
                      "tensorboard": False},
        })
        pipe = build_pipeline(spec, host.registry)
        head = pipe.model.head
        x = torch.randn(4, head.in_dim)
        scaled = torch.allclose(head(x), 3.0 * head.linear(x))
        result = train(pipe, "run")
        reloaded = evaluate(build_pipeline(spec, host.registry), "run")
        print(json.dumps({
            "head": type(head).__module__ + "." + type(head).__name__,
            "in_dim": head.in_dim, "outputs": head.linear.out_features, "scaled": scaled,
            "steps": result.steps, "metrics": result.metrics, "reloaded": reloaded,
        }))
        """
    )
    assert got["head"] == "mf_good_plugin.head.ScaledLinearHead"
    assert got["in_dim"] == 8 + 4  # sized by the pipeline: concat of the two encoders
    assert got["outputs"] == 3  # from the synthetic data set's target
    assert got["scaled"]
    assert got["steps"] == 2
    assert 0.0 <= got["metrics"]["accuracy"] <= 1.0
    # The checkpoint holds the third-party head's weights: reloading gives the same accuracy.
    assert got["reloaded"]["accuracy"] == pytest.approx(got["metrics"]["accuracy"])
    assert (env.work / "run" / "results.json").is_file()


def test_a_domain_plugin_uses_every_hook(env):
    rows = plugin_rows(env.run(["-m", "modalforge", "plugins"]).stdout)
    assert rows["mf_lab"][:3] == ["1.2.0", "mf-lab", "ok"]
    for entry in (
        "adapter:lab",
        "transform:lab_shift",
        "loader:semicolon_vector",
        "command:lab-hello",
        "preset:lab_fast",
        "recipe:lab_recipe.yaml",
    ):
        assert entry in rows["mf_lab"][3]

    hello = env.run(["-m", "modalforge", "lab-hello", "Ada", "--shout"])
    assert hello.returncode == 0, hello.stderr
    assert hello.stdout.strip() == "HELLO ADA FROM THE LAB"
    nobody = env.run(["-m", "modalforge", "lab-hello", "nobody"])
    assert nobody.returncode == 2 and "Traceback" not in nobody.stderr
    assert "error: lab-hello: there is nobody to greet\n  fix: name somebody" in nobody.stderr
    listed = env.run(["-m", "modalforge", "components", "adapter", "lab"])
    assert "readers: manifest, semicolon_vector" in listed.stdout
    assert "`domain: lab` starts a spec from:" in listed.stdout
    assert "not installed" not in listed.stdout

    rng = __import__("random").Random(0)
    lines = ["reading,label,batch"]
    for i in range(40):
        label = i % 2
        values = [rng.gauss(3.0 * label, 1.0) for _ in range(3)]
        lines.append(
            f"{';'.join(f'{v:.3f}' for v in values)},{'hot' if label else 'cold'},b{i // 4}"
        )
    (env.work / "readings.csv").write_text("\n".join(lines) + "\n")
    trained = env.run(["-m", "modalforge", "train", "recipe:lab_recipe", "--out", "lab_run"])
    assert trained.returncode == 0, trained.stderr
    spec = __import__("yaml").safe_load((env.work / "lab_run" / "spec.yaml").read_text())
    # domain defaults, then the preset over them, then the recipe's own values
    assert spec["model"]["encoders"]["reading"]["name"] == "mlp"
    assert spec["train"]["max_steps"] == 3 and spec["train"]["lr"] == 0.05
    assert spec["data"]["transforms"]["eval"]["reading"] == [{"name": "standardize", "params": {}}]
    json = __import__("json")
    run = env.work / "lab_run"
    results = json.loads((run / "results.json").read_text())
    assert set(results["metrics"]) >= {"accuracy", "macro_f1"}
    # the plugin's callback stopped the run after 2 of the preset's 3 steps
    assert results["steps"] == 2 and results["stopped"]["by"] == "lab_stop"
    assert (run / "lab_checkpoints.txt").read_text().split() == ["step_00000002"]
    notebook = [json.loads(x) for x in (run / "lab_notebook.jsonl").read_text().splitlines()]
    logged = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r["split"]) for r in notebook] == [(r["step"], r["split"]) for r in logged]
    assert (run / "lab_signed.txt").read_text() == "lab-recipe 2\n"  # the module-level run hook
    overridden = env.run(
        [
            "-m",
            "modalforge",
            "check",
            "recipe:lab_recipe",
            "domain.params.epochs=7",
            "train.max_steps=null",
        ]
    )
    assert overridden.returncode == 0, overridden.stderr
