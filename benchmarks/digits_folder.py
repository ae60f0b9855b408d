"""scikit-learn's digits written to disk as a labelled image folder (PNG files), the way a user's
own data arrives: ``<root>/<digit name>/<writer>_<index>.png``, upsampled to ``size`` pixels.

The writer id (``w000`` …, 4 consecutive images per writer) is a stand-in group for grouped
splits. Writing is skipped when the folder already holds all 1,797 images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def write_digits_folder(root: str | Path, size: int = 64) -> Path:
    from PIL import Image
    from sklearn.datasets import load_digits

    root = Path(root)
    digits = load_digits()
    if root.is_dir() and sum(1 for _ in root.rglob("*.png")) == len(digits.target):
        return root
    for i, (image, label) in enumerate(zip(digits.images, digits.target, strict=True)):
        folder = root / NAMES[label]
        folder.mkdir(parents=True, exist_ok=True)
        pixels = np.clip(image * (255.0 / 16.0), 0, 255).astype(np.uint8)
        big = Image.fromarray(pixels, mode="L").resize((size, size), Image.BILINEAR)
        big.save(folder / f"w{i // 4:03d}_{i:04d}.png")
    return root
