"""``modalforge zeroshot``, ``retrieve`` and ``embed`` on a tiny image–caption pipeline.

The hand-set model maps class k's images to about e_k and every caption naming class k to exactly
e_k, so the answers are known in closed form.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import safetensors.torch
import torch
import yaml
from PIL import Image

from modalforge.engine import save_checkpoint
from modalforge.pipeline import build_pipeline
from modalforge.plugin import PluginHost, set_host
from modalforge.spec import PipelineSpec
from modalforge_apps.cli import main
from tests.core.evaluation.clip_toy import CLASSES, clip_registry, clip_spec
from tests.core.toy import toy_registry, toy_spec


@pytest.fixture(autouse=True)
def host():
    registry = clip_registry(toy_registry())
    set_host(PluginHost(registry, []))
    yield registry
    set_host(None)


def _write_spec(path, spec: dict):  # noqa: ANN001, ANN202
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return str(path)


@pytest.fixture
def hand_set(tmp_path, host):
    """(spec path, run folder) of the hand-set model, saved as a real checkpoint."""
    spec = clip_spec(hand_set=True)
    pipeline = build_pipeline(PipelineSpec.model_validate(spec), host)
    save_checkpoint(tmp_path / "run", model=pipeline.model, step=0, epoch=0, spec_name="toyclip")
    return _write_spec(tmp_path / "spec.yaml", spec), str(tmp_path / "run")


def _json(capsys, argv: list[str]) -> dict:  # noqa: ANN001
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def _error(capsys, argv: list[str]) -> str:  # noqa: ANN001
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    return err


# ---------------------------------------------------------------------------------- zeroshot
@pytest.mark.parametrize("overrides", [[], ["train.precision=bf16"]])
def test_zeroshot_hand_set_is_perfect(hand_set, capsys, overrides):
    spec, run = hand_set
    report = _json(capsys, ["zeroshot", spec, *overrides, "--checkpoint", run, "--json"])
    assert report["zeroshot_top1"] == 1.0 and report["zeroshot_top5"] == 1.0
    assert report["split"] == "test" and report["num_samples"] == 24
    assert [r["count"] for r in report["per_class"]] == [8, 8, 8]
    assert [r["class"] for r in report["per_class"]] == list(CLASSES)


def test_zeroshot_classes_and_templates_options(hand_set, tmp_path, capsys):
    spec, run = hand_set
    templates = tmp_path / "templates.txt"
    templates.write_text("# prompts\na picture of a {}\n\n{}\n")
    out = tmp_path / "zs.json"
    rotated = ",".join([*CLASSES[1:], CLASSES[0]])
    argv = ["zeroshot", spec, "--checkpoint", run, "--classes", rotated]
    assert main([*argv, "--templates", str(templates), "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert "top-1  0.0000" in text and "2 templates" in text
    assert "green       8  0.0000" in text  # per-class table: class, count, accuracy
    report = json.loads(out.read_text())
    assert report["zeroshot_top1"] == 0.0 and report["templates"] == ["a picture of a {}", "{}"]


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--classes", "a,b"], "3 classes"),
        (["--classes", "a,b,a"], "duplicate class names 'a'"),
        (["--templates", "missing.txt"], "missing.txt"),
        (["--split", "valid"], "no split 'valid'"),
        (["--text-modality", "caption"], "--text-modality 'caption'"),
    ],
)
def test_zeroshot_user_errors(hand_set, capsys, extra, match):
    spec, run = hand_set
    assert match in _error(capsys, ["zeroshot", spec, "--checkpoint", run, *extra])


def test_template_without_placeholder(hand_set, tmp_path, capsys):
    spec, run = hand_set
    bad = tmp_path / "t.txt"
    bad.write_text("a photo\n")
    err = _error(capsys, ["zeroshot", spec, "--checkpoint", run, "--templates", str(bad)])
    assert "placeholder" in err


def test_supervised_spec_is_refused(tmp_path, host, capsys):
    spec = toy_spec()
    pipeline = build_pipeline(PipelineSpec.model_validate(spec), host)
    save_checkpoint(tmp_path / "run", model=pipeline.model, step=0, epoch=0)
    path = _write_spec(tmp_path / "spec.yaml", spec)
    err = _error(capsys, ["zeroshot", path, "--checkpoint", str(tmp_path / "run")])
    assert "contrastive" in err


def test_missing_checkpoint(hand_set, tmp_path, capsys):
    spec, _ = hand_set
    err = _error(capsys, ["retrieve", spec, "--checkpoint", str(tmp_path / "nope"), "--query", "x"])
    assert "nope" in err


# ---------------------------------------------------------------------------------- retrieve
def test_retrieve_images_for_a_text(hand_set, capsys):
    spec, run = hand_set
    argv = ["retrieve", spec, "--checkpoint", run, "--query", "a photo of a green", "-k", "4"]
    report = _json(capsys, [*argv, "--json"])
    results = report["results"]
    assert len(results) == 4 and all(r["label"] == "green" for r in results)
    assert all(r["index"] % 3 == 1 and r["id"] == f"test-{r['index']:03d}" for r in results)
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True) and scores[0] <= 1.0 + 1e-6
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "query: text 'a photo of a green'" in text and "searched 24 image samples" in text


def test_retrieve_captions_for_a_sample(hand_set, capsys):
    spec, run = hand_set
    argv = ["retrieve", spec, "--checkpoint", run, "--query-index", "2", "-k", "2", "--json"]
    report = _json(capsys, argv)
    assert report["query"] == {"index": 2, "id": "test-002", "label": "blue"}
    assert report["searched"] == "3 distinct captions of 24 samples"
    top = report["results"][0]
    assert top["caption"] == "a photo of a blue" and top["count"] == 8 and top["first_index"] == 2
    assert len(report["results"]) == 2
    assert "outside split" in _error(
        capsys, ["retrieve", spec, "--checkpoint", run, "--query-index", "99"]
    )


def test_retrieve_captions_for_an_image_file(hand_set, tmp_path, capsys):
    spec, run = hand_set
    png = tmp_path / "red.png"
    Image.fromarray(np.array([[255, 0], [0, 0]], dtype=np.uint8), mode="L").save(png)
    argv = ["retrieve", spec, "--checkpoint", run, "--query-image", str(png), "--json"]
    report = _json(capsys, argv)
    assert report["results"][0]["caption"] == "a photo of a red"
    assert report["results"][0]["score"] == pytest.approx(1.0)  # the image embeds to exactly e_0
    (tmp_path / "bad.png").write_bytes(b"not an image")
    assert "bad.png" in _error(capsys, [*argv[:-2], str(tmp_path / "bad.png")])


# ---------------------------------------------------------------------------------- embed
def test_embed_writes_embeddings_ids_and_labels(hand_set, tmp_path, capsys):
    spec, run = hand_set
    out = tmp_path / "emb"
    assert main(["embed", spec, "--checkpoint", run, "--split", "train", "--out", str(out)]) == 0
    assert "embedded 24 samples of split 'train'" in capsys.readouterr().out
    index = json.loads((out / "index.json").read_text())
    assert index["count"] == 24 and index["split"] == "train"
    assert index["ids"][:2] == ["train-000", "train-001"]
    assert index["labels"] == [i % 3 for i in range(24)]
    assert index["class_names"] == list(CLASSES)
    assert index["modalities"]["text"] == {
        "file": "text.safetensors",
        "dim": 3,
        "normalized": True,
        "space": "shared",
    }
    text = safetensors.torch.load_file(out / "text.safetensors")["embeddings"]
    torch.testing.assert_close(text, torch.eye(3)[torch.arange(24) % 3])  # caption of k → e_k
    image = safetensors.torch.load_file(out / "image.safetensors")["embeddings"]
    assert image.shape == (24, 3)
    assert torch.equal(image.argmax(1), torch.arange(24) % 3)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_embed_encoder_features_are_the_embeddings_before_projection(hand_set, tmp_path, capsys):
    spec, run = hand_set
    argv = ["embed", spec, "--checkpoint", run, "--split", "train", "--modalities", "image"]
    assert main([*argv, "--out", str(tmp_path / "shared")]) == 0
    assert main([*argv, "--out", str(tmp_path / "enc"), "--encoder-features"]) == 0
    index = json.loads((tmp_path / "enc" / "index.json").read_text())
    assert index["modalities"]["image"]["space"] == "encoder"
    assert index["modalities"]["image"]["normalized"] is False
    shared = safetensors.torch.load_file(tmp_path / "shared" / "image.safetensors")["embeddings"]
    enc = safetensors.torch.load_file(tmp_path / "enc" / "image.safetensors")["embeddings"]
    norms = enc.norm(dim=1)
    assert not torch.allclose(norms, torch.ones_like(norms))  # really not the normalised ones
    # the hand-set encoders already give embed_dim, so the projection is the identity
    torch.testing.assert_close(torch.nn.functional.normalize(enc, dim=1), shared)


def test_embed_refuses_a_used_folder(hand_set, tmp_path, capsys):
    spec, run = hand_set
    out = tmp_path / "emb"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    argv = ["embed", spec, "--checkpoint", run, "--out", str(out), "--modalities", "image"]
    assert "--overwrite" in _error(capsys, argv)
    assert (out / "keep.txt").read_text() == "mine"
    assert main([*argv, "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["image.safetensors", "index.json"]
    assert "'audio'" in _error(capsys, [*argv[:-1], "audio", "--overwrite"])


# ---------------------------------------------------------------------------------- trained
def test_after_training_cli_agrees_with_the_metric(tmp_path, capsys):
    spec = clip_spec(hand_set=False, metrics=[{"name": "zeroshot", "params": {"top_k": 2}}])
    path = _write_spec(tmp_path / "spec.yaml", spec)
    run = tmp_path / "run"
    assert main(["train", path, "train.lr=0.05", "--out", str(run)]) == 0
    capsys.readouterr()
    metric = json.loads((run / "results.json").read_text())["metrics"]["zeroshot_top1"]
    report = _json(capsys, ["zeroshot", path, "--checkpoint", str(run), "--json"])
    assert report["zeroshot_top1"] == pytest.approx(metric)  # both use the default templates
