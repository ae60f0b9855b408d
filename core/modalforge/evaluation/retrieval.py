"""Cross-modal retrieval: recall@k and ranks, computed over chunks of queries.

Similarities are cosine similarities. Queries are processed ``chunk_size`` at a time, so at most a
``chunk_size × num_items`` block of the similarity matrix exists at once (never all of it).

A query's *rank* is the 1-based position of its best-scoring correct item, with ties counted
against the query: ``rank = 1 + #{wrong items scoring >= the best correct one - tie_tol}``. A model
that maps everything to one vector therefore gets the worst rank, not the best, and the result
does not depend on the order of the items. ``tie_tol`` (default ``1e-5`` for float32 embeddings,
``1e-12`` for float64) treats scores that differ only by rounding as ties: identical embeddings
(e.g. many copies of one caption) do not always give bit-identical dot products, because a matrix
product's rounding depends on its shape, and without it the result would depend on the chunking.
``R@k`` is the fraction of queries with ``rank <= k``.

What counts as correct (a *hit*):

- instance level (default): query ``i``'s only match is item ``i`` (paired data);
- ``positives``: query ``i`` matches the items in ``positives[i]`` (several captions per image);
- class level (``query_labels`` + ``item_labels``): any item with the query's label, for data such
  as the digits where many images share one caption.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

Positives = Sequence[Sequence[int]]


def _unit(x: Tensor, name: str) -> Tensor:
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D (count, dim), got shape {tuple(x.shape)}")
    if x.dtype != torch.float64:
        x = x.float()  # half precision and integer inputs: rank in float32
    return F.normalize(x, dim=-1)


def _pair(query_embeds: Tensor, item_embeds: Tensor) -> tuple[Tensor, Tensor]:
    q, items = _unit(query_embeds, "query_embeds"), _unit(item_embeds, "item_embeds")
    if q.shape[1] != items.shape[1]:
        raise ValueError(
            f"query embeddings have dim {q.shape[1]}, items {items.shape[1]}: they must share "
            "one embedding space"
        )
    both64 = q.dtype == items.dtype == torch.float64
    dtype = torch.float64 if both64 else torch.float32  # the less precise side decides
    return q.to(dtype), items.to(device=q.device, dtype=dtype)


class _HitMask:
    """Builds the boolean ``(rows, num_items)`` hit mask of a chunk of queries."""

    def __init__(
        self,
        num_queries: int,
        num_items: int,
        device: torch.device,
        query_labels: Tensor | None,
        item_labels: Tensor | None,
        positives: Positives | None,
    ) -> None:
        self.num_items = num_items
        self.device = device
        self.mode = "instance"
        if positives is not None:
            if query_labels is not None or item_labels is not None:
                raise ValueError("give either positives or labels, not both")
            self._init_positives(num_queries, num_items, positives)
        elif query_labels is not None or item_labels is not None:
            if query_labels is None or item_labels is None:
                raise ValueError("class-level hits need both query_labels and item_labels")
            self.mode = "labels"
            self.q_labels = self._labels(query_labels, num_queries, "query_labels")
            self.i_labels = self._labels(item_labels, num_items, "item_labels")
            missing = ~torch.isin(self.q_labels, self.i_labels)
            if missing.any():
                raise ValueError(
                    f"{int(missing.sum())} queries have a label no item has (e.g. "
                    f"{self.q_labels[missing][0].item()}), so they cannot be retrieved"
                )
        elif num_queries != num_items:
            raise ValueError(
                f"instance-level hits pair query i with item i, but there are {num_queries} "
                f"queries and {num_items} items; give positives or labels instead"
            )

    def _labels(self, labels: Tensor, n: int, name: str) -> Tensor:
        labels = torch.as_tensor(labels).to(self.device)
        if labels.ndim != 1 or len(labels) != n:
            raise ValueError(f"{name} must have shape ({n},), got {tuple(labels.shape)}")
        return labels

    def _init_positives(self, num_queries: int, num_items: int, positives: Positives) -> None:
        if len(positives) != num_queries:
            raise ValueError(f"positives has {len(positives)} entries for {num_queries} queries")
        counts = [len(set(p)) for p in positives]
        empty = [i for i, c in enumerate(counts) if c == 0]
        if empty:
            raise ValueError(f"{len(empty)} queries have no positive item (e.g. query {empty[0]})")
        flat = [j for p in positives for j in sorted(set(p))]
        bad = [j for j in flat if not 0 <= j < num_items]
        if bad:
            raise ValueError(f"positive item index {bad[0]} out of range for {num_items} items")
        self.mode = "positives"
        self.counts = torch.tensor(counts, dtype=torch.long)
        self.offsets = torch.cat([torch.zeros(1, dtype=torch.long), self.counts.cumsum(0)])
        self.flat = torch.tensor(flat, dtype=torch.long, device=self.device)

    def __call__(self, start: int, stop: int) -> Tensor:
        rows = stop - start
        if self.mode == "labels":
            return self.q_labels[start:stop, None] == self.i_labels[None, :]
        mask = torch.zeros(rows, self.num_items, dtype=torch.bool, device=self.device)
        if self.mode == "instance":
            r = torch.arange(rows, device=self.device)
            mask[r, r + start] = True
        else:
            cols = self.flat[self.offsets[start] : self.offsets[stop]]
            r = torch.repeat_interleave(torch.arange(rows), self.counts[start:stop])
            mask[r.to(self.device), cols] = True
        return mask


def default_tie_tol(dtype: torch.dtype) -> float:
    """Score differences below this count as ties: ``1e-12`` for float64 (both inputs float64),
    else ``1e-5``."""
    return 1e-12 if dtype == torch.float64 else 1e-5


def retrieval_ranks(
    query_embeds: Tensor,
    item_embeds: Tensor,
    *,
    query_labels: Tensor | None = None,
    item_labels: Tensor | None = None,
    positives: Positives | None = None,
    chunk_size: int = 1024,
    tie_tol: float | None = None,
) -> Tensor:
    """1-based rank ``(Q,)`` of each query's best correct item (ties count against the query)."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    q, items = _pair(query_embeds, item_embeds)
    tol = default_tie_tol(q.dtype) if tie_tol is None else tie_tol
    hits = _HitMask(len(q), len(items), q.device, query_labels, item_labels, positives)
    ranks = []
    for start in range(0, len(q), chunk_size):
        stop = min(start + chunk_size, len(q))
        sims = q[start:stop] @ items.T
        mask = hits(start, stop)
        best = sims.masked_fill(~mask, float("-inf")).amax(dim=1, keepdim=True)
        ranks.append(((sims >= best - tol) & ~mask).sum(dim=1) + 1)
    return torch.cat(ranks) if ranks else torch.zeros(0, dtype=torch.long)


