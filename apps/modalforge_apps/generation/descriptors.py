"""Position-, size- and brightness-normalised descriptors of one-shape images (shapes judge).

The shape's *mask* is where the brightness (max over RGB), smoothed over 3×3 pixels, exceeds
``MASK_FLOOR`` of its peak, so isolated noisy pixels do not count. From the mask and the
brightness inside it:

- ``centroid``: brightness-weighted centre ``(row, col)`` as fractions of the image side;
- ``scale``: the square root of the weighted area (pixels);
- ``chroma``: brightness-weighted mean RGB over the shape, divided by its largest channel;
- ``patch``: the normalised brightness resampled on a ``PATCH × PATCH`` grid spanning
  ``±PATCH_EXTENT · scale`` around the centroid: the shape in its own frame, the same for every
  position, size and colour.

Each attribute is then read from its own descriptor only (colour from ``chroma``, position from
``centroid``, shape from ``patch``), so a judge built on them cannot use one attribute to guess
another: it judges a held-out "blue circle" exactly as it judges any other circle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

MASK_FLOOR = 0.4  # of the smoothed peak brightness
EMPTY_PEAK = 0.1  # a smoothed peak below this means no shape is visible
PATCH = 16
PATCH_EXTENT = 1.2  # in units of scale (sqrt of area); every shape fits within +-1


@dataclass(frozen=True)
class Descriptors:
    centroid: np.ndarray  # (N, 2)
    scale: np.ndarray  # (N,)
    chroma: np.ndarray  # (N, 3)
    patch: np.ndarray  # (N, PATCH * PATCH)
    empty: np.ndarray  # (N,) bool: nothing visible


def describe(images: Tensor) -> Descriptors:
    """Descriptors of ``(N, 3, S, S)`` float images in ``[0, 1]`` (see the module docstring)."""
    n, _, h, w = images.shape
    lum = images.amax(1)
    smooth = F.avg_pool2d(F.pad(lum[:, None], (1, 1, 1, 1), mode="replicate"), 3, 1)[:, 0]
    peak = smooth.flatten(1).amax(1)
    safe = peak.clamp_min(1e-6)[:, None, None]
    weight = torch.where(smooth / safe > MASK_FLOOR, (lum / safe).clamp(0, 1), 0.0)
    mass = weight.sum((1, 2)).clamp_min(1e-6)
    rows = (weight.sum(2) * (torch.arange(h) + 0.5)).sum(1) / mass
    cols = (weight.sum(1) * (torch.arange(w) + 0.5)).sum(1) / mass
    scale = mass.sqrt()
    t = torch.linspace(-PATCH_EXTENT, PATCH_EXTENT, PATCH)
    gy = (rows[:, None] + scale[:, None] * t) / h * 2 - 1  # grid_sample's [-1, 1] coordinates
    gx = (cols[:, None] + scale[:, None] * t) / w * 2 - 1
    grid = torch.stack(
        [gx[:, None, :].expand(n, PATCH, PATCH), gy[:, :, None].expand(n, PATCH, PATCH)], -1
    )
    patch = F.grid_sample(weight[:, None], grid, mode="bilinear", align_corners=False)[:, 0]
    chroma = (images * weight[:, None]).sum((2, 3)) / mass[:, None]
    chroma = chroma / chroma.amax(1, keepdim=True).clamp_min(1e-6)
    return Descriptors(
        centroid=torch.stack([rows / h, cols / w], 1).numpy().astype(np.float64),
        scale=scale.numpy().astype(np.float64),
        chroma=chroma.numpy().astype(np.float64),
        patch=patch.flatten(1).numpy().astype(np.float64),
        empty=(peak < EMPTY_PEAK).numpy(),
    )


def augment(images: Tensor, generator: torch.Generator) -> Tensor:
    """A harder copy of ``images`` for training the judge: a third get Gaussian pixel noise of
    std up to 0.15, a third a 3×3 box blur, a third stay clean (then clipped to ``[0, 1]``)."""
    which = torch.randint(3, (len(images), 1, 1, 1), generator=generator)
    std = 0.15 * torch.rand(len(images), 1, 1, 1, generator=generator)
    noisy = images + std * torch.randn(images.shape, generator=generator)
    blurred = F.avg_pool2d(F.pad(images, (1, 1, 1, 1), mode="replicate"), 3, 1)
    out = torch.where(which == 0, noisy, torch.where(which == 1, blurred, images))
    return out.clamp(0.0, 1.0)
