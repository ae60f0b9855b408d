"""Issue 12 item 4: patient-identifying DICOM header fields never reach what a run writes.

Real DICOM series are built from pydicom's CT and MR test files with every identifying attribute
of the PS3.15 basic profile (the main ones) set to a marker; a real ``modalforge train``,
``eval`` and ``embed`` run on them, and every file under the run folders (binary too), plus the
console output, is searched for the marker, the marked dates and the series' UIDs.
"""

from __future__ import annotations

import json

import pytest
import yaml

from modalforge.plugin import get_registry, set_host
from modalforge_apps.cli import main
from modalforge_datasets import ManifestDataset
from modalforge_medical.readers import SAFE_META_KEYS
from tests.plugins.modalforge_medical.readers.medical_files import (
    MARKER,
    MARKER_DATE,
    MARKER_TIME,
    PHI_KEYWORDS,
    write_csv,
    write_series,
)

N = 8  # studies: 4 train, 4 test


@pytest.fixture(autouse=True)
def real_plugins():
    set_host(None)
    yield
    set_host(None)


@pytest.fixture
def studies(tmp_path):
    """A manifest of ``N`` studies, each a marked CT and a marked MR series; and the UIDs."""
    data = tmp_path / "data"
    rows, uids = [], set()
    for k in range(N):
        label = "lesion" if k % 2 else "normal"
        for name, file in (("ct", "CT_small.dcm"), ("mr", "MR_small.dcm")):
            slices = write_series(
                data / f"study{k}" / name, file, n=3, phi=MARKER, values=[40 * k * (k % 2)] * 3
            )
            for ds in slices:
                uids |= {str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)}
                uids.add(str(ds.StudyInstanceUID))
        rows.append([f"study{k}/ct", f"study{k}/mr", label, "train" if k < N // 2 else "test"])
    write_csv(data / "studies.csv", ["ct", "mr", "label", "split"], rows)
    return data / "studies.csv", uids


def _modalities():
    return {
        "ct": {"loader": "volume", "column": "ct", "params": {"require_same_spacing": True}},
        "mr": {"loader": "volume", "column": "mr"},
    }


def test_loaded_metatensors_carry_no_identifying_key(studies):
    manifest, _ = studies
    ds = ManifestDataset(get_registry(), _modalities(), target={"column": "label"}, path=manifest)
    sample = ds.load("train")[0]
    for name in ("ct", "mr"):
        meta = sample[name].meta
        assert set(meta) <= set(SAFE_META_KEYS)
        assert not set(meta) & set(PHI_KEYWORDS)
        assert not any(k.isdigit() or k.startswith(("0010", "0008")) for k in meta)  # DICOM tags
        text = repr(meta)
        assert MARKER not in text and MARKER_DATE not in text and "study" not in text
    assert sample["ct"].meta["modality"] == "CT" and sample["mr"].meta["modality"] == "MR"
    assert MARKER not in repr(ds.modalities)


def _spec(tmp_path, manifest) -> str:
    spec = {
        "name": "phi",
        "data": {
            "dataset": {
                "name": "manifest",
                "params": {
                    "path": str(manifest),
                    "modalities": _modalities(),
                    "target": {"column": "label"},
                },
            },
            "batch_size": 4,
        },
        "model": {
            "encoders": {
                "ct": {"name": "cnn", "params": {"widths": [4]}},
                "mr": {"name": "cnn", "params": {"widths": [4]}},
            },
            "fusion": "concat",
            "head": "classification",
        },
        "loss": "cross_entropy",
        "metrics": ["accuracy"],
        "train": {"epochs": 2, "progress": False},
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def test_no_identifying_field_reaches_any_file_a_run_writes(tmp_path, studies, capsys):
    manifest, uids = studies
    spec = _spec(tmp_path, manifest)
    run, emb, metrics = tmp_path / "run", tmp_path / "emb", tmp_path / "eval.json"
    assert main(["train", spec, "--out", str(run)]) == 0
    assert main(["eval", spec, "--checkpoint", str(run), "--output", str(metrics)]) == 0
    assert main(["embed", spec, "--checkpoint", str(run), "--out", str(emb)]) == 0
    console = capsys.readouterr()

    assert json.loads((run / "results.json").read_text())["steps"] == 2  # 4 train / 4, 2 epochs
    assert 0.0 <= json.loads(metrics.read_text())["accuracy"] <= 1.0
    written = [p for folder in (run, emb) for p in folder.rglob("*") if p.is_file()]
    written.append(metrics)
    names = {p.name for p in written}
    assert {"model.safetensors", "optimizer.safetensors", "metrics.jsonl", "spec.yaml"} <= names
    assert {"ct.safetensors", "mr.safetensors", "index.json"} <= names  # the embeddings
    assert any(n.startswith("events.out.tfevents") for n in names)  # tensorboard logs
    banned = [MARKER, MARKER_DATE, MARKER_TIME, *sorted(uids)]
    for path in written:
        data = path.read_bytes()
        for text in banned:
            assert text.encode() not in data, f"{text} in {path}"
            assert text.encode("utf-16-le") not in data, f"{text} (UTF-16) in {path}"
    for stream in (console.out, console.err):
        assert not any(text in stream for text in banned)
    index = json.loads((emb / "index.json").read_text())
    assert index["count"] == N // 2 and index["class_names"] == ["lesion", "normal"]


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("missing", "does not exist"),
        ("gap", "is missing slices: InstanceNumber jumps from 1 to 3"),
    ],
)
def test_bad_volumes_exit_2_with_one_message_through_the_cli(
    tmp_path, studies, capsys, damage, expected
):
    manifest, _ = studies
    mr = manifest.parent / "study3" / "mr"
    if damage == "missing":
        for file in mr.iterdir():
            file.unlink()
        mr.rmdir()
    else:
        (mr / "slice001.dcm").unlink()
    assert main(["check", _spec(tmp_path, manifest)]) == 2
    text = capsys.readouterr().err
    assert text.startswith("error: ") and "Traceback" not in text
    assert "line 5 of manifest" in text and "column 'mr'" in text and expected in text
    assert str(mr) in text
