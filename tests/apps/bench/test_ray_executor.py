"""``modalforge bench --executor ray``: same records, failure isolation and resume as locally."""

import json
import sys

import pytest

from modalforge_apps.bench import RESULTS_FILE, load_grid, run_bench
from modalforge_apps.bench.executors import SequentialExecutor, per_run_resources
from modalforge_apps.cli import main
from tests.apps.bench.test_bench import _grid, _lines, _registry, host  # noqa: F401

# What a run measures about its machine and moment rather than about training.
VOLATILE = {
    "time",
    "run_seconds",
    "train_seconds",
    "train_samples_per_s",
    "infer_samples_per_s",
    "peak_mem_mb",
}


def _stable(rec: dict) -> dict:
    return {k: v for k, v in rec.items() if k not in VOLATILE}


def _by_run(out) -> dict[str, dict]:  # noqa: ANN001
    return {r["run_id"]: r for r in _lines(out)}


@pytest.mark.slow
def test_ray_runs_match_local_runs_failures_isolated_and_resume(tmp_path):
    ray = pytest.importorskip("ray")
    from modalforge_apps.bench.executors import RayExecutor

    loaded = load_grid(_grid(tmp_path, axes={"model.fusion": ["concat", "exploding"]}))
    quiet = {"log": lambda _: None}
    local = run_bench(
        loaded, tmp_path / "local", registry=_registry(), executor=SequentialExecutor(), **quiet
    )
    assert (local.ok, local.failed) == (2, 2)

    out = tmp_path / "ray"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        executor = RayExecutor(registry_factory=_registry, **quiet)
        summary = run_bench(loaded, out, registry=_registry(), executor=executor, **quiet)
        assert executor.resources == {"num_cpus": 1.0, "num_gpus": 0.0}  # no GPU here
        assert (summary.ran, summary.ok, summary.failed) == (4, 2, 2)
        first = _by_run(out)
        assert first.keys() == _by_run(tmp_path / "local").keys()
        for run_id, rec in _by_run(tmp_path / "local").items():
            # training on CPU is deterministic: a Ray worker gets the very same metrics
            assert _stable(first[run_id]) == _stable(rec), run_id
        failed = [r for r in first.values() if r["status"] == "failed"]
        assert {r["overrides"]["model.fusion"] for r in failed} == {"exploding"}
        assert all("boom in forward" in r["error"]["message"] for r in failed)
        assert all(0 <= r["metrics"]["accuracy"] <= 1 for r in first.values() if "metrics" in r)

        # resume: one ok run's line lost; only it and the failed runs are run again, and
        # the earlier lines stay as they were
        lines = (out / RESULTS_FILE).read_text().splitlines()
        lost = next(i for i, line in enumerate(lines) if json.loads(line)["status"] == "ok")
        kept = lines[:lost] + lines[lost + 1 :]
        (out / RESULTS_FILE).write_text("".join(line + "\n" for line in kept))
        executor = RayExecutor(registry_factory=_registry, **quiet)
        again = run_bench(loaded, out, registry=_registry(), executor=executor, **quiet)
        assert ray.is_initialized()  # not started by the executor: left running
    finally:
        ray.shutdown()
    assert (again.resumed, again.ran, again.ok, again.failed) == (1, 3, 1, 2)
    now = (out / RESULTS_FILE).read_text().splitlines()
    assert now[: len(kept)] == kept
    rerun = {r["run_id"]: r for r in map(json.loads, now[len(kept) :])}
    lost_id = json.loads(lines[lost])["run_id"]
    assert _stable(rerun[lost_id]) == _stable(first[lost_id])


class FakeRay:
    """Enough of the ``ray`` module to drive :class:`RayExecutor` in-process, without Ray."""

    def __init__(self, resources: dict, crash: str | None = None) -> None:
        self.resources, self.crash = resources, crash
        self.calls: list = []
        self.metas: dict = {}
        self.up = False

    def is_initialized(self) -> bool:
        return self.up

    def init(self, **kwargs) -> None:
        self.calls.append(("init", kwargs))
        self.up = True

    def shutdown(self) -> None:
        self.calls.append(("shutdown",))
        self.up = False

    def cluster_resources(self) -> dict:
        return self.resources

    def remote(self, fn):
        fake = self

        class Task:
            def options(self, **kwargs):
                fake.calls.append(("options", kwargs))
                return self

            def remote(self, meta, spec_dict, run_dir, threads, factory):
                fake.calls.append(("task", meta["run_id"], threads))
                fake.metas[meta["run_id"]] = meta
                return meta["run_id"]  # the object ref

        return Task()

    def wait(self, refs, num_returns):
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref):
        if ref == self.crash:
            raise ConnectionError("worker died\nmore lines")
        return {**self.metas[ref], "status": "ok", "metrics": {"accuracy": 1.0}}

    def cancel(self, ref, force=False):
        self.calls.append(("cancel", ref))


def _fake_jobs(n: int) -> list:
    from modalforge_apps.bench.executors import Job

    return [Job({"run_id": f"r{i}", "label": "x"}, {}, f"/tmp/r{i}") for i in range(n)]


