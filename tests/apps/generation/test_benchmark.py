"""``modalforge genbench`` end to end on tiny stages: train, reuse, judge, report."""

from __future__ import annotations

import json

import pytest
import yaml

from modalforge_apps.cli import main

TINY_CLIP = {
    "name": "tiny-clip",
    "data": {"dataset": {"name": "digits_captions", "params": {"image_size": 8}},
             "batch_size": 128, "eval_split": None},
    "model": {
        "type": "contrastive",
        "embed_dim": 16,
        "encoders": {
            "image": {"name": "cnn", "params": {"widths": [8], "out_dim": 16}},
            "text": {"name": "clip_text", "params": {"context_length": 32, "vocab_size": 258,
                     "width": 16, "heads": 2, "layers": 1, "embed_dim": 16}},
        },
    },
    "loss": "clip",
    "train": {"epochs": 1, "tensorboard": False, "progress": False},
}  # fmt: skip


@pytest.mark.slow
def test_genbench_trains_stages_judges_and_reuses(tmp_path, capsys):
    (tmp_path / "clip.yaml").write_text(yaml.safe_dump(TINY_CLIP))
    gan_overrides = [
        "train.epochs=1",
        "model.generator.params.g_width=32",
        "model.generator.params.d_width=32",
        "train.progress=false",
    ]
    config = {
        "name": "tiny",
        "judge": {"name": "digits", "params": {"epochs": 1}},
        "samples_per_prompt": 4,
        "best_of": 2,
        "stages": {
            "clip_rerank": {"spec": "clip.yaml"},
            "clip_eval": {"spec": "clip.yaml", "overrides": ["seed=1"]},
            "gan": {"spec": "recipe:digits_gan.yaml", "overrides": gan_overrides},
        },
        "generators": ["gan"],
        "rerank": "clip_rerank",
        "eval_clip": "clip_eval",
    }
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "out"
    assert main(["genbench", str(path), "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    gan = results["generators"]["gan"]
    assert gan["samples"] == 40 and 0.0 <= gan["plain"]["accuracy"] <= 1.0
    assert gan["best_of"]["k"] == 2 and 0.0 <= gan["best_of"]["accuracy"] <= 1.0
    assert results["judge"]["svc_real_test_accuracy"] > 0.95
    assert results["kid_floor"]["mean"] < gan["kid"]["mean"]  # a 1-epoch GAN is far from real
    floor = results["kid_floor"]
    assert gan["kid"]["above_floor"] == pytest.approx(gan["kid"]["mean"] - floor["mean"])
    assert gan["kid"]["floor_stds"] == pytest.approx(gan["kid"]["above_floor"] / floor["std"])
    assert set(gan["clip_eval"]) == {"clip_score", "r_precision"}
    assert (out / "plots" / "gan_plain.png").exists() and (out / "plots" / "gan_best_of_2.png")
    html = (out / "report.html").read_text()
    assert "judged accuracy (best of 2)" in html and "data:image/png;base64" in html
    assert not any(v["reused"] for v in results["stages"].values())

    assert main(["genbench", str(path), "--out", str(out)]) == 0  # second run reuses the stages
    again = json.loads((out / "results.json").read_text())
    assert all(v["reused"] for v in again["stages"].values())
    assert again["generators"]["gan"]["plain"] == gan["plain"]  # seeded sampling: same numbers
    assert "done earlier" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"generators": ["nope"]}, "'nope' is not a stage"),
        ({"judge": "faces"}, "judge.name"),
        (
            {"stages": {"gan": {"spec": "recipe:nope.yaml"}}, "generators": ["gan"]},
            "no built-in recipe 'nope.yaml'",
        ),
        (
            {"stages": {"gan": {"spec": "nope.yaml"}}, "generators": ["gan"]},
            "'nope.yaml' not found",
        ),
    ],
)
def test_bad_benchmark_files_are_clear_errors(tmp_path, capsys, change, message):
    config = {"name": "x", "judge": "digits", "stages": {"gan": {"spec": "recipe:digits_gan.yaml"}},
              "generators": ["gan"]}  # fmt: skip
    config.update(change)
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["genbench", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_a_duplicate_key_in_a_benchmark_file_names_its_line(tmp_path, capsys):
    path = tmp_path / "bench.yaml"
    path.write_text("name: x\njudge: digits\njudge: faces\n")
    assert main(["genbench", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "line 3: duplicate key 'judge' (first at line 2)" in err and "Traceback" not in err
