"""Tiny image files for the image–text reader tests: valid PNG/JPEG bytes and broken ones."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image


def pixels(seed: int, size: int = 4) -> np.ndarray:
    """A deterministic ``(size, size, 3)`` uint8 RGB image."""
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def encode(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt)
    return buf.getvalue()


def truncated_jpeg(seed: int = 0) -> bytes:
    """The first half of a valid JPEG: its header parses, its pixels do not."""
    data = encode(pixels(seed, 16), "JPEG")
    return data[: len(data) // 2]


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
