"""``modalforge explain``: PNGs and an HTML page for trained and hand-set classifiers; errors."""

from __future__ import annotations

import base64
import re

import pytest

from modalforge.contracts import TargetKind
from modalforge.engine.data import collate_samples
from modalforge.evaluation.saliency import explain
from modalforge.pipeline import load_trained
from modalforge.plugin import set_host
from modalforge_apps.cli import main
from tests.core.evaluation import saliency_toy as toy

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def installed_plugins():
    set_host(None)
    yield
    set_host(None)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _error(capsys, argv: list[str]) -> str:  # noqa: ANN001
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    return err


@pytest.fixture(scope="module")
def multimodal(tmp_path_factory):
    """A trained image + tabular classifier: (spec, run folder)."""
    set_host(None)
    return toy.train_run(tmp_path_factory.mktemp("mm"), tabular=True)


def test_explain_writes_figures_and_a_page(multimodal, tmp_path, capsys):
    spec, run = multimodal
    loaded = load_trained(spec, run)
    data = loaded.pipeline.load("test")
    lesion = next(i for i in range(len(data)) if int(data[i]["target"]) == 1)
    clear = next(i for i in range(len(data)) if int(data[i]["target"]) == 0)
    out = tmp_path / "explain"
    argv = ["explain", str(spec), "--checkpoint", str(run), "--modality", "image"]
    assert main([*argv, "--sample", str(lesion), "--sample", str(clear), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    page = (out / "report.html").read_text()
    expected = explain(
        loaded.model,
        collate_samples([data[lesion]]),
        target_kind=TargetKind.MULTICLASS,
        modality="image",
    )
    p = f"{expected.probability:.3f}"
    assert f"sample {lesion}: predicted lesion, p(lesion) = {p}, label lesion" in printed
    for n in (lesion, clear):
        png = (out / f"sample_{n}_gradcam.png").read_bytes()
        width, height = _png_size(png)
        assert width > 500 and height > 250
        assert base64.b64encode(png).decode() in page  # embedded: the page is one file
        assert f"sample_{n}_gradcam.png" in page and f"<h3>sample {n}</h3>" in page
    cells = dict(re.findall(r"<tr><th>([^<]+)</th><td>([^<]+)</td></tr>", page.split("<h3>")[1]))
    assert cells["prediction"] == "lesion" and cells["label"] == "lesion"
    assert cells["probability of lesion"] == p
    assert cells["method"] == "gradcam (layer features)" and cells["modality"] == "image"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["report.html", f"sample_{lesion}_gradcam.png", f"sample_{clear}_gradcam.png"]
    )


def test_volume_slice_grid_by_occlusion_into_the_run_folder(tmp_path, capsys):
    spec, run = toy.hand_set_run(tmp_path, volume=True)
    argv = ["explain", str(spec), "--checkpoint", str(run), "--sample", "1"]
    assert main([*argv, "--method", "occlusion", "--mask-size", "7"]) == 0
    out = run / "explain"  # default: <run folder>/explain
    width, height = _png_size((out / "sample_1_occlusion.png").read_bytes())
    assert height > width > 600  # 4 rows of slices
    page = (out / "report.html").read_text()
    assert "<td>occlusion</td>" in page and "probability of lesion" in page
    assert "wrote" in capsys.readouterr().out


def test_class_option_explains_the_named_class(tmp_path, capsys):
    spec, run = toy.hand_set_run(tmp_path)
    out = tmp_path / "out"
    argv = ["explain", str(spec), "--checkpoint", str(run), "--sample", "0", "--out", str(out)]
    assert main([*argv, "--class", "clear"]) == 0
    assert "probability of clear" in (out / "report.html").read_text()
    assert "p(clear)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--sample", "99"], "--sample 99 is out of range: split 'test' has 4 samples"),
        (["--sample", "-1"], "--sample -1 is out of range"),
        (["--sample", "0", "--modality", "labs"], "'labs' is tabular, not an image or volume"),
        (["--sample", "0", "--modality", "ct"], "the model has no input 'ct'"),
        (["--sample", "0", "--layer", "layer4"], "has no layer 'layer4'"),
        (["--sample", "0", "--class", "tumour"], "no class 'tumour'"),
        (["--sample", "0", "--split", "val"], "no split 'val'"),
    ],
)
def test_bad_options_exit_2_and_write_nothing(tmp_path, capsys, extra, message):
    spec, run = toy.hand_set_run(tmp_path, tabular=True)
    out = tmp_path / "out"
    argv = ["explain", str(spec), "--checkpoint", str(run), "--out", str(out)]
    if "--modality" not in extra:
        argv += ["--modality", "image"]
    err = _error(capsys, [*argv, *extra])
    assert message in err and "fix:" in err
    assert not (out / "report.html").exists()


def test_a_regression_pipeline_is_refused(tmp_path, capsys):
    spec, run = toy.hand_set_run(tmp_path, regression=True)
    err = _error(capsys, ["explain", str(spec), "--checkpoint", str(run), "--sample", "0"])
    assert "saliency maps explain class predictions" in err and "regression" in err
