"""Judges of generated images: accurate on real data (held-out combinations included), factorised,
deterministic, cached, and KID features that separate real from degraded images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from modalforge.evaluation import kid
from modalforge_apps.generation import DigitsJudge, ShapesJudge
from modalforge_apps.generation import nets as nets_module
from modalforge_apps.generation.descriptors import describe
from modalforge_datasets import DigitsCaptionsDataset, ShapesDataset
from modalforge_datasets.shapes import COLORS, SHAPES, render


@pytest.fixture(scope="module")
def digits_judge() -> DigitsJudge:
    return DigitsJudge(epochs=3)


@pytest.fixture(scope="module")
def shapes_judge() -> ShapesJudge:
    return ShapesJudge(image_size=16, train_samples=1040, epochs=1)


@pytest.fixture(scope="module")
def shapes_data() -> ShapesDataset:
    return ShapesDataset(image_size=16, train_samples=520, test_samples=260, heldout_samples=200)


def _labels(t: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: t[name] for name in ("color", "shape", "position")}


def test_digits_judge_is_the_classic_svc_on_the_captions_split(digits_judge):
    captions = DigitsCaptionsDataset(image_size=32)
    assert np.array_equal(digits_judge.data.train_indices, captions.train_indices)
    assert np.array_equal(digits_judge.data.test_indices, captions.test_indices)
    assert digits_judge.svc.get_params()["gamma"] == 0.001
    assert digits_judge.test_accuracy >= 0.98  # the classic sklearn digits SVC
    # 32-px captioned digits are area-resized back to 8x8: the same accuracy
    test = captions.digits.load("test").tensors
    assert digits_judge.score(test["image"], test["target"]) >= 0.98
    images32, labels32 = digits_judge.real_images("test", image_size=32)
    assert torch.equal(images32, test["image"]) and torch.equal(labels32, test["target"])
    wrong = (test["target"] + 1) % 10
    assert digits_judge.score(test["image"], wrong) < 0.02


def test_digits_judge_input_checks(digits_judge):
    assert digits_judge.predict(torch.zeros(0, 1, 16, 16)).shape == (0,)
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        digits_judge.predict(torch.zeros(4, 3, 8, 8))
    with pytest.raises(ValueError, match="NaN"):
        digits_judge.features(torch.full((2, 1, 8, 8), float("nan")))


def test_digits_kid_features_floor_and_degradations(digits_judge):
    x_tr, y_tr = digits_judge.real_images("train")
    x_te, _ = digits_judge.real_images("test")
    f_tr = digits_judge.features(x_tr)
    assert f_tr.shape == (len(x_tr), 128 + 64)
    assert f_tr.pow(2).mean().item() == pytest.approx(1.0, rel=1e-4)  # scaled on real train

    def k(x):
        return kid(f_tr, digits_judge.features(x), subsets=20, generator=torch.Generator())[0]

    floor = k(x_te)
    noisy = x_te + 0.2 * torch.randn(x_te.shape, generator=torch.Generator().manual_seed(0))
    blurred = F.avg_pool2d(F.pad(x_te, (1, 1, 1, 1), mode="replicate"), 3, 1)
    assert abs(floor) < 0.01
    assert k(noisy.clamp(0, 1)) > floor + 0.02  # the pixel block sees noise
    assert k(blurred) > floor + 0.1
    assert k(torch.rand(100, 1, 8, 8)) > 1.0


def test_shapes_judge_reads_real_heldout_combinations(shapes_judge, shapes_data):
    for split in ("test", "heldout"):
        t = shapes_data.tensors(split)
        scores = shapes_judge.score(t["image"], _labels(t))
        assert min(scores[a] for a in ("color", "shape", "position")) >= 0.95, (split, scores)
    # 32-px images are area-resized to the judge's 16 px
    big = ShapesDataset(image_size=32, heldout_samples=100).tensors("heldout")
    assert shapes_judge.score(big["image"], _labels(big))["all"] >= 0.95


def test_shapes_judge_is_robust_to_noise_and_flags_empty_images(shapes_judge, shapes_data):
    t = shapes_data.tensors("heldout")
    g = torch.Generator().manual_seed(0)
    noisy = (t["image"] + 0.05 * torch.randn(t["image"].shape, generator=g)).clamp(0, 1)
    assert shapes_judge.score(noisy, _labels(t))["all"] >= 0.9
    empty = shapes_judge.predict(torch.zeros(3, 3, 16, 16))
    assert all(torch.equal(v, torch.full((3,), -1)) for v in empty.values())
    assert shapes_judge.predict(torch.zeros(0, 3, 16, 16))["shape"].shape == (0,)


def test_shape_descriptor_ignores_colour_position_and_brightness():
    """The same shape drawn in every colour at one place gives one patch up to rounding, so the
    shape classifier cannot learn which colours go with which shapes."""
    n = len(COLORS)
    patches = []
    for shape in range(len(SHAPES)):
        images = render(np.arange(n), np.full(n, shape), np.full(n, 4), 32, _SameDraws())
        images[0] *= 0.6  # dimmer
        d = describe(torch.from_numpy(images))
        assert np.allclose(d.centroid, d.centroid[:1], atol=1e-6)
        assert np.allclose(d.patch, d.patch[:1], atol=1e-5)
        patches.append(d.patch[0])
    diffs = [np.abs(a - b).sum() for i, a in enumerate(patches) for b in patches[i + 1 :]]
    assert min(diffs) > 5.0  # different shapes give clearly different patches


class _SameDraws(np.random.Generator):
    """A generator whose every draw repeats one value along the first axis: the same jitter for
    every image."""

    def __init__(self) -> None:
        super().__init__(np.random.PCG64(0))

    def uniform(self, low=0.0, high=1.0, size=None):  # type: ignore[override]
        value = super().uniform(low, high, size=(1,) + tuple(np.atleast_1d(size)[1:]))
        return np.broadcast_to(value, size).copy()


def test_shapes_kid_features_separate_heldout_and_noisy_from_real(shapes_judge, shapes_data):
    f_tr = shapes_judge.features(shapes_data.tensors("train")["image"])
    assert f_tr.shape == (520, 128 + 3 * 16 * 16)

    def k(x):
        return kid(f_tr, shapes_judge.features(x), subsets=20, generator=torch.Generator())[0]

    test = shapes_data.tensors("test")["image"]
    floor = k(test)
    g = torch.Generator().manual_seed(0)
    assert abs(floor) < 0.03
    assert k(shapes_data.tensors("heldout")["image"]) > floor + 0.05  # other combinations
    assert k((test + 0.1 * torch.randn(test.shape, generator=g)).clamp(0, 1)) > floor + 0.1


def test_judges_are_deterministic_and_cached(tmp_path, monkeypatch, shapes_data):
    x = shapes_data.tensors("test")["image"][:50]
    kw = {"image_size": 16, "train_samples": 130, "epochs": 1}
    a = ShapesJudge(**kw, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("shapes16-*.safetensors"))) == 1
    assert torch.equal(a.features(x), ShapesJudge(**kw).features(x))

    def no_training(*args, **kwargs):
        raise AssertionError("trained again instead of loading the cache")

    monkeypatch.setattr(nets_module, "_train", no_training)
    cached = ShapesJudge(**kw, cache_dir=tmp_path)
    assert torch.equal(cached.features(x), a.features(x))
    with pytest.raises(AssertionError, match="trained again"):
        ShapesJudge(**{**kw, "epochs": 2}, cache_dir=tmp_path)  # another config: another file
    monkeypatch.undo()
    (file,) = tmp_path.glob("shapes16-*.safetensors")
    file.write_bytes(b"truncated")
    refit = ShapesJudge(**kw, cache_dir=tmp_path)  # a broken cache is refitted and replaced
    assert torch.equal(refit.features(x), a.features(x)) and file.stat().st_size > 1000
