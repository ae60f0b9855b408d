"""Chunked retrieval metrics against a brute-force full-matrix computation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from modalforge.evaluation import (
    image_text_retrieval,
    invert_positives,
    retrieval_metrics,
    retrieval_ranks,
    topk,
)


def _brute_ranks(q, items, is_hit) -> list[int]:  # noqa: ANN001
    """Sort each query's items by (score desc, wrong items first among ties); first hit's place.

    Each score is its own dot product, so identical embeddings give bit-identical scores.
    """
    q, items = F.normalize(q.double(), dim=1), F.normalize(items.double(), dim=1)
    ranks = []
    for i in range(len(q)):
        sims = [torch.dot(q[i], items[j]).item() for j in range(len(items))]
        order = sorted(range(len(items)), key=lambda j: (-sims[j], is_hit(i, j)))  # noqa: B023
        ranks.append(1 + next(pos for pos, j in enumerate(order) if is_hit(i, j)))
    return ranks


def _brute_metrics(ranks: list[int], ks=(1, 5, 10)) -> dict[str, float]:  # noqa: ANN001
    r = torch.tensor(ranks, dtype=torch.double)
    out = {f"r{k}": float((r <= k).double().mean()) for k in ks}
    out["mean_rank"] = float(r.mean())
    out["median_rank"] = float(torch.quantile(r, 0.5))
    return out


@pytest.fixture(params=[torch.float64, torch.float32])
def data(request):
    """20 images, texts drawn from 4 class prototypes (many exact ties), labels 0..3."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(20) % 4
    protos = torch.randn(4, 6, generator=g, dtype=torch.float64)
    texts = protos[labels]
    images = protos[labels] + 0.9 * torch.randn(20, 6, generator=g, dtype=torch.float64)
    return images.to(request.param), texts.to(request.param), labels


def _all_chunkings(fn, n):  # noqa: ANN001, ANN202
    results = [fn(c) for c in (1, 7, n, 1024)]
    for r in results[1:]:
        assert r == results[0]
    return results[0]


def test_instance_level_matches_brute_force(data):
    images, texts, _ = data
    for q, items in ((images, texts), (texts, images)):
        got = _all_chunkings(lambda c: retrieval_metrics(q, items, chunk_size=c), len(q))  # noqa: B023
        assert got == pytest.approx(_brute_metrics(_brute_ranks(q, items, lambda i, j: i == j)))


def test_class_level_matches_brute_force(data):
    images, texts, labels = data
    got = _all_chunkings(
        lambda c: retrieval_metrics(
            images, texts, query_labels=labels, item_labels=labels, chunk_size=c
        ),
        20,
    )
    brute = _brute_ranks(images, texts, lambda i, j: bool(labels[i] == labels[j]))
    assert got == pytest.approx(_brute_metrics(brute))


