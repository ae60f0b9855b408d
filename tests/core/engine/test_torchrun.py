"""``torchrun --nproc_per_node 2 -m modalforge train`` on CPU: one writer, single-process result.

Two processes with ``batch_size: B`` see, step by step, the same global batches as one process
with ``batch_size: 2B`` (the epoch sampler hands out strided slices of the same permutation), and
the ``clip`` loss gathers embeddings with gradients, so both runs follow the same trajectory; only
the order of floating-point sums differs (DDP averages two half-batch gradients where one process
takes one mean), hence a tolerance instead of exact equality.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import safetensors.torch
import torch
import yaml

REPO = Path(__file__).resolve().parents[3]
TORCHRUN = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
TRAIN = {
    "epochs": 2,
    "lr": 0.01,
    "grad_accum_steps": 2,
    "device": "cpu",
    "progress": False,
    "tensorboard": False,
    "log_every_steps": 1,
}
# 40 samples: 30 train (15 per process: micro-batches 4, 4, 4, 3), 10 test.
DATA = {
    "dataset": {
        "name": "synthetic",
        "params": {"num_samples": 40, "image2d_size": 8, "tabular_features": 5},
    },
    "batch_size": 4,
    "eval_batch_size": 10,  # the contrastive eval loss depends on the batch: one batch in both
}
ENCODERS = {  # deterministic: no dropout, no batch statistics
    "image": {"name": "cnn", "params": {"widths": [4, 8], "norm": "group"}},
    "tabular": {"name": "mlp", "params": {"hidden_dims": [16], "out_dim": 8}},
}
SUPERVISED = {
    "name": "ddp-supervised",
    "seed": 0,
    "data": DATA,
    "model": {"encoders": ENCODERS, "fusion": "concat", "head": "classification"},
    "loss": "cross_entropy",
    "metrics": ["accuracy"],
    "train": TRAIN,
}
CONTRASTIVE = {
    "name": "ddp-contrastive",
    "seed": 0,
    "data": DATA,
    "model": {"type": "contrastive", "embed_dim": 8, "encoders": ENCODERS},
    "loss": {"name": "clip", "params": {"pair": ["image", "tabular"]}},
    "metrics": [],
    "train": TRAIN,
}
# The engine API under torchrun, as the CLI's `train` calls it.
# A freed group's gloo threads end asynchronously, so they get a few seconds; a group that is
# still referenced keeps them for good.
SCRIPT = """
import os, sys, time
from modalforge.engine import seed_everything, train
from modalforge.pipeline import build_pipeline
from modalforge.spec import load_spec

spec = load_spec(sys.argv[1], sys.argv[3:])
seed_everything(spec.seed)
train(build_pipeline(spec), sys.argv[2])
tasks = "/proc/self/task"
if os.path.isdir(tasks):  # the process group's threads are gone (see Trainer.close())
    deadline = time.monotonic() + 10
    while True:
        names = []
        for t in os.listdir(tasks):
            try:
                names.append(open(f"{tasks}/{t}/comm").read().strip())
            except FileNotFoundError:  # the thread ended while listing
                pass
        if not any("gloo" in n for n in names) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    print("threads after train:", names)
"""


def _run(args: list[str]) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    env.pop("MODALFORGE_PLUGINS", None)
    done = subprocess.run(
        [sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:  # a worker's own error sits above torchrun's summary
        pytest.fail(done.stderr[-6000:])
    return done.stdout


def _final_weights(run: Path) -> dict[str, torch.Tensor]:
    latest = json.loads((run / "checkpoints" / "latest.json").read_text())["latest"]
    return safetensors.torch.load_file(run / "checkpoints" / latest / "model.safetensors")


def _train_log(run: Path) -> list[dict]:
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in lines if r["split"] == "train"]


def _check_same_run(ddp: Path, single: Path) -> dict[str, torch.Tensor]:
    """One writer (files as a single run), same steps, same final weights and eval numbers."""
    assert sorted(p.name for p in ddp.iterdir()) == sorted(p.name for p in single.iterdir())
    results = json.loads((ddp / "results.json").read_text())
    expected = json.loads((single / "results.json").read_text())
    assert results["steps"] == expected["steps"] == 4
    logged = [_train_log(run) for run in (ddp, single)]
    assert [r["step"] for r in logged[0]] == [1, 2, 3, 4]  # one line per step: process 0 logs
    for mine, theirs in zip(*logged, strict=True):  # means over both processes are logged
        assert mine["loss"] == pytest.approx(theirs["loss"], rel=1e-4)
    steps = sorted(p.name for p in (ddp / "checkpoints").iterdir() if p.name.startswith("step_"))
    assert steps == ["step_00000002", "step_00000004"]
    state = json.loads((ddp / "checkpoints" / steps[-1] / "state.json").read_text())
    assert state["trainer"]["world_size"] == 2 and len(state["trainer"]["rng_ranks"]) == 2

    mine, theirs = _final_weights(ddp), _final_weights(single)
    assert mine.keys() == theirs.keys()
    for key in mine:
        torch.testing.assert_close(mine[key], theirs[key], rtol=1e-4, atol=1e-5, msg=key)
    assert results["metrics"].keys() == expected["metrics"].keys()
    for key, value in expected["metrics"].items():
        assert results["metrics"][key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
    return mine


@pytest.mark.slow
def test_torchrun_cli_trains_like_one_process_with_the_doubled_batch(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(SUPERVISED))
    ddp, single = tmp_path / "ddp", tmp_path / "single"
    _run([*TORCHRUN, "-m", "modalforge", "train", str(spec), "--out", str(ddp)])
    _run(["-m", "modalforge", "train", str(spec), "data.batch_size=8", "--out", str(single)])
    _check_same_run(ddp, single)


@pytest.mark.slow
def test_torchrun_contrastive_clip_run_averages_the_loss_scale_too(tmp_path):
    spec, script = tmp_path / "spec.yaml", tmp_path / "train.py"
    spec.write_text(yaml.safe_dump(CONTRASTIVE))
    script.write_text(SCRIPT)
    ddp, single = tmp_path / "ddp", tmp_path / "single"
    out = _run([*TORCHRUN, str(script), str(spec), str(ddp)])
    _run([str(script), str(spec), str(single), "data.batch_size=8"])
    if os.path.isdir("/proc/self/task"):  # both processes report; gloo threads would abort
        assert out.count("threads after train") == 2 and "gloo" not in out, out
    weights = _check_same_run(ddp, single)
    start = torch.tensor(1 / 0.07).log()
    assert not torch.isclose(weights["loss.logit_scale"], start)  # trained, same in both runs
