"""Synthetic anatomy with lesions: 3-D volumes (two lobes of an organ) and 2-D X-ray-style images
(two lung fields), drawn with NumPy from a seeded generator.

A study's findings are defined by its lesions: where they are (left / right lobe), how many, how
large and how bright. The same :class:`Lesions` description drives the image, the report and the
labels, so every finding is visible in the pixels and stated (or negated, or left out) in the text.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIDES: tuple[str, ...] = ("left", "right")

#: The findings of a study, in label order (multi-label target ``findings``).
FINDINGS: tuple[str, ...] = (
    "left_lesion",
    "right_lesion",
    "multiple_lesions",
    "large_lesion",
    "bright_lesion",
)

ORGAN, BODY, FAINT, BRIGHT = 0.40, 0.18, 0.62, 0.95


@dataclass(frozen=True)
class LobeLesions:
    """The lesions of one lobe: all of one size class and one intensity class."""

    count: int
    large: bool
    bright: bool


@dataclass(frozen=True)
class Lesions:
    """A study's lesions by side (``left``, ``right``)."""

    left: LobeLesions
    right: LobeLesions

    def lobe(self, side: str) -> LobeLesions:
        return self.left if side == "left" else self.right

    @property
    def total(self) -> int:
        return self.left.count + self.right.count

    def findings(self) -> dict[str, bool]:
        present = [self.lobe(s) for s in SIDES if self.lobe(s).count]
        return {
            "left_lesion": self.left.count > 0,
            "right_lesion": self.right.count > 0,
            "multiple_lesions": self.total >= 2,
            "large_lesion": any(lobe.large for lobe in present),
            "bright_lesion": any(lobe.bright for lobe in present),
        }

    def burden(self) -> float:
        """A lesion burden score (count, size, brightness): the image's part of the diagnosis."""
        score = 0.0
        for side in SIDES:
            lobe = self.lobe(side)
            score += lobe.count * (1.0 + 1.2 * lobe.large + 0.8 * lobe.bright)
        return score


def sample_lesions(rng: np.random.Generator, lesion_prob: float = 0.5) -> Lesions:
    """Each lobe holds 0–3 lesions; about ``lesion_prob`` of lobes hold at least one."""

    def lobe() -> LobeLesions:
        if rng.random() >= lesion_prob:
            return LobeLesions(0, False, False)
        count = int(rng.choice([1, 2, 3], p=[0.6, 0.3, 0.1]))
        return LobeLesions(count, bool(rng.random() < 0.4), bool(rng.random() < 0.45))

    return Lesions(lobe(), lobe())


def _radius(large: bool, size: int, rng: np.random.Generator) -> float:
    base = size / 32.0
    return float((rng.uniform(3.6, 4.6) if large else rng.uniform(1.6, 2.3)) * base)


def render(lesions: Lesions, size: int, dims: int, rng: np.random.Generator) -> np.ndarray:
    """The image (``(size,)*dims`` float32 in [0, 1]) of a body with two lobes and ``lesions``."""
    axes = np.meshgrid(*([np.arange(size, dtype=np.float32) + 0.5] * dims), indexing="ij")
    c = size / 2.0
    # body: one large ellipsoid; lobes: two ellipsoids either side of the midline (last axis)
    body = sum(((a - c) / (0.46 * size)) ** 2 for a in axes) <= 1.0
    image = np.where(body, BODY, 0.0).astype(np.float32)
    centres = {"left": 0.30 * size, "right": 0.70 * size}
    lobe_masks = {}
    for side, x0 in centres.items():
        radii = [0.32 * size] * (dims - 1) + [0.17 * size]
        offsets = [c] * (dims - 1) + [x0]
        mask = sum(((a - o) / r) ** 2 for a, o, r in zip(axes, offsets, radii, strict=True)) <= 1
        lobe_masks[side] = mask
        image[mask] = ORGAN
    for side in SIDES:
        lobe = lesions.lobe(side)
        inside = np.argwhere(lobe_masks[side])
        placed: list[np.ndarray] = []
        for _ in range(lobe.count):
            radius = _radius(lobe.large, size, rng)
            centre = _place(inside, placed, radius, rng)
            placed.append(centre)
            dist2 = sum((a - (p + 0.5)) ** 2 for a, p in zip(axes, centre, strict=True))
            blob = np.exp(-dist2 / (2 * (0.6 * radius) ** 2)) * (dist2 <= (1.3 * radius) ** 2)
            level = BRIGHT if lobe.bright else FAINT
            image = np.maximum(image, (ORGAN + (level - ORGAN) * blob) * lobe_masks[side])
    texture = rng.normal(0.0, 0.035, image.shape).astype(np.float32)
    return np.clip(image + texture * (image > 0), 0.0, 1.0).astype(np.float32)


def _place(
    inside: np.ndarray, placed: list[np.ndarray], radius: float, rng: np.random.Generator
) -> np.ndarray:
    """A lesion centre inside the lobe, away from the lobe's edge and the other lesions."""
    centre = inside[rng.integers(len(inside))]
    for _ in range(64):
        candidate = inside[rng.integers(len(inside))]
        if all(np.linalg.norm(candidate - p) > 2.2 * radius for p in placed):
            lo, hi = inside.min(0), inside.max(0)
            if np.all(candidate - lo >= radius * 0.8) and np.all(hi - candidate >= radius * 0.8):
                return candidate.astype(np.float32)
        centre = candidate
    return centre.astype(np.float32)