def test_positives_several_captions_per_image():
    g = torch.Generator().manual_seed(3)
    images = torch.randn(9, 5, generator=g, dtype=torch.float64)
    texts = images.repeat_interleave(3, dim=0) + 0.8 * torch.randn(27, 5, generator=g).double()
    positives = [[3 * i, 3 * i + 1, 3 * i + 2] for i in range(9)]
    got = _all_chunkings(
        lambda c: retrieval_metrics(images, texts, positives=positives, chunk_size=c), 9
    )
    brute = _brute_ranks(images, texts, lambda i, j: j // 3 == i)
    assert got == pytest.approx(_brute_metrics(brute))
    assert invert_positives(positives, 27)[4] == [1]
    both = image_text_retrieval(images, texts, positives=positives, chunk_size=4)
    t2i = _brute_metrics(_brute_ranks(texts, images, lambda i, j: i // 3 == j))
    assert {k[4:]: v for k, v in both.items() if k.startswith("t2i_")} == pytest.approx(t2i)


def test_closed_form_cases():
    eye = torch.eye(6)
    perfect = retrieval_metrics(eye, eye * 3, ks=(1, 5))
    assert perfect == {"r1": 1.0, "r5": 1.0, "mean_rank": 1.0, "median_rank": 1.0}
    # a collapsed model (one vector for everything) gets the worst rank, not the best
    collapsed = retrieval_metrics(torch.ones(6, 3), torch.ones(6, 3), ks=(1, 5))
    assert collapsed == {"r1": 0.0, "r5": 0.0, "mean_rank": 6.0, "median_rank": 6.0}
    # reversed order: query i's match is the (i+1)-th most similar item
    angles = torch.linspace(0, 1.2, 4)
    q = torch.stack([angles.cos(), angles.sin()], 1)
    items = q.flip(0)
    ranks = retrieval_ranks(q, items, positives=[[3 - i] for i in range(4)])
    assert ranks.tolist() == [1, 1, 1, 1]
    # query 1 (angle 0.4): item 2 (angle 0.4) scores higher than its match (angle 0.8), and
    # item 3 (angle 0) ties with it; ties count against the query, so rank 3
    assert retrieval_ranks(q, items).tolist() == [4, 3, 3, 4]


def test_similarity_block_never_exceeds_a_chunk():
    seen = []

    class Spy(torch.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN206
            out = super().__torch_function__(func, types, args, kwargs or {})
            if getattr(func, "__name__", "") in ("matmul", "__matmul__", "mm"):
                seen.append(tuple(out.shape))
            return out

    x = torch.randn(50, 4).as_subclass(Spy)
    retrieval_metrics(x, torch.randn(50, 4), chunk_size=8)
    topk(x, torch.randn(50, 4), k=3, chunk_size=8)
    assert seen and max(r for r, _ in seen) == 8


def test_topk_matches_full_sort_for_any_chunking(data):
    images, texts, _ = data
    sims = F.normalize(texts, dim=1) @ F.normalize(images, dim=1).T
    full_s, full_i = torch.sort(sims, dim=1, descending=True, stable=True)
    for c in (1, 7, 20):
        s, i = topk(texts, images, k=5, chunk_size=c)
        assert torch.equal(i, full_i[:, :5])
        torch.testing.assert_close(s, full_s[:, :5])
    s, i = topk(texts[:2], images[:3], k=10)
    assert i.shape == (2, 3)  # k capped by the number of items


def test_bidirectional_keys(data):
    images, texts, labels = data
    out = image_text_retrieval(images, texts, image_labels=labels, text_labels=labels)
    for d in ("i2t", "t2i"):
        for key in ("r1", "r5", "r10", "mean_rank", "median_rank"):
            assert f"{d}_{key}" in out
    # all texts of a class are one vector: every image finds its class at rank 1 or not at all
    assert out["t2i_r10"] >= out["t2i_r5"] >= out["t2i_r1"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "instance-level"),
        ({"query_labels": torch.tensor([0, 1, 5])}, "both query_labels"),
        ({"query_labels": torch.tensor([0, 1, 5]), "item_labels": torch.zeros(4)}, "label no item"),
        ({"positives": [[0], [9], [1]]}, "out of range"),
        ({"positives": [[0], [], [1]]}, "no positive"),
    ],
)
def test_bad_hits_are_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        retrieval_metrics(torch.randn(3, 2), torch.randn(4, 2), **kwargs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_results_equal_cpu(data):
    images, texts, labels = data
    positives = [[i, (i + 4) % 20] for i in range(20)]
    for kwargs in ({}, {"query_labels": labels, "item_labels": labels}, {"positives": positives}):
        cpu = retrieval_metrics(images, texts, chunk_size=7, **kwargs)
        on_gpu = {k: v.cuda() if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
        gpu = retrieval_metrics(images.cuda(), texts.cuda(), chunk_size=7, **on_gpu)
        assert gpu == pytest.approx(cpu)
    s, i = topk(texts.cuda(), images.cuda(), k=5, chunk_size=7)
    assert i.is_cuda and torch.equal(i.cpu(), topk(texts, images, k=5)[1])
