"""Data-parallel pieces: epoch sharding, launch detection, and a 2-process run of a custom step."""

from __future__ import annotations

import pytest
import torch
import torch.multiprocessing as mp
from torch.utils.data import TensorDataset

from modalforge.engine.data import EpochLoader, EpochSampler
from modalforge.engine.distributed import (
    DistContext,
    gather_with_grad,
    launched_by_torchrun,
    setup,
)


def test_ranks_take_strided_slices_that_together_are_the_single_process_epoch():
    single = EpochSampler(11, shuffle=True, seed=5)
    ranks = [EpochSampler(11, shuffle=True, seed=5, rank=r, world_size=2) for r in (0, 1)]
    for s in (single, *ranks):
        s.set_epoch(3)
    order = list(single)
    assert [list(r) for r in ranks] == [order[0:10:2], order[1:10:2]]  # the 11th sits out
    assert [len(r) for r in ranks] == [5, 5]
    ranks[1].set_epoch(3, start=2)  # resume counts this process's samples
    assert list(ranks[1]) == order[1:10:2][2:] and len(ranks[1]) == 3
    with pytest.raises(ValueError, match="rank 2"):
        EpochSampler(4, shuffle=False, seed=0, rank=2, world_size=2)


def _batches(loader: EpochLoader, epoch: int) -> list[list[int]]:
    return [b[0].tolist() for b in loader.epoch(epoch)]


def test_micro_batch_k_of_all_ranks_is_batch_k_of_one_process_with_the_total_batch():
    ds = TensorDataset(torch.arange(30))
    kw = {"shuffle": True, "seed": 1, "num_workers": 0, "pin_memory": False, "field": "f"}
    for drop_last in (False, True):
        one = EpochLoader(ds, batch_size=8, drop_last=drop_last, **kw)
        two = [
            EpochLoader(ds, batch_size=4, drop_last=drop_last, rank=r, world_size=2, **kw)
            for r in (0, 1)
        ]
        assert one.batches_per_epoch == two[0].batches_per_epoch == two[1].batches_per_epoch
        joined = [sorted(a + b) for a, b in zip(*(_batches(t, 2) for t in two), strict=True)]
        assert joined == [sorted(b) for b in _batches(one, 2)]


def test_single_process_without_torchrun(monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR"):
        monkeypatch.delenv(key, raising=False)
    assert not launched_by_torchrun()
    ctx, device = setup("cpu")
    assert (ctx.rank, ctx.world_size, ctx.enabled, ctx.is_main) == (0, 1, False, True)
    assert device == torch.device("cpu")
    x = torch.randn(3, 2)
    assert gather_with_grad(x)[0] is x and gather_with_grad(x)[1] == 0
    assert (
        ctx.broadcast({"a": 1}) == {"a": 1}
        and ctx.wrap(torch.nn.Linear(1, 1), None, device) is None
    )
    env = {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "localhost"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert launched_by_torchrun()
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert not launched_by_torchrun()  # torchrun with one process: plain single-process run


# --------------------------------------------------------------------------- two processes
def _gan_worker(rank: int, world: int, tmp: str) -> None:
    import torch._dynamo  # noqa: F401 - before the group (see distributed._import_dynamo)

    from modalforge.engine import train
    from tests.core.engine.helpers import GAN_SECTIONS, make_pipeline

    torch.set_num_threads(1)
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{tmp}/init", rank=rank, world_size=world
    )
    try:
        cfg = {"epochs": 2, "lr": 0.01, "log_every_steps": 2, "keep_checkpoints": 5}
        full = make_pipeline(cfg, **GAN_SECTIONS, init_seed=rank)  # rank 0's weights win
        train(full, f"{tmp}/full")
        resumed = make_pipeline(cfg, **GAN_SECTIONS, init_seed=7)
        train(resumed, f"{tmp}/resumed", resume=f"{tmp}/full/checkpoints/step_00000004")
        torch.save(
            {"full": full.model.state_dict(), "resumed": resumed.model.state_dict()},
            f"{tmp}/rank{rank}.pt",
        )
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_custom_training_step_in_two_processes_stays_in_sync_and_resumes_exactly(tmp_path):
    """A GAN (no DDP: the engine averages its gradients) draws different noise per process, so
    identical weights on both processes show gradients were averaged, and equal full/resumed
    weights show that every process's RNG state came back from the checkpoint."""
    mp.spawn(_gan_worker, args=(2, str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    for key, value in r0["full"].items():
        torch.testing.assert_close(r1["full"][key], value, rtol=0, atol=0)
        torch.testing.assert_close(r0["resumed"][key], value, rtol=0, atol=0)
        torch.testing.assert_close(r1["resumed"][key], value, rtol=0, atol=0)
    # 256 points, 32 per process and step: 4 steps per epoch; only process 0 wrote.
    assert (tmp_path / "full" / "results.json").is_file()
    lines = (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == len({line.split(",")[0] for line in lines}) == 4


def test_dist_context_is_inert_in_one_process():
    ctx = DistContext()
    grads = [torch.nn.Parameter(torch.ones(2))]
    grads[0].grad = torch.full((2,), 3.0)
    ctx.average_gradients(grads)
    assert grads[0].grad.tolist() == [3.0, 3.0]
    assert ctx.all_reduce_mean({"a": torch.tensor(2.0)})["a"].item() == 2.0
    ctx.barrier()
    ctx.close()
