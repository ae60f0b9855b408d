"""Case resampling for bootstrap confidence intervals: index draws, count weights, percentiles.

A resample is a row of case indices drawn with replacement. Statistics are computed on the
*count* of each case in the resample (a weight matrix), which equals computing them on the
resampled rows themselves but lets one matrix product serve a whole chunk of resamples.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

# Resamples per chunk are sized so one (chunk, n) float64 matrix (2 MB) stays in cache.
CHUNK_ELEMENTS = 250_000


def resample_indices(
    n: int,
    n_bootstrap: int,
    seed: int = 0,
    strata: np.ndarray | None = None,
    chunk_elements: int = CHUNK_ELEMENTS,
) -> Iterator[np.ndarray]:
    """``n_bootstrap`` rows of ``n`` case indices drawn with replacement, in chunks of rows.

    With ``strata`` (one label per case) each stratum is resampled on its own, so every resample
    keeps each stratum's size (a stratified bootstrap: both classes are always present). The
    draws depend only on ``(n, n_bootstrap, seed, strata)``, not on the chunk size.
    """
    if n < 1:
        raise ValueError("cannot resample an empty set of cases")
    groups = [np.arange(n)] if strata is None else _strata_members(np.asarray(strata))
    rows = max(1, chunk_elements // n)
    # one independent stream per stratum, so chunking cannot change the draws
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(len(groups))]
    done = 0
    while done < n_bootstrap:
        b = min(rows, n_bootstrap - done)
        parts = [
            g[stream.integers(0, g.size, size=(b, g.size))]
            for g, stream in zip(groups, streams, strict=True)
        ]
        yield np.concatenate(parts, axis=1)
        done += b


def _strata_members(strata: np.ndarray) -> list[np.ndarray]:
    _, inverse = np.unique(strata, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.flatnonzero(np.diff(inverse[order])) + 1
    return np.split(order, bounds)


def case_counts(indices: np.ndarray, n: int) -> np.ndarray:
    """``(b, n)`` float64 matrix: how often each of ``n`` cases occurs in each row of indices."""
    indices = np.atleast_2d(indices)
    b = indices.shape[0]
    flat = (indices + n * np.arange(b)[:, None]).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n).astype(np.float64)


def percentile_interval(values: np.ndarray, level: float) -> tuple[float, float]:
    """The percentile-method interval of bootstrap replicates: the ``(1±level)/2`` quantiles."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return float(low), float(high)
