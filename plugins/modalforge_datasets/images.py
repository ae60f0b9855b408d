"""Decoding images to RGB, and the skip-or-raise policy for samples that cannot be read.

Readers of image files (manifests, tar shards) share these so every reader converts modes the same
way and reports a bad file the same way: a :class:`~modalforge.errors.DataError` naming the file
(``on_error="raise"``), or ``None`` from ``__getitem__`` plus one warning and a count
(``on_error="skip"``), which the engine's collate drops.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from modalforge.deps import require
from modalforge.errors import DataError

if TYPE_CHECKING:
    from PIL import Image

OnError = Literal["skip", "raise"]

# Modes whose pixels carry transparency (``P`` may too, through its ``transparency`` info).
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
WHITE = (255, 255, 255)


def to_rgb(image: Image.Image) -> Image.Image:
    """``image`` as an 8-bit RGB image, whatever its mode.

    - ``RGB`` is returned as is; ``L``, ``1``, ``CMYK``, ``YCbCr``, ``LAB``, ``HSV`` convert with
      Pillow's own conversion (``CMYK`` naively, without an ICC profile);
    - modes with transparency (``RGBA``, ``LA``, ``PA``, ``P`` with a transparent index) are
      composited over white, so transparent areas do not turn into arbitrary colours (often black);
    - 16-bit and 32-bit integer modes (``I;16``, ``I;16B``, ``I``) are scaled from their range to
      0..255 (Pillow's plain conversion clips them, turning most 16-bit images white); 32-bit
      ``I`` images whose values fit in 0..255 or 0..65535 are read as 8- or 16-bit data;
    - float ``F`` images in [0, 1] are scaled by 255, other ranges are min-max normalised.
    """
    Image = require("PIL.Image", package="pillow")
    mode = image.mode
    if mode == "RGB":
        return image
    if mode.startswith("I") or mode == "F":
        return Image.fromarray(_to_uint8(np.asarray(image), mode), mode="L").convert("RGB")
    if mode == "P" and "transparency" in image.info:
        image, mode = image.convert("RGBA"), "RGBA"
    if mode in _ALPHA_MODES:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*WHITE, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    values = values.astype(np.float64)
    if mode.startswith("I;16"):
        top = 65535.0
    elif mode == "I" and values.size and values.min() >= 0 and values.max() <= 255:
        top = 255.0
    elif mode == "I" and values.size and values.min() >= 0 and values.max() <= 65535:
        top = 65535.0
    elif mode == "F" and values.size and values.min() >= 0 and values.max() <= 1:
        top = 1.0
    else:  # other ranges: stretch to the full scale
        low = values.min() if values.size else 0.0
        values = values - low
        top = float(values.max()) if values.size and values.max() > 0 else 1.0
    return np.clip(np.rint(values * (255.0 / top)), 0, 255).astype(np.uint8)


def decode_image(data: bytes | str | Path) -> Image.Image:
    """Decode a whole image file (bytes or path) to RGB; raises whatever Pillow raises.

    The pixels are loaded here, not lazily, so a truncated file fails now rather than inside the
    encoder's preprocessing. EXIF orientation is applied, as a viewer would show the photo.
    """
    Image = require("PIL.Image", package="pillow")
    ImageOps = require("PIL.ImageOps", package="pillow")
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    with Image.open(source) as image:
        image.load()
        try:
            image = ImageOps.exif_transpose(image)
        except Exception:  # noqa: BLE001 - a malformed EXIF block should not cost the image
            pass
        return to_rgb(image)


class BadSamples:
    """What a reader does with a sample it cannot read: raise, or skip, warn once and count.

    ``count`` is this process's count (DataLoader workers each keep their own); the engine's
    collate counts the ``None`` samples of every process.
    """

    def __init__(self, on_error: OnError, field: str) -> None:
        if on_error not in ("skip", "raise"):
            raise ValueError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
        self.on_error = on_error
        self.field = field
        self.count = 0

    def handle(self, source: str, problem: str) -> None:
        """Raise a :class:`DataError` for ``source``, or record it as skipped (returns)."""
        if self.on_error == "raise":
            raise DataError(
                f"cannot read {source}: {problem}",
                hint=f"fix or replace the file, remove it from the data, or set "
                f"{self.field}.on_error=skip to skip unreadable samples",
            )
        self.count += 1
        if self.count == 1:
            warnings.warn(
                f"skipping unreadable sample {source}: {problem} ({self.field}.on_error=skip; "
                "further unreadable samples are skipped without a warning each and counted)",
                stacklevel=3,
            )


def describe(exc: BaseException) -> str:
    """``"ExcType: message"`` for an error message."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
