"""The MONAI steps against MONAI itself: same outputs (deterministic and, for one seed, random),
declared output shapes, the affine flowing from orientation to spacing, and bad parameters."""

from __future__ import annotations

import pytest
import torch

monai = pytest.importorskip("monai")
from monai import transforms as T  # noqa: E402
from monai.data import MetaTensor  # noqa: E402

from modalforge.data.transforms import TransformChain  # noqa: E402
from modalforge.modality import Modality  # noqa: E402
from modalforge_medical.transforms import AUGMENT, PREPROCESS  # noqa: E402

VOL = Modality("ct", "volume3d", (1, 8, 10, 12))
CUBE = Modality("ct", "volume3d", (1, 8, 8, 8))
IMG = Modality("xray", "image2d", (1, 12, 10))
LABELS = (("L", "R"), ("P", "A"), ("I", "S"))
AFFINE = torch.tensor(
    [[-1.5, 0.0, 0.0, 10.0], [0.0, 0.8, 0.0, -4.0], [0.0, 0.0, 2.5, 3.0], [0.0, 0.0, 0.0, 1.0]],
    dtype=torch.float64,
)


def _volume(modality=VOL, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(modality.shape, generator=g) * 1000 - 300  # HU-like range
    if modality.spatial_dims == 3:
        return MetaTensor(x, affine=AFFINE.clone())
    return MetaTensor(x, affine=torch.eye(3, dtype=torch.float64))


def _ours(name, modality, **params):
    return {**PREPROCESS, **AUGMENT}[name](modality, **params)


def _theirs(cls, key, sample, seed=None, **kwargs):
    op = getattr(T, cls)(keys=[key], **kwargs)
    if seed is not None:
        op.set_random_state(seed=seed)
    return op({key: sample})[key]


# (our name, our params, MONAI class, MONAI kwargs)
DETERMINISTIC = [
    ("orientation", {"axcodes": "LPS"}, "Orientationd", {"axcodes": "LPS", "labels": LABELS}),
    ("spacing", {"pixdim": [2.0, 1.0, 3.0]}, "Spacingd", {"pixdim": (2.0, 1.0, 3.0)}),
    (
        "scale_intensity_range",
        {"a_min": -100, "a_max": 300, "b_min": 0.0, "b_max": 1.0, "clip": True},
        "ScaleIntensityRanged",
        {"a_min": -100, "a_max": 300, "b_min": 0.0, "b_max": 1.0, "clip": True},
    ),
    (
        "ct_window",
        {"level": -600, "width": 1500},
        "ScaleIntensityRanged",
        {"a_min": -1350, "a_max": 150, "b_min": 0.0, "b_max": 1.0, "clip": True},
    ),
    ("scale_intensity", {"minv": -1.0, "maxv": 1.0}, "ScaleIntensityd", {"minv": -1, "maxv": 1}),
    ("normalize_intensity", {"nonzero": True}, "NormalizeIntensityd", {"nonzero": True}),
    (
        "crop_foreground",
        {"threshold": 500.0, "margin": 1},
        "CropForegroundd",
        {"source_key": "ct", "select_fn": lambda x: x > 500.0, "margin": 1},
    ),
    ("spatial_resize", {"spatial_size": [4, 5, 6]}, "Resized", {"spatial_size": (4, 5, 6)}),
    ("spatial_pad", {"spatial_size": 11}, "SpatialPadd", {"spatial_size": (11, 11, 11)}),
    (
        "resize_with_pad_or_crop",
        {"spatial_size": [6, 12, 9]},
        "ResizeWithPadOrCropd",
        {"spatial_size": (6, 12, 9)},
    ),
    ("center_spatial_crop", {"roi_size": 7}, "CenterSpatialCropd", {"roi_size": (7, 7, 7)}),
]


@pytest.mark.parametrize(("name", "params", "cls", "kwargs"), DETERMINISTIC, ids=lambda v: str(v))
def test_deterministic_steps_equal_monai_and_declare_their_shape(name, params, cls, kwargs):
    step = _ours(name, VOL, **params)
    got = step(_volume())
    want = _theirs(cls, "ct", _volume(), **kwargs)
    assert isinstance(got, MetaTensor)  # the metadata flows on to the next step
    torch.testing.assert_close(got.as_tensor(), want.as_tensor())
    torch.testing.assert_close(got.affine, want.affine)
    declared = step.output().shape
    assert len(declared) == 4 and declared[0] == 1
    for size, actual in zip(declared[1:], got.shape[1:], strict=True):
        assert size is None or size == actual  # a declared size is the real one
    fixed = {"spatial_resize", "resize_with_pad_or_crop", "spatial_pad", "center_spatial_crop"}
    if name in fixed:
        assert declared == tuple(got.shape)
    if name in {"spacing", "crop_foreground", "orientation"}:
        assert declared[1:] == (None, None, None)  # depends on each sample's data


# (our name, our params, MONAI class, MONAI kwargs)
RANDOM = [
    (
        "rand_flip",
        {"prob": 0.5, "spatial_axis": [0, 2]},
        "RandFlipd",
        {"prob": 0.5, "spatial_axis": [0, 2]},
    ),
    (
        "rand_rotate90",
        {"prob": 0.7, "spatial_axes": [1, 2]},
        "RandRotate90d",
        {"prob": 0.7, "spatial_axes": (1, 2)},
    ),
    (
        "rand_rotate",
        {"range_x": 0.4, "range_z": 0.2, "prob": 0.8},
        "RandRotated",
        {"range_x": 0.4, "range_z": 0.2, "prob": 0.8, "keep_size": True},
    ),
    (
        "rand_affine",
        {"prob": 0.9, "rotate_range": 0.3, "scale_range": 0.1},
        "RandAffined",
        {"prob": 0.9, "rotate_range": 0.3, "scale_range": 0.1},
    ),
    (
        "rand_scale_intensity",
        {"factors": 0.3, "prob": 0.9},
        "RandScaleIntensityd",
        {"factors": 0.3, "prob": 0.9},
    ),
    (
        "rand_shift_intensity",
        {"offsets": [-5.0, 5.0], "prob": 0.9},
        "RandShiftIntensityd",
        {"offsets": (-5.0, 5.0), "prob": 0.9},
    ),
    (
        "rand_gaussian_noise",
        {"prob": 0.9, "std": 3.0},
        "RandGaussianNoised",
        {"prob": 0.9, "std": 3.0},
    ),
    ("rand_gaussian_smooth", {"prob": 0.9}, "RandGaussianSmoothd", {"prob": 0.9}),
]


@pytest.mark.parametrize(("name", "params", "cls", "kwargs"), RANDOM, ids=lambda v: str(v))
def test_random_steps_equal_monai_seeded_from_torch_and_are_reproducible(name, params, cls, kwargs):
    modality = CUBE
    step = _ours(name, modality, **params)
    assert step.random and step.output() == modality  # augmentation keeps the shape
    outputs = []
    for seed in range(4):
        torch.manual_seed(seed)
        got = step(_volume(modality))
        torch.manual_seed(seed)
        drawn = int(torch.randint(2**31 - 1, ()).item())  # what the step drew
        want = _theirs(cls, "ct", _volume(modality), seed=drawn, **kwargs)
        torch.testing.assert_close(got.as_tensor(), want.as_tensor())
        torch.manual_seed(seed)
        torch.testing.assert_close(step(_volume(modality)), got)  # same torch seed: same output
        outputs.append(got.as_tensor())
    assert any(not torch.equal(outputs[0], o) for o in outputs[1:])  # other seeds: other outputs


def test_rand_spatial_crop_is_a_random_zoom_that_keeps_the_shape():
    step = _ours("rand_spatial_crop", VOL, roi_size=[4, 5, 6])
    torch.manual_seed(3)
    got = step(_volume())
    torch.manual_seed(3)
    drawn = int(torch.randint(2**31 - 1, ()).item())
    crop = _theirs("RandSpatialCropd", "ct", _volume(), seed=drawn, roi_size=(4, 5, 6))
    want = _theirs("Resized", "ct", crop, spatial_size=(8, 10, 12))
    assert got.shape == (1, 8, 10, 12) and step.output() == VOL
    torch.testing.assert_close(got.as_tensor(), want.as_tensor())
    with pytest.raises(ValueError, match="roi_size .* is larger"):
        _ours("rand_spatial_crop", VOL, roi_size=9)


def test_spacing_after_orientation_uses_the_reoriented_affine():
    chain = TransformChain(
        [_ours("orientation", VOL, axcodes="RAS"), _ours("spacing", VOL, pixdim=1.0)]
    )
    got = chain(_volume())
    want = T.Compose(
        [
            T.Orientationd(keys=["ct"], axcodes="RAS", labels=LABELS),
            T.Spacingd(keys=["ct"], pixdim=1.0),
        ]
    )({"ct": _volume()})["ct"]
    assert type(got) is torch.Tensor  # the chain's output is a plain tensor
    torch.testing.assert_close(got, want.as_tensor())
    # 1.5, 0.8 and 2.5 mm voxels → 1 mm: (n - 1) × spacing + 1 voxels along each axis
    assert got.shape == (1, 12, 8, 28)
    with pytest.warns(UserWarning, match="assuming affine to be identity"):
        plain = _ours("spacing", VOL, pixdim=1.0)(_volume().as_tensor())  # no affine
    assert plain.shape == (1, 8, 10, 12)


def test_two_dimensional_images():
    got = _ours("spatial_resize", IMG, spatial_size=[6, 5], mode="bilinear")(_volume(IMG))
    assert got.shape == (1, 6, 5)
    flip = _ours("rand_flip", IMG, prob=1.0, spatial_axis=1)
    torch.manual_seed(0)
    torch.testing.assert_close(flip(_volume(IMG)).as_tensor(), _volume(IMG).flip(2).as_tensor())
    with pytest.raises(ValueError, match="pixdim: 3 values for the 2 spatial axes"):
        _ours("spacing", IMG, pixdim=[1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="trilinear"):
        _ours("spatial_resize", IMG, spatial_size=4, mode="trilinear")
    with pytest.raises(ValueError, match="range_y/range_z"):
        _ours("rand_rotate", IMG, range_y=0.2)
    with pytest.raises(ValueError, match="axcodes"):
        _ours("orientation", IMG, axcodes="RAS")


def test_rand_rotate90_of_unequal_axes_does_not_claim_a_fixed_shape():
    step = _ours("rand_rotate90", VOL, spatial_axes=[0, 1])
    assert step.output().shape == (1, None, None, None)
    assert _ours("rand_rotate90", CUBE).output() == CUBE


def test_the_plugin_does_not_import_monai_when_it_loads():
    import subprocess
    import sys

    code = (
        "import sys; from modalforge.plugin import get_registry; r = get_registry(); "
        "assert 'spacing' in r.names('transform'); print('monai' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
