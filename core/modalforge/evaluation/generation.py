"""Evaluation of generated images: KID, CLIP score, R-precision and judge accuracy.

Pure functions on feature/embedding tensors; which network makes the features (an independent
classifier, a CLIP model) is the caller's choice, and should be neither the generator nor the
reranker being evaluated.

- :func:`kid`: Kernel Inception Distance (Bińkowski et al., 2018, "Demystifying MMD GANs"): the
  unbiased estimate of the squared MMD between two feature sets under the polynomial kernel
  ``k(x, y) = (gamma x·y + coef)^degree`` (``gamma = 1/d``, ``coef = 1``, ``degree = 3``), averaged
  over random subsets, as in the reference implementation and torchmetrics. Unlike FID it is
  unbiased, so small sample sizes compare fairly; its expectation is 0 for equal distributions
  (single estimates may be slightly negative).
- :func:`clip_score`: CLIPScore (Hessel et al., 2021) ``w · max(cos(image, text), 0)`` averaged
  over pairs, with ``w = 100`` by default as in torchmetrics and text-to-image papers; the paper
  itself uses ``w = 2.5`` (pass ``w=2.5`` to get its scale).
- :func:`r_precision`: R-precision as in AttnGAN (Xu et al., 2018) and DALL·E-style evaluations
  with one relevant text per image: the fraction of images whose own prompt ranks in the top
  ``k`` of the candidate prompts by cosine similarity (ties count against the image).
- :func:`judge_accuracy` / :func:`attribute_accuracy`: agreement of an independent judge's
  predictions with what was prompted.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def _features(x: Tensor | np.ndarray, name: str) -> Tensor:
    x = torch.as_tensor(x)
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D (count, dim), got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x.to(torch.float64)


def polynomial_kernel(
    x: Tensor, y: Tensor, degree: int = 3, gamma: float | None = None, coef: float = 1.0
) -> Tensor:
    """``(gamma · x @ y.T + coef) ** degree``; ``gamma`` defaults to ``1 / dim``."""
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    return (gamma * (x @ y.T) + coef) ** degree


def mmd2_unbiased(k_xx: Tensor, k_yy: Tensor, k_xy: Tensor) -> Tensor:
    """Unbiased squared MMD from kernel matrices: the within-set means exclude the diagonal."""
    m, n = k_xx.shape[0], k_yy.shape[0]
    if m < 2 or n < 2:
        raise ValueError(f"the unbiased MMD needs at least 2 samples per set, got {m} and {n}")
    xx = (k_xx.sum() - k_xx.diagonal().sum()) / (m * (m - 1))
    yy = (k_yy.sum() - k_yy.diagonal().sum()) / (n * (n - 1))
    return xx + yy - 2.0 * k_xy.mean()


def kid(
    feats_a: Tensor | np.ndarray,
    feats_b: Tensor | np.ndarray,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef: float = 1.0,
    generator: torch.Generator | None = None,
    max_gram_entries: int = 1 << 24,
) -> tuple[float, float]:
    """Kernel Inception Distance ``(mean, std)`` over ``subsets`` random subsets.

    Each subset draws ``min(subset_size, len(set))`` rows of each set without replacement and
    computes the unbiased MMD² (:func:`mmd2_unbiased`) under :func:`polynomial_kernel`; the std is
    the population std of the subset estimates (as torchmetrics). Computed in float64; subsets are
    drawn from ``generator`` (reproducible), or the global torch RNG when it is ``None``.

    When the three kernel matrices of the full sets hold at most ``max_gram_entries`` entries
    (default 16.7M, 134 MB), they are computed once and each subset's sums are read from them
    (:class:`_SubsetGram`): the same numbers up to rounding, and much less arithmetic.
    """
    a, b = _features(feats_a, "feats_a"), _features(feats_b, "feats_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dims differ: {a.shape[1]} and {b.shape[1]}")
    if subsets < 1 or subset_size < 2:
        raise ValueError(f"need subsets >= 1 and subset_size >= 2, got {subsets}, {subset_size}")
    b = b.to(a.device)
    m, n = min(subset_size, len(a)), min(subset_size, len(b))
    if m == len(a) and n == len(b):
        subsets = 1  # every subset is the whole of both sets

    def kernel(x: Tensor, y: Tensor) -> Tensor:
        return polynomial_kernel(x, y, degree, gamma=gamma, coef=coef)

    gram = None
    if subsets > 1 and len(a) ** 2 + len(b) ** 2 + len(a) * len(b) <= max_gram_entries:
        gram = _SubsetGram(kernel(a, a), kernel(b, b), kernel(a, b))
    scores = torch.empty(subsets, dtype=torch.float64)
    for i in range(subsets):
        ix = torch.randperm(len(a), generator=generator)[:m].to(a.device)
        iy = torch.randperm(len(b), generator=generator)[:n].to(a.device)
        if gram is not None:
            scores[i] = gram.mmd2(ix, iy).cpu()
        else:
            x, y = a[ix], b[iy]
            scores[i] = mmd2_unbiased(kernel(x, x), kernel(y, y), kernel(x, y)).cpu()
    return float(scores.mean()), float(scores.std(unbiased=False))


class _SubsetGram:
    """Unbiased MMD² of subsets from the kernel matrices of the full sets: with ``u`` the 0/1
    indicator of a subset, the sum of its kernel block is ``u·K·v`` (three matrix–vector
    products per subset instead of three kernel matrices)."""

    def __init__(self, k_aa: Tensor, k_bb: Tensor, k_ab: Tensor) -> None:
        self.k_aa, self.k_bb, self.k_ab = k_aa, k_bb, k_ab
        self.d_aa, self.d_bb = k_aa.diagonal(), k_bb.diagonal()

    def mmd2(self, ix: Tensor, iy: Tensor) -> Tensor:
        m, n = len(ix), len(iy)
        u = torch.zeros(len(self.k_aa), dtype=self.k_aa.dtype, device=ix.device)
        v = torch.zeros(len(self.k_bb), dtype=self.k_bb.dtype, device=iy.device)
        u[ix], v[iy] = 1.0, 1.0
        xx = (u @ self.k_aa @ u - self.d_aa[ix].sum()) / (m * (m - 1))
        yy = (v @ self.k_bb @ v - self.d_bb[iy].sum()) / (n * (n - 1))
        return xx + yy - 2.0 * (u @ self.k_ab @ v) / (m * n)


def _pairs(image_embeds: Tensor, text_embeds: Tensor) -> tuple[Tensor, Tensor]:
    img, txt = _features(image_embeds, "image_embeds"), _features(text_embeds, "text_embeds")
    if img.shape[1] != txt.shape[1]:
        raise ValueError(f"image dim {img.shape[1]} != text dim {txt.shape[1]}: one space needed")
    return F.normalize(img, dim=-1), F.normalize(txt.to(img.device), dim=-1)


def clip_score(image_embeds: Tensor, text_embeds: Tensor, *, w: float = 100.0) -> float:
    """Mean CLIPScore ``w · max(cos(image_i, text_i), 0)`` over ``N`` paired embeddings."""
    img, txt = _pairs(image_embeds, text_embeds)
    if len(img) != len(txt) or len(img) == 0:
        raise ValueError(f"need N > 0 image–text pairs, got {len(img)} images, {len(txt)} texts")
    return float(w * (img * txt).sum(-1).clamp_min(0).mean())


def r_precision(
    image_embeds: Tensor,
    prompt_index: Tensor | np.ndarray,
    candidate_text_embeds: Tensor,
    k: int = 1,
    *,
    tie_tol: float = 1e-9,
) -> float:
    """Fraction of images whose own prompt ``candidate_text_embeds[prompt_index[i]]`` ranks in
    the top ``k`` of all candidates by cosine similarity.

    ``rank = 1 + #{other candidates scoring >= the own one - tie_tol}``, so an image that is
    equally close to every prompt is never a hit (a collapsed generator scores 0, not 1).
    """
    img, txt = _pairs(image_embeds, candidate_text_embeds)
    idx = torch.as_tensor(prompt_index, dtype=torch.long, device=img.device).reshape(-1)
    if len(idx) != len(img) or len(img) == 0:
        raise ValueError(f"need one prompt_index per image (N > 0), got {len(idx)} for {len(img)}")
    if idx.min() < 0 or idx.max() >= len(txt):
        raise ValueError(f"prompt_index must be in [0, {len(txt)}), got {idx.min()}..{idx.max()}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    sims = img @ txt.T
    own = sims.gather(1, idx[:, None])
    ahead = (sims >= own - tie_tol).sum(1) - 1  # every candidate at least as close, minus own
    return float(((1 + ahead) <= k).double().mean())


def judge_accuracy(predicted: Tensor | np.ndarray, prompted: Tensor | np.ndarray) -> float:
    """Fraction of generated samples whose judged label equals the prompted one."""
    p, q = torch.as_tensor(predicted).reshape(-1), torch.as_tensor(prompted).reshape(-1)
    if p.shape != q.shape or len(p) == 0:
        raise ValueError(f"need equally many (> 0) predictions and prompts, got {len(p)}, {len(q)}")
    return float((p.cpu() == q.cpu()).double().mean())


def attribute_accuracy(
    predicted: Mapping[str, Tensor | np.ndarray], prompted: Mapping[str, Tensor | np.ndarray]
) -> dict[str, float]:
    """Per-attribute :func:`judge_accuracy` for every prompted attribute, plus ``"all"``: the
    fraction of samples with every prompted attribute right."""
    missing = set(prompted) - set(predicted)
    if missing or not prompted:
        raise ValueError(f"no predictions for prompted attributes {sorted(missing)}")
    result = {name: judge_accuracy(predicted[name], prompted[name]) for name in prompted}
    flat = lambda x: torch.as_tensor(x).reshape(-1).cpu()  # noqa: E731
    right = torch.stack([flat(predicted[n]) == flat(prompted[n]) for n in prompted])
    result["all"] = float(right.all(0).double().mean())
    return result