def test_executor_starts_and_stops_its_own_ray_and_records_a_dead_worker(monkeypatch):
    from modalforge_apps.bench.executors import RayExecutor

    fake = FakeRay({"CPU": 8.0, "GPU": 2.0}, crash="r1")
    monkeypatch.setitem(sys.modules, "ray", fake)
    logs, done = [], []
    RayExecutor(num_cpus=2, init_num_cpus=4, log=logs.append).run(
        _fake_jobs(3), done.append, registry=None
    )
    assert fake.calls[0] == ("init", {"include_dashboard": False, "num_cpus": 4})
    assert fake.calls[1] == ("options", {"num_cpus": 2.0, "num_gpus": 1.0, "max_retries": 1})
    assert [c[2] for c in fake.calls if c[0] == "task"] == [2, 2, 2]  # torch threads = CPUs
    assert fake.calls[-1] == ("shutdown",) and not fake.up
    assert "cluster of 8 CPU(s), 2 GPU(s); each run takes 2 CPU(s), 1 GPU(s)" in logs[0]
    assert [r["status"] for r in done] == ["ok", "failed", "ok"]
    assert done[1]["error"] == {
        "type": "ConnectionError",
        "message": "worker died",
        "where": "ray worker",
    }
    assert done[1]["run_id"] == "r1" and done[1]["label"] == "x"


def test_executor_joins_a_cluster_or_uses_a_running_ray(monkeypatch):
    from modalforge_apps.bench.executors import RayExecutor

    fake = FakeRay({"CPU": 1.0})
    monkeypatch.setitem(sys.modules, "ray", fake)
    logs = []
    executor = RayExecutor("10.0.0.1:6379", num_cpus=4, log=logs.append)
    executor.run([], print, registry=None)
    assert fake.calls == []  # nothing to do: Ray is not even started
    executor.run(_fake_jobs(1), lambda rec: None, registry=None)
    assert fake.calls[0] == ("init", {"include_dashboard": False, "address": "10.0.0.1:6379"})
    # we connected, so we disconnect (ray.shutdown in a driver that joined a cluster leaves
    # the cluster running)
    assert fake.calls[-1] == ("shutdown",)
    assert "no node can take a run yet" in logs[1]  # 4 CPUs asked, 1 in the cluster

    fake = FakeRay({"CPU": 4.0})
    fake.up = True  # already initialised in this process: used as is, left running
    monkeypatch.setitem(sys.modules, "ray", fake)
    RayExecutor(log=lambda _: None).run(_fake_jobs(1), lambda rec: None, registry=None)
    assert [c[0] for c in fake.calls] == ["options", "task"] and fake.up


def test_missing_ray_is_a_clear_error_before_anything_runs(host, tmp_path, monkeypatch, capsys):  # noqa: F811
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    out = tmp_path / "out"
    assert main(["bench", str(_grid(tmp_path)), "--out", str(out), "--executor", "ray"]) == 2
    err = capsys.readouterr().err
    assert "--executor ray needs the optional package 'ray'" in err
    assert "pip install 'modalforge[ray]'" in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--ray-address", "auto"], "--ray-address only apply to the Ray executor"),
        (["--executor", "ray", "--workers", "2"], "--workers is for the local executor"),
    ],
)
def test_executor_options_must_match(host, tmp_path, capsys, args, expected):  # noqa: F811
    out = tmp_path / "out"
    assert main(["bench", str(_grid(tmp_path)), "--out", str(out), *args]) == 2
    assert expected in capsys.readouterr().err
    assert not out.exists()


def test_cli_passes_ray_options_to_the_executor(host, tmp_path, monkeypatch):  # noqa: F811
    from modalforge_apps.bench import executors

    made = {}

    class FakeRayExecutor:
        def __init__(self, address=None, **kwargs):
            made.update(address=address, **kwargs)

        def run(self, jobs, on_done, *, registry):
            made["jobs"] = [job.run_id for job in jobs]

    monkeypatch.setattr(executors, "RayExecutor", FakeRayExecutor)
    path = _grid(tmp_path, axes={"train.lr": [0.1, 0.2]}, seeds=[3])
    argv = ["bench", str(path), "--out", str(tmp_path / "out"), "--executor", "ray"]
    argv += ["--ray-address", "10.0.0.1:6379", "--ray-cpus-per-cell", "2"]
    assert main(argv) == 0
    cells = load_grid(path).cells
    assert made == {
        "address": "10.0.0.1:6379",
        "num_cpus": 2.0,
        "num_gpus": None,
        "jobs": [c.run_id(3) for c in cells],
    }


@pytest.mark.parametrize(
    ("cluster", "gpus", "expected"),
    [
        ({"CPU": 16.0, "GPU": 1.0}, None, {"num_cpus": 1.0, "num_gpus": 1.0}),
        ({"CPU": 16.0}, None, {"num_cpus": 1.0, "num_gpus": 0.0}),
        ({"CPU": 16.0, "GPU": 8.0}, 0.5, {"num_cpus": 1.0, "num_gpus": 0.5}),
    ],
)
def test_one_gpu_per_run_where_the_cluster_has_gpus(cluster, gpus, expected):
    assert per_run_resources(cluster, 1, gpus) == expected


def test_unreachable_cluster_is_a_user_error(monkeypatch):
    from modalforge_apps.bench.executors import ExecutorError, RayExecutor

    fake = FakeRay({})

    def refuse(**kwargs):
        raise ConnectionError("could not find any running Ray instance")

    fake.init = refuse
    monkeypatch.setitem(sys.modules, "ray", fake)
    with pytest.raises(ExecutorError) as err:
        RayExecutor("10.0.0.9:6379").run(_fake_jobs(1), print, registry=None)
    assert "could not connect to the Ray cluster at '10.0.0.9:6379'" in str(err.value)
    assert "check --ray-address" in str(err.value)
