"""The ``volume`` loader on real files: pydicom's CT and MR test files (single slices and series
built from them), NIfTI written with nibabel; values against pydicom / nibabel / MONAI."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from monai.data import MetaTensor, PydicomReader
from monai.transforms import LoadImage
from PIL import Image
from torch.utils.data import DataLoader, default_collate

from modalforge.engine.data import collate_samples
from modalforge.plugin import get_registry
from modalforge_datasets import ManifestDataset
from modalforge_medical.readers import SAFE_META_KEYS
from modalforge_medical.readers.headers import dicom_affine
from tests.plugins.modalforge_medical.readers.medical_files import (
    expected_pixels,
    source,
    write_csv,
    write_nifti,
    write_series,
)

FIELD = "data.dataset.params.modalities.ct"


def volumes(tmp_path, cells, params=None, labels=None, **kw):
    """A ``manifest`` data set of one ``volume`` column ``ct`` (and a ``label`` target)."""
    header, rows = ["ct"], [[c] for c in cells]
    if labels is not None:
        header.append("label")
        rows = [[c, y] for c, y in zip(cells, labels, strict=True)]
    path = write_csv(tmp_path / "m.csv", header, rows)
    target = {"column": "label"} if labels is not None else None
    modalities = {"ct": {"loader": "volume", "column": "ct", "params": params or {}}}
    kw.setdefault("on_error", "raise")
    return ManifestDataset(get_registry(), modalities, target=target, path=path, **kw)


def samples(ds):
    rows = ds.load("all")
    return [rows[i]["ct"] for i in range(len(rows))]


def test_pydicom_ct_and_mr_files_read_as_pydicom_with_the_rescale_monai_applies(tmp_path):
    for name in ("CT_small.dcm", "MR_small.dcm"):
        source(name).save_as(tmp_path / name)
    ds = volumes(tmp_path, ["CT_small.dcm", "MR_small.dcm"], {"spatial_dims": 2})
    assert ds.modalities["ct"].kind == "image2d"
    assert ds.modalities["ct"].shape == (1, None, None)  # 128² and 64²
    ct, mr = samples(ds)
    assert isinstance(ct, MetaTensor) and ct.dtype == torch.float32
    ct_ds, mr_ds = source("CT_small.dcm"), source("MR_small.dcm")
    assert ct.shape == (1, ct_ds.Columns, ct_ds.Rows) and mr.shape == (1, 64, 64)
    np.testing.assert_array_equal(ct[0].numpy(), expected_pixels(ct_ds))
    np.testing.assert_array_equal(mr[0].numpy(), expected_pixels(mr_ds))
    assert float(ct_ds.RescaleIntercept) == -1024.0  # so the rescale really changed the values
    assert ct.min() < ct_ds.pixel_array.min()
    assert ct.meta["modality"] == "CT" and mr.meta["modality"] == "MR"
    np.testing.assert_allclose(ct.meta["spacing"], [0.661468, 0.661468])


# the reference LoadImage below builds MONAI's GPU DICOM reader too, which warns of its absent codec
@pytest.mark.filterwarnings("ignore:NvImgCodecPydicomReader")
def test_dicom_series_stacks_in_instance_order_with_monais_affine(tmp_path):
    numbers = [3, 1, 4, 2]  # file order differs from slice order
    slices = write_series(
        tmp_path / "s1", n=4, numbers=numbers, offsets=[5.0 * (k - 1) for k in numbers]
    )
    ds = volumes(tmp_path, ["s1"])
    assert ds.modalities["ct"].kind == "volume3d"
    assert ds.modalities["ct"].shape == (1, 128, 128, 4)
    assert ds.modalities["ct"].metadata["orientation"] == "LPS"
    (volume,) = samples(ds)
    ordered = sorted(slices, key=lambda s: int(s.InstanceNumber))
    expected = np.stack([expected_pixels(s) for s in ordered], axis=-1)
    np.testing.assert_array_equal(volume[0].numpy(), expected)
    monai = LoadImage(image_only=True, ensure_channel_first=True)(
        str(tmp_path / "s1"), reader=PydicomReader(fname_regex=None)
    )
    torch.testing.assert_close(volume.affine, monai.affine.to(torch.float64))
    np.testing.assert_allclose(dicom_affine(ordered[0], ordered[-1], 4), monai.affine.numpy())
    np.testing.assert_allclose(volume.meta["spacing"], [0.661468, 0.661468, 5.0])
    np.testing.assert_array_equal(volume.meta["spatial_shape"], [128, 128, 4])


def test_nifti_written_with_nibabel_reads_back_equal(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 6, 7)).astype(np.float32)
    b = rng.normal(size=(5, 6, 8)).astype(np.float32)
    affine_a = np.array([[2.0, 0, 0, 10], [0, 3, 0, -4], [0, 0, 4, 1], [0, 0, 0, 1]])
    affine_b = np.diag([-1.5, -1.5, 2.0, 1.0])
    write_nifti(tmp_path / "a.nii.gz", a, affine_a)
    write_nifti(tmp_path / "b.nii", b, affine_b)
    ds = volumes(tmp_path, ["a.nii.gz", "b.nii"])
    mod = ds.modalities["ct"]
    assert mod.shape == (1, 5, 6, None) and mod.metadata["spacing"] is None
    assert mod.metadata["orientation"] is None  # RAS and LPS
    va, vb = samples(ds)
    np.testing.assert_array_equal(va[0].numpy(), a)
    np.testing.assert_array_equal(vb[0].numpy(), b)
    np.testing.assert_allclose(va.affine.numpy(), affine_a)
    np.testing.assert_allclose(vb.affine.numpy(), affine_b)
    np.testing.assert_allclose(va.meta["spacing"], [2, 3, 4])
    np.testing.assert_allclose(vb.meta["spacing"], [1.5, 1.5, 2])
    assert (va.meta["orientation"], vb.meta["orientation"]) == ("RAS", "LPS")
    assert "modality" not in va.meta


def test_channels_last_nifti_becomes_channel_first_and_dtype_applies(tmp_path):
    a = np.arange(4 * 5 * 6 * 2, dtype=np.float32).reshape(4, 5, 6, 2)
    write_nifti(tmp_path / "c.nii.gz", a)
    ds = volumes(tmp_path, ["c.nii.gz"], {"dtype": "float64"})
    assert ds.modalities["ct"].shape == (2, 4, 5, 6)
    assert ds.modalities["ct"].dtype == "float64"
    (v,) = samples(ds)
    assert v.dtype == torch.float64
    np.testing.assert_array_equal(v.numpy(), np.moveaxis(a, -1, 0))


def test_a_nifti_slice_stored_as_x_y_1_reads_as_2d(tmp_path):
    a = np.arange(30, dtype=np.float32).reshape(5, 6, 1)
    write_nifti(tmp_path / "s.nii.gz", a, np.diag([0.5, 0.7, 1.0, 1.0]))
    ds = volumes(tmp_path, ["s.nii.gz"], {"spatial_dims": 2})
    assert ds.modalities["ct"].shape == (1, 5, 6)
    (v,) = samples(ds)
    assert v.shape == (1, 5, 6)
    np.testing.assert_array_equal(v[0].numpy(), a[..., 0])


def test_metadata_holds_only_the_allow_list_and_no_path(tmp_path):
    nifti = write_nifti(tmp_path / "patient-doe" / "scan.nii.gz", np.ones((3, 4, 5), np.float32))
    import nibabel as nib

    image = nib.load(str(nifti))
    image.header["descrip"] = b"MARKER-in-descrip"
    image.header["db_name"] = b"MARKER-db"
    nib.save(image, str(nifti))
    write_series(tmp_path / "patient-roe", n=3, phi="MARKER-PHI")
    ds = volumes(
        tmp_path, ["patient-doe/scan.nii.gz", "patient-roe"], {"require_same_spacing": False}
    )
    for row, v in enumerate(samples(ds)):
        assert set(v.meta) <= set(SAFE_META_KEYS), set(v.meta) - set(SAFE_META_KEYS)
        assert v.meta["row"] == row and v.meta["filename_or_obj"] == f"manifest row {row}"
        text = repr(v.meta) + repr(v.applied_operations)
        assert "patient" not in text and "MARKER" not in text and str(tmp_path) not in text


def test_manifest_with_volume_loader_end_to_end_and_batches(tmp_path):
    for k in range(4):
        write_nifti(tmp_path / f"v{k}.nii.gz", np.full((3, 4, 5), k, np.float32))
    rows = [
        [f"v{k}.nii.gz", "yes" if k % 2 else "no", "train" if k < 3 else "test"] for k in range(4)
    ]
    path = write_csv(tmp_path / "m.csv", ["ct", "label", "split"], rows)
    ds = ManifestDataset(
        get_registry(),
        {"ct": {"loader": "volume", "column": "ct", "params": {"require_same_spacing": True}}},
        target={"column": "label"},
        path=path,
    )
    assert ds.splits == ("train", "test")
    assert ds.modalities["ct"].shape == (1, 3, 4, 5)
    assert ds.modalities["ct"].metadata == {
        "spacing": (1.0, 1.0, 1.0),
        "orientation": "RAS",
        "formats": ["nifti"],
    }
    train = ds.load("train")
    batch = default_collate([train[i] for i in range(3)])
    assert batch["ct"].shape == (3, 1, 3, 4, 5)
    torch.testing.assert_close(
        batch["ct"].as_tensor().mean((1, 2, 3, 4)), torch.tensor([0.0, 1, 2])
    )
    assert batch["target"].tolist() == [0, 1, 0]
    assert int(ds.load("test")[0]["ct"].meta["row"]) == 3


def test_nan_to_replaces_nan_and_inf(tmp_path):
    a = np.ones((3, 4, 5), np.float32)
    a[0, 0, 0], a[1, 1, 1], a[2, 2, 2] = np.nan, np.inf, -np.inf
    write_nifti(tmp_path / "n.nii.gz", a)
    (v,) = samples(volumes(tmp_path, ["n.nii.gz"], {"nan_to": -5.0}))
    assert torch.isfinite(v).all()
    assert v[0, 0, 0, 0] == v[0, 1, 1, 1] == v[0, 2, 2, 2] == -5.0
    assert float(v.sum()) == 60 - 3 - 15


def test_xray_style_png_reads_through_the_image_loader_in_mode_l(tmp_path):
    """2-D X-ray-style images need no new loader: ``image`` with ``mode: L``."""
    gray = (np.arange(20 * 30) % 256).astype(np.uint8).reshape(20, 30)
    Image.fromarray(gray, mode="L").save(tmp_path / "x.png")
    wide = (np.arange(20 * 30) * 100).astype(np.uint16).reshape(20, 30)
    Image.fromarray(wide).save(tmp_path / "w.png")  # 16-bit grayscale (I;16)
    path = write_csv(tmp_path / "m.csv", ["xray"], [["x.png"], ["w.png"]])
    ds = ManifestDataset(
        get_registry(),
        {"xray": {"loader": "image", "column": "xray", "params": {"mode": "L"}}},
        path=path,
    )
    assert ds.modalities["xray"].shape == (1, None, None)
    x, w = (ds.load("all")[i]["xray"] for i in range(2))
    assert x.mode == w.mode == "L"
    np.testing.assert_array_equal(np.asarray(x), gray)
    np.testing.assert_array_equal(np.asarray(w), np.rint(wide * (255 / 65535)).astype(np.uint8))


def test_loader_pickles_and_batches_in_dataloader_workers(tmp_path):
    for k in range(4):
        write_nifti(tmp_path / f"v{k}.nii.gz", np.full((3, 4, 5), k, np.float32))
    ds = volumes(tmp_path, [f"v{k}.nii.gz" for k in range(4)])
    rows = ds.load("all")
    rows[0]  # builds MONAI's LoadImage in this process
    clone = pickle.loads(pickle.dumps(ds.loaders["ct"]))
    torch.testing.assert_close(clone.load(2).as_tensor(), torch.full((1, 3, 4, 5), 2.0))
    loader = DataLoader(rows, batch_size=2, num_workers=2, collate_fn=collate_samples)
    batches = [b["ct"] for b in loader]
    assert [tuple(b.shape) for b in batches] == [(2, 1, 3, 4, 5)] * 2
    assert all(type(b) is torch.Tensor for b in batches)  # collate drops the metadata
    means = torch.cat([b.mean((1, 2, 3, 4)) for b in batches])
    torch.testing.assert_close(means, torch.tensor([0.0, 1, 2, 3]))


def test_the_plugin_imports_no_medical_library():
    code = (
        "import sys, modalforge_medical, modalforge_medical.readers; "
        "heavy = ('monai', 'nibabel', 'pydicom'); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
