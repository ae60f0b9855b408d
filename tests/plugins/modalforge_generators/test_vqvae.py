"""The VQ-VAE tokenizer: nearest-code quantisation, straight-through gradients, EMA updates in
closed form, dead-code restarts, shapes, and training / resuming through the engine."""

import json

import pytest
import torch
from torch.nn import functional as F

from modalforge.engine import train
from modalforge.errors import SpecError
from modalforge.modality import Modality
from modalforge_generators.quantizer import VectorQuantizer, code_statistics
from modalforge_generators.vqvae import VQVAE
from tests.plugins.modalforge_generators.vq_toys import (
    BRIGHT,
    DARK,
    VQ_PARAMS,
    pipeline,
    spec,
    train_vqvae,
)


def image_mods(shape=(1, 8, 8)) -> dict[str, Modality]:
    return {"image": Modality("image", "image2d", shape)}


def test_quantizer_picks_the_nearest_code():
    torch.manual_seed(0)
    vq = VectorQuantizer(16, 3)
    vq.embedding.copy_(torch.randn(16, 3))
    z = torch.randn(200, 3)
    brute = ((z[:, None, :] - vq.embedding[None]) ** 2).sum(-1).argmin(1)  # (200, 16) distances
    assert torch.equal(vq.nearest(z), brute)
    out = vq(z)
    assert torch.equal(out.codes, brute)
    torch.testing.assert_close(out.quantized, vq.embedding[brute])


def test_straight_through_passes_the_gradient_unchanged():
    torch.manual_seed(0)
    vq = VectorQuantizer(8, 4, ema=False)
    z = torch.randn(10, 4, requires_grad=True)
    w = torch.randn(10, 4)
    (vq(z).quantized * w).sum().backward()
    torch.testing.assert_close(z.grad, w, rtol=0, atol=0)


def test_losses_and_which_parts_learn():
    torch.manual_seed(0)
    st = VectorQuantizer(8, 4, ema=False)
    z = torch.randn(10, 4)
    out = st(z)
    q = st.embedding[out.codes]
    torch.testing.assert_close(out.commitment, F.mse_loss(z, q))
    torch.testing.assert_close(out.codebook, F.mse_loss(q, z))
    out.codebook.backward()
    assert st.embedding.grad is not None and st.embedding.grad.abs().sum() > 0
    ema = VectorQuantizer(8, 4, ema=True)
    assert list(ema.parameters()) == []
    assert float(ema(z).codebook) == 0.0


def test_vqvae_encoder_learns_from_the_reconstruction():
    torch.manual_seed(0)
    model = VQVAE(image_mods(), codebook_size=8, hidden=8, code_dim=4, commitment=0.0)
    x = torch.rand(4, 1, 8, 8)
    out = model({"image": x})
    F.mse_loss(out["reconstruction"], x).backward()
    for name, p in model.encoder.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_ema_update_matches_its_closed_form():
    vq = VectorQuantizer(2, 1, ema=True, decay=0.5, eps=1e-5, dead_threshold=0.0)
    vq.cluster_size.copy_(torch.tensor([4.0, 0.0]))
    vq.embed_sum.copy_(torch.tensor([[4.0], [-1.0]]))
    z = torch.tensor([[1.0], [3.0], [-2.0]])
    restarted = vq.update(z, torch.tensor([0, 0, 1]))
    # cluster sizes: 0.5·[4, 0] + 0.5·[2, 1]; sums: 0.5·[4, -1] + 0.5·[1 + 3, -2]
    torch.testing.assert_close(vq.cluster_size, torch.tensor([3.0, 0.5]))
    torch.testing.assert_close(vq.embed_sum, torch.tensor([[4.0], [-1.5]]))
    n, eps = 3.5, 1e-5
    smoothed = [(3.0 + eps) / (n + 2 * eps) * n, (0.5 + eps) / (n + 2 * eps) * n]
    want = torch.tensor([[4.0 / smoothed[0]], [-1.5 / smoothed[1]]])
    torch.testing.assert_close(vq.embedding, want)
    assert float(restarted) == 0


def test_dead_codes_restart_on_encoder_outputs():
    torch.manual_seed(0)
    vq = VectorQuantizer(4, 2, ema=False, decay=0.99, dead_threshold=1.0)
    vq.cluster_size.copy_(torch.tensor([5.0, 0.1, 5.0, 0.2]))
    before = vq.embedding.detach().clone()
    z = torch.randn(6, 2) + 10.0
    restarted = vq.update(z, torch.zeros(6, dtype=torch.long))
    assert float(restarted) == 2
    for k in (1, 3):  # dead: moved onto a batch vector with a count of 1
        assert any(torch.equal(vq.embedding[k], row) for row in z)
        assert float(vq.cluster_size[k]) == 1.0
    for k in (0, 2):
        torch.testing.assert_close(vq.embedding[k], before[k])
    torch.testing.assert_close(vq.cluster_size[2], torch.tensor(4.95))


