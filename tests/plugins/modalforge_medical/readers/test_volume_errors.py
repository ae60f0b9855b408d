"""The issue's bad input for volume files: each a DataError naming the file, the manifest row and
the spec field with the fix, or (unreadable at load time) skipped and counted with
``on_error: skip``."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from modalforge.errors import DataError
from tests.plugins.modalforge_medical.readers.medical_files import (
    source,
    write_csv,
    write_nifti,
    write_series,
)
from tests.plugins.modalforge_medical.readers.test_volume import FIELD, volumes


def _error(tmp_path, cells, params=None, **kw) -> str:
    with pytest.raises(DataError) as info:
        volumes(tmp_path, cells, params, **kw)
    return str(info.value)


def _cube(tmp_path, name, shape=(3, 4, 5), affine=None):
    return write_nifti(tmp_path / name, np.ones(shape, np.float32), affine)


def test_a_missing_file_names_row_column_and_path(tmp_path):
    _cube(tmp_path, "a.nii.gz")
    msg = _error(tmp_path, ["a.nii.gz", "gone.nii.gz"])
    assert f"line 3 of manifest {tmp_path / 'm.csv'}" in msg
    assert f"volume {tmp_path / 'gone.nii.gz'} (column 'ct') does not exist" in msg
    assert "fix: fix the path" in msg
    msg = _error(tmp_path, ["a.nii.gz", ""], labels=["x", "y"])
    assert "line 3 of manifest" in msg and "no volume path in column 'ct'" in msg


def test_a_2d_file_given_to_a_3d_spec_and_the_reverse(tmp_path):
    source("CT_small.dcm").save_as(tmp_path / "one.dcm")
    msg = _error(tmp_path, ["one.dcm"])
    assert "line 2 of manifest" in msg and "column 'ct'" in msg
    assert f"{tmp_path / 'one.dcm'} is a 2-D image (one slice) of shape (128, 128)" in msg
    assert f"but {FIELD} reads 3-D data (params.spatial_dims: 3)" in msg
    assert f"fix: set {FIELD}.params.spatial_dims: 2 if every row is 2-D" in msg
    write_nifti(tmp_path / "flat.nii.gz", np.ones((4, 5), np.float32))
    assert "is a 2-D image (one slice) of shape (4, 5)" in _error(tmp_path, ["flat.nii.gz"])
    _cube(tmp_path, "cube.nii.gz")
    msg = _error(tmp_path, ["cube.nii.gz"], {"spatial_dims": 2})
    assert "is a 3-D volume of shape (3, 4, 5), but" in msg and "reads 2-D data" in msg
    assert "spatial_dims: 3 if every row is 3-D" in msg


def test_inconsistent_spacing_when_the_spec_asks_for_one(tmp_path):
    _cube(tmp_path, "a.nii.gz")
    _cube(tmp_path, "b.nii.gz", affine=np.diag([1.0, 1.0, 2.5, 1.0]))
    ds = volumes(tmp_path, ["a.nii.gz", "b.nii.gz"])  # allowed unless asked for
    assert ds.modalities["ct"].metadata["spacing"] is None
    msg = _error(tmp_path, ["a.nii.gz", "b.nii.gz"], {"require_same_spacing": True})
    assert "line 3 of manifest" in msg and str(tmp_path / "b.nii.gz") in msg
    assert "has voxel spacing 1×1×2.5 mm, the first row's 1×1×1 mm" in msg
    assert f"({FIELD}.params.require_same_spacing is true)" in msg
    assert "fix: resample every volume to one spacing with the `spacing` transform" in msg
    _cube(tmp_path, "c.nii.gz", affine=np.diag([1.0, 1.0, 1.0005, 1.0]))  # within tolerance
    volumes(tmp_path, ["a.nii.gz", "c.nii.gz"], {"require_same_spacing": True})


def test_inconsistent_orientation_when_the_spec_asks_for_one(tmp_path):
    _cube(tmp_path, "a.nii.gz")
    _cube(tmp_path, "b.nii.gz", affine=np.diag([-1.0, -1.0, 1.0, 1.0]))
    volumes(tmp_path, ["a.nii.gz", "b.nii.gz"])
    msg = _error(tmp_path, ["a.nii.gz", "b.nii.gz"], {"require_same_orientation": True})
    assert "has orientation LPS, the first row's RAS" in msg and "line 3" in msg
    assert "fix: reorient every volume with the `orientation` transform (e.g. axcodes: RAS)" in msg


def test_different_channel_counts_across_rows(tmp_path):
    _cube(tmp_path, "a.nii.gz")
    _cube(tmp_path, "b.nii.gz", shape=(3, 4, 5, 2))
    msg = _error(tmp_path, ["a.nii.gz", "b.nii.gz"])
    assert "has 2 channel(s), the first row's volume 1" in msg


def test_a_dicom_folder_with_mixed_series_names_counts_not_uids(tmp_path):
    slices = write_series(tmp_path / "mix", n=5, series=["a", "a", "b", "a", "b"])
    msg = _error(tmp_path, ["mix"])
    assert f"{tmp_path / 'mix'} mixes 2 DICOM series (3 + 2 slices, by SeriesInstanceUID)" in msg
    assert "put each series in its own folder" in msg and "line 2 of manifest" in msg
    assert all(str(s.SeriesInstanceUID) not in msg for s in slices)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"numbers": [1, 2, 4, 5]}, "is missing slices: InstanceNumber jumps from 2 to 4"),
        (
            {"offsets": [0.0, 5.0, 15.0, 20.0]},
            "is missing slices: a gap of 10 mm between InstanceNumber 2 and 3, where the smallest "
            "step is 5 mm",
        ),
        ({"offsets": [0.0, 5.0, 5.0, 10.0]}, "has two slices at the same position"),
        (
            {"offsets": [0.0, 10.0, 5.0, 15.0]},
            "has slices whose positions (ImagePositionPatient) are not in InstanceNumber order",
        ),
        ({"numbers": [1, 2, 2, 3]}, "has several slices with InstanceNumber 2"),
    ],
)
def test_a_dicom_series_with_missing_or_misplaced_slices(tmp_path, change, expected):
    write_series(tmp_path / "s", n=4, **change)
    msg = _error(tmp_path, ["s"])
    assert f"{tmp_path / 's'} {expected}" in msg, msg
    assert "line 2 of manifest" in msg and "column 'ct'" in msg


def test_a_series_folder_with_subfolders_or_no_dicom(tmp_path):
    write_series(tmp_path / "s", n=3)
    (tmp_path / "s" / "old").mkdir()
    assert "holds 1 subfolder(s) (such as 'old')" in _error(tmp_path, ["s"])
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not an image")
    assert "holds no DICOM file (of 1 files, none has the DICM preamble)" in _error(
        tmp_path, ["empty"]
    )


def test_non_dicom_files_beside_a_series_are_ignored(tmp_path):
    write_series(tmp_path / "s", n=3)
    (tmp_path / "s" / "README.txt").write_text("series notes")
    assert volumes(tmp_path, ["s"]).modalities["ct"].shape == (1, 128, 128, 3)


def test_a_file_of_unknown_format_or_the_wrong_reader(tmp_path):
    (tmp_path / "x.txt").write_text("hello")
    msg = _error(tmp_path, ["x.txt"])
    assert "x.txt is neither NIfTI (.nii, .nii.gz) nor DICOM" in msg
    assert f"or name the reader in {FIELD}.params.reader (now 'auto')" in msg
    _cube(tmp_path, "a.nii.gz")
    msg = _error(tmp_path, ["a.nii.gz"], {"reader": "pydicom"})
    assert "a.nii.gz is not DICOM" in msg or "holds a.nii.gz, which is not DICOM" in msg
    write_series(tmp_path / "s", n=2)
    assert "is a folder, not a NIfTI file" in _error(tmp_path, ["s"], {"reader": "nibabel"})


def test_a_multiframe_dicom_is_refused(tmp_path):
    ds = copy.deepcopy(source("CT_small.dcm"))
    ds.NumberOfFrames = 2
    ds.save_as(tmp_path / "mf.dcm")
    assert "holds a multi-frame DICOM file" in _error(tmp_path, ["mf.dcm"], {"spatial_dims": 2})


def _truncated(tmp_path, name="t.nii.gz"):
    noise = np.random.default_rng(0).normal(size=(16, 16, 16)).astype(np.float32)
    path = write_nifti(tmp_path / name, noise)  # incompressible: half the file keeps the header
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_a_truncated_nii_gz_fails_at_load_naming_the_file(tmp_path):
    _cube(tmp_path, "a.nii.gz", shape=(16, 16, 16))
    path = _truncated(tmp_path)
    ds = volumes(tmp_path, ["a.nii.gz", "t.nii.gz"])  # its header is intact
    rows = ds.load("all")
    assert rows[0]["ct"].shape == (1, 16, 16, 16)
    with pytest.raises(DataError) as info:
        rows[1]
    msg = str(info.value)
    assert f"cannot read ct of line 3 of manifest {tmp_path / 'm.csv'}" in msg
    assert f"{path} is truncated or corrupt (EOFError: Compressed file ended" in msg
    assert "set data.dataset.params.on_error=skip" in msg


def test_a_nii_gz_whose_header_is_cut_fails_when_the_data_set_is_built(tmp_path):
    path = _cube(tmp_path, "h.nii.gz")
    path.write_bytes(path.read_bytes()[:40])
    msg = _error(tmp_path, ["h.nii.gz"])
    assert f"{path} is not a readable NIfTI file" in msg and "line 2 of manifest" in msg


def test_nan_or_inf_voxels_are_an_error_naming_the_file_and_nan_to(tmp_path):
    a = np.ones((3, 4, 5), np.float32)
    a[0, 0, 0], a[1, 2, 3] = np.nan, np.inf
    write_nifti(tmp_path / "n.nii.gz", a)
    rows = volumes(tmp_path, ["n.nii.gz"]).load("all")
    with pytest.raises(DataError) as info:
        rows[0]
    msg = str(info.value)
    assert f"{tmp_path / 'n.nii.gz'} has 2 NaN or infinite voxels" in msg
    assert f"set {FIELD}.params.nan_to: 0 to replace them" in msg


def test_on_error_skip_skips_and_counts_unreadable_volumes(tmp_path):
    _cube(tmp_path, "a.nii.gz", shape=(16, 16, 16))
    _truncated(tmp_path, "t1.nii.gz")
    _truncated(tmp_path, "t2.nii.gz")
    a = np.ones((16, 16, 16), np.float32)
    a[0, 0, 0] = np.nan
    write_nifti(tmp_path / "n.nii.gz", a)
    cells = ["t1.nii.gz", "a.nii.gz", "t2.nii.gz", "n.nii.gz"]
    rows = volumes(tmp_path, cells, on_error="skip").load("all")
    with pytest.warns(UserWarning, match=r"skipping unreadable sample ct of line 2 .*t1\.nii\.gz"):
        got = [rows[i] for i in range(4)]
    assert [g is None for g in got] == [True, False, True, True]
    assert rows.bad.count == 3


def test_bad_loader_parameters_are_spec_errors(tmp_path):
    from modalforge.errors import SpecError

    _cube(tmp_path, "a.nii.gz")
    for params, text in [
        ({"spatial_dims": 4}, "spatial_dims"),
        ({"reader": "itk"}, "reader"),
        ({"nan_to": "zero"}, "nan_to"),
    ]:
        with pytest.raises(SpecError) as info:
            volumes(tmp_path, ["a.nii.gz"], params)
        assert f"{FIELD}.params.{text}" in str(info.value)
    path = write_csv(tmp_path / "m2.csv", ["a", "b"], [["a.nii.gz", "a.nii.gz"]])
    from modalforge.plugin import get_registry
    from modalforge_datasets import ManifestDataset

    with pytest.raises((SpecError, ValueError)) as info:
        ManifestDataset(
            get_registry(), {"ct": {"loader": "volume", "columns": ["a", "b"]}}, path=path
        )
    assert "the volume loader reads one column" in str(info.value)
