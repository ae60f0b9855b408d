"""Two processes (gloo): lone batch-norm batches, early stopping and the csv logger stay in step."""

from __future__ import annotations

import csv
import json
import warnings

import pytest
import torch
import torch.multiprocessing as mp


def _worker(rank: int, world: int, tmp: str) -> None:
    import torch._dynamo  # noqa: F401 - before the group (see distributed._import_dynamo)

    from modalforge.engine import train
    from tests.core.engine.bn_toys import bn_pipeline

    torch.set_num_threads(1)
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{tmp}/init", rank=rank, world_size=world
    )
    try:
        warnings.simplefilter("ignore")
        cfg = {
            "epochs": 6,
            "log_every_steps": 3,
            # min_delta: nothing counts as an improvement, so it stops after 1 + 2 evaluations
            "callbacks": [{"name": "early_stopping", "params": {"patience": 2, "min_delta": 9}}],
            "loggers": ["csv"],
        }
        data = {"dataset": "holey_blobs", "batch_size": 2}  # sample 3 unreadable
        pipeline = bn_pipeline(cfg, data=data, init_seed=rank)  # rank 0's weights win
        result = train(pipeline, f"{tmp}/run")
        torch.save(
            {  # parameters: BN running statistics are each process's own (no SyncBatchNorm)
                "weights": {k: p.detach() for k, p in pipeline.model.named_parameters()},
                "stopped": result.stopped,
            },
            f"{tmp}/rank{rank}.pt",
        )
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_two_processes_agree_on_lone_batches_and_on_stopping(tmp_path):
    """Each process holds 8 of the 16 samples in batches of 2; the batch with the unreadable
    sample trains its lone sample with batch norm in eval mode (every process must take part in
    each DDP step), so the run neither hangs nor crashes, and both stop at the same step."""
    mp.spawn(_worker, args=(2, str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    for key, value in r0["weights"].items():
        torch.testing.assert_close(r1["weights"][key], value, rtol=0, atol=0)
    assert r0["stopped"] == r1["stopped"]
    assert r0["stopped"]["by"] == "early_stopping" and r0["stopped"]["step"] == 3 * 4
    run = tmp_path / "run"
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    with open(run / "metrics_test.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))  # written once, by process 0
    assert [int(r["step"]) for r in rows] == [r["step"] for r in records if r["split"] == "test"]
    assert [int(r["step"]) for r in rows] == [4, 8, 12]