def test_code_statistics():
    stats = code_statistics(torch.tensor([0, 1, 2, 3, 0, 1, 2, 3]), 8)
    torch.testing.assert_close(stats["perplexity"], torch.tensor(4.0))
    torch.testing.assert_close(stats["usage"], torch.tensor(0.5))


@pytest.mark.parametrize(
    ("shape", "downsample", "grid"),
    [((1, 8, 8), 2, (4, 4)), ((3, 32, 32), 4, (8, 8)), ((3, 8, 8), 1, (8, 8))],
)
def test_encode_decode_shapes(shape, downsample, grid):
    model = VQVAE(image_mods(shape), codebook_size=16, hidden=8, code_dim=4, downsample=downsample)
    x = torch.rand(3, *shape)
    codes = model.encode(x)
    assert codes.shape == (3, *grid) and codes.dtype == torch.long
    assert int(codes.min()) >= 0 and int(codes.max()) < 16
    images = model.decode(codes)
    assert images.shape == (3, *shape)
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    with pytest.raises(ValueError, match="codes must lie"):
        model.decode(torch.full((1, *grid), 16))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"downsample": 3}, "downsample: must be a power of two"),
        ({"downsample": 16}, "downsample: 16 does not divide"),
        ({"image": "photo"}, "params.image: the data set has no modality 'photo'"),
        ({"codebook_size": 1}, "codebook_size must be at least 2"),
    ],
)
def test_bad_parameters_name_the_field(kwargs, match):
    with pytest.raises(SpecError, match=match):
        VQVAE(image_mods(), **kwargs)


def test_vqvae_is_not_a_sampler():
    with pytest.raises(SpecError, match="not a sampler"):
        VQVAE(image_mods()).sample(["a"], 1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("vq") / "run"
    return out, train_vqvae(out)


def test_trains_through_the_engine_and_logs_code_statistics(trained):
    out, pipe = trained
    model = pipe.model.eval()
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    logged = [r for r in lines if r.get("split") == "train"]
    for key in ("recon_mse", "perplexity", "code_usage", "restarts", "commitment"):
        assert key in logged[-1], key
    assert logged[-1]["recon_mse"] < 0.25 * logged[0]["recon_mse"]
    dark = torch.full((1, 1, 4, 4), DARK)
    bright = torch.full((1, 1, 4, 4), BRIGHT)
    for x in (dark, bright):
        assert float((model.decode(model.encode(x)) - x).abs().max()) < 0.1
    assert not torch.equal(model.encode(dark), model.encode(bright))


def test_resume_equals_uninterrupted(tmp_path):
    cfg = spec("vqvae", VQ_PARAMS, epochs=3, lr=0.01)
    full = pipeline(cfg)
    train(full, tmp_path / "full")
    resumed = pipeline(cfg, init_seed=7)
    train(resumed, tmp_path / "res", resume=tmp_path / "full" / "checkpoints" / "step_00000004")
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for key in a:  # weights and the EMA codebook buffers
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


# ---------------------------------------------------------------- data parallel codebook
def _quantizer_worker(rank: int, world: int, tmp: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{tmp}/init", rank=rank, world_size=world)
    try:
        z = torch.load(f"{tmp}/z.pt").chunk(world)[rank]
        states = {}
        for threshold in (0.0, 1.0):
            torch.manual_seed(0)
            vq = VectorQuantizer(8, 3, dead_threshold=threshold)
            for _ in range(3):
                vq.update(z, vq.nearest(z))
            states[threshold] = {k: v.clone() for k, v in vq.state_dict().items()}
        torch.save(states, f"{tmp}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_ema_codebook_stays_equal_across_processes_and_equals_the_whole_batch_update(tmp_path):
    import torch.multiprocessing as mp

    z = torch.randn(64, 3, generator=torch.Generator().manual_seed(1))
    torch.save(z, tmp_path / "z.pt")
    mp.spawn(_quantizer_worker, args=(2, str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    torch.manual_seed(0)
    one = VectorQuantizer(8, 3, dead_threshold=0.0)
    for _ in range(3):
        one.update(z, one.nearest(z))
    for key, value in one.state_dict().items():
        # without restarts: exactly the one-process update on the concatenated batch
        torch.testing.assert_close(r0[0.0][key], value, rtol=1e-6, atol=1e-6, msg=key)
        torch.testing.assert_close(r1[0.0][key], value, rtol=1e-6, atol=1e-6, msg=key)
    for key, value in r0[1.0].items():
        # with restarts (every code at the first step): the same codebook on both processes
        torch.testing.assert_close(r1[1.0][key], value, rtol=0, atol=0, msg=key)
