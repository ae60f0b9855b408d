"""Image decoding: every mode becomes 8-bit RGB with the values a person would expect."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from PIL import Image

from modalforge.errors import DataError
from modalforge_datasets.images import BadSamples, decode_image, to_rgb
from tests.plugins.modalforge_datasets.image_files import encode, pixels


def _rgb(image: Image.Image) -> np.ndarray:
    out = to_rgb(image)
    assert out.mode == "RGB" and out.size == image.size
    return np.asarray(out)


def test_rgb_is_returned_unchanged():
    image = Image.fromarray(pixels(0))
    assert to_rgb(image) is image


def test_grayscale_and_bilevel_replicate_the_channel():
    gray = np.array([[0, 10], [200, 255]], dtype=np.uint8)
    out = _rgb(Image.fromarray(gray, mode="L"))
    assert np.array_equal(out, np.repeat(gray[..., None], 3, axis=2))
    assert np.array_equal(
        _rgb(Image.fromarray(gray > 100).convert("1"))[..., 0], (gray > 100) * 255
    )


def test_alpha_is_composited_over_white():
    rgba = np.array(
        [[[255, 0, 0, 255], [0, 0, 255, 0]], [[0, 255, 0, 128], [0, 0, 0, 0]]], np.uint8
    )
    out = _rgb(Image.fromarray(rgba, mode="RGBA")).astype(int)
    assert out[0, 0].tolist() == [255, 0, 0]  # opaque: unchanged
    assert out[0, 1].tolist() == [255, 255, 255] == out[1, 1].tolist()  # transparent: white
    assert np.abs(out[1, 0] - [127, 255, 127]).max() <= 1  # half green over white
    la = Image.fromarray(np.array([[[50, 255], [50, 0]]], np.uint8), mode="LA")
    assert _rgb(la)[0, :, 0].tolist() == [50, 255]


def test_palette_with_and_without_transparency():
    palette = Image.fromarray(pixels(1)).quantize(colors=4)
    assert palette.mode == "P"
    assert np.array_equal(_rgb(palette), np.asarray(palette.convert("RGB")))
    palette.info["transparency"] = 0
    index = np.asarray(palette)
    out = _rgb(palette)
    assert (out[index == 0] == 255).all()  # the transparent index shows white
    assert np.array_equal(out[index != 0], np.asarray(palette.convert("RGB"))[index != 0])


def test_16_bit_images_are_scaled_not_clipped():
    values = np.array([[0, 257], [32896, 65535]], dtype="<u2")
    image = Image.frombytes("I;16", (2, 2), values.tobytes())
    assert image.mode == "I;16"
    assert _rgb(image)[..., 0].tolist() == [[0, 1], [128, 255]]
    # A 16-bit PNG (opened as I or I;16 depending on Pillow) round-trips to the same values.
    png = decode_image(encode_16bit_png(values))
    assert np.asarray(png)[..., 1].tolist() == [[0, 1], [128, 255]]


def encode_16bit_png(values: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.frombytes("I;16", values.shape[::-1], values.tobytes()).save(buf, format="PNG")
    return buf.getvalue()


def test_float_and_cmyk():
    unit = Image.fromarray(np.array([[0.0, 0.5], [1.0, 0.25]], np.float32), mode="F")
    assert _rgb(unit)[..., 2].tolist() == [[0, 128], [255, 64]]
    wide = Image.fromarray(np.array([[-1.0, 0.0], [1.0, 3.0]], np.float32), mode="F")
    assert _rgb(wide)[..., 0].tolist() == [[0, 64], [128, 255]]  # min-max stretched
    cmyk = Image.new("CMYK", (2, 2), (0, 255, 255, 0))  # no black, full magenta + yellow
    assert _rgb(cmyk)[0, 0].tolist() == [255, 0, 0]


def test_decode_reads_png_bytes_and_paths(tmp_path):
    array = pixels(2)
    assert np.array_equal(np.asarray(decode_image(encode(array))), array)
    (tmp_path / "a.png").write_bytes(encode(array))
    assert np.array_equal(np.asarray(decode_image(tmp_path / "a.png")), array)


def test_bad_samples_policy_warns_once_and_counts():
    bad = BadSamples("skip", "data.dataset.params")
    with pytest.warns(UserWarning, match="a.jpg.*broken"):
        bad.handle("a.jpg", "broken")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bad.handle("b.jpg", "broken")  # counted, no second warning
    assert bad.count == 2
    with pytest.raises(DataError, match=r"cannot read c.jpg: broken[\s\S]*on_error=skip"):
        BadSamples("raise", "data.dataset.params").handle("c.jpg", "broken")
    with pytest.raises(ValueError, match="on_error"):
        BadSamples("ignore", "x")