def summarize_ranks(ranks: Tensor, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """``r<k>`` (recall at each k), ``mean_rank`` and ``median_rank`` of 1-based ranks."""
    if len(ranks) == 0:
        return dict.fromkeys([*(f"r{k}" for k in ks), "mean_rank", "median_rank"], float("nan"))
    ranks = ranks.double()
    out = {f"r{k}": (ranks <= k).double().mean().item() for k in ks}
    ordered = ranks.sort().values
    mid = len(ordered) // 2
    median = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    out["mean_rank"] = ranks.mean().item()
    out["median_rank"] = float(median)
    return out


def retrieval_metrics(
    query_embeds: Tensor,
    item_embeds: Tensor,
    *,
    query_labels: Tensor | None = None,
    item_labels: Tensor | None = None,
    positives: Positives | None = None,
    ks: Sequence[int] = (1, 5, 10),
    chunk_size: int = 1024,
    tie_tol: float | None = None,
) -> dict[str, float]:
    """``{"r1", "r5", "r10", "mean_rank", "median_rank"}`` of one retrieval direction.

    Hits are instance level unless ``positives`` (query → correct item indices) or both label
    tensors (class level) are given; see the module docstring.
    """
    ranks = retrieval_ranks(
        query_embeds,
        item_embeds,
        query_labels=query_labels,
        item_labels=item_labels,
        positives=positives,
        chunk_size=chunk_size,
        tie_tol=tie_tol,
    )
    return summarize_ranks(ranks, ks)


def invert_positives(positives: Positives, num_items: int) -> list[list[int]]:
    """Item → queries that count it as correct (for the reverse direction)."""
    inverse: list[list[int]] = [[] for _ in range(num_items)]
    for q, items in enumerate(positives):
        for j in sorted(set(items)):
            inverse[j].append(q)
    return inverse


def image_text_retrieval(
    image_embeds: Tensor,
    text_embeds: Tensor,
    *,
    image_labels: Tensor | None = None,
    text_labels: Tensor | None = None,
    positives: Positives | None = None,
    ks: Sequence[int] = (1, 5, 10),
    chunk_size: int = 1024,
    tie_tol: float | None = None,
) -> dict[str, float]:
    """Both directions: ``i2t_<key>`` (images query texts) and ``t2i_<key>``.

    ``positives[i]`` lists the texts of image ``i``; the text → image direction uses its inverse.
    """
    inverse = None if positives is None else invert_positives(positives, len(text_embeds))
    i2t = retrieval_metrics(
        image_embeds,
        text_embeds,
        query_labels=image_labels,
        item_labels=text_labels,
        positives=positives,
        ks=ks,
        chunk_size=chunk_size,
        tie_tol=tie_tol,
    )
    t2i = retrieval_metrics(
        text_embeds,
        image_embeds,
        query_labels=text_labels,
        item_labels=image_labels,
        positives=inverse,
        ks=ks,
        chunk_size=chunk_size,
        tie_tol=tie_tol,
    )
    return {**{f"i2t_{k}": v for k, v in i2t.items()}, **{f"t2i_{k}": v for k, v in t2i.items()}}


def topk(
    query_embeds: Tensor, item_embeds: Tensor, k: int, chunk_size: int = 1024
) -> tuple[Tensor, Tensor]:
    """``(scores, indices)``, each ``(Q, min(k, N))``: the most similar items per query.

    Sorted by descending cosine similarity; equal scores keep the lower item index first, so the
    answer does not depend on ``chunk_size``.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    q, items = _pair(query_embeds, item_embeds)
    k = min(k, len(items))
    scores, indices = [], []
    for start in range(0, len(q), chunk_size):
        sims = q[start : start + chunk_size] @ items.T
        s, i = torch.sort(sims, dim=1, descending=True, stable=True)
        scores.append(s[:, :k])
        indices.append(i[:, :k])
    if not scores:
        return q.new_zeros(0, k), torch.zeros(0, k, dtype=torch.long, device=q.device)
    return torch.cat(scores), torch.cat(indices)
