"""``modalforge generate``: sampling a trained generator, CLIP reranking and its bad inputs."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from modalforge.engine import save_checkpoint
from modalforge.pipeline import build_pipeline
from modalforge.plugin import PluginHost, set_host
from modalforge.spec import PipelineSpec
from modalforge_apps.cli import main
from tests.core.evaluation.clip_toy import clip_registry, clip_spec
from tests.core.toy import toy_registry, toy_spec
from tests.plugins.modalforge_generators.toy_generation import (
    generation_registry,
    generator_spec,
)


@pytest.fixture(autouse=True)
def host():
    registry = generation_registry(clip_registry(toy_registry()))
    set_host(PluginHost(registry, []))
    yield registry
    set_host(None)


def _save(tmp_path, host, spec: dict, name: str) -> tuple[str, str]:  # noqa: ANN001
    pipeline = build_pipeline(PipelineSpec.model_validate(spec), host)
    save_checkpoint(tmp_path / f"{name}_run", model=pipeline.model, step=0, epoch=0)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return str(path), str(tmp_path / f"{name}_run")


@pytest.fixture
def runs(tmp_path, host):
    gen = _save(tmp_path, host, generator_spec(), "gen")
    clip = _save(tmp_path, host, clip_spec(hand_set=True), "clip")
    return gen, clip


def _error(capsys, argv: list[str]) -> str:  # noqa: ANN001
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    return err


def test_generate_writes_grid_and_record(runs, tmp_path, capsys):
    (spec, run), _ = runs
    out = tmp_path / "grid.png"
    assert main(["generate", spec, "a photo of a red", "blue", "--checkpoint", run, "-n", "3",
                 "--out", str(out)]) == 0  # fmt: skip
    assert out.read_bytes()[:4] == b"\x89PNG"
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["prompts"] == ["a photo of a red", "blue"] and record["num_samples"] == 3
    assert "rerank" not in record and "wrote" in capsys.readouterr().out


def test_rerank_keeps_the_candidates_clip_scores_highest(runs, tmp_path, capsys):
    (spec, run), (clip, clip_run) = runs
    out = tmp_path / "best.png"
    argv = ["generate", spec, "red", "a photo of a green", "blue", "--checkpoint", run, "-n", "6"]
    argv += ["--rerank", clip, "--rerank-checkpoint", clip_run, "--keep", "2", "--out", str(out)]
    assert main(argv) == 0
    rerank = json.loads(out.with_suffix(".json").read_text())["rerank"]
    # candidate j of class k lights pixel (k + j) % 4: cosine 1 exactly when j ≡ 0 (mod 4)
    expected = [[1.0 if j % 4 == 0 else 0.0 for j in range(6)]] * 3
    torch.testing.assert_close(torch.tensor(rerank["all_scores"]), torch.tensor(expected))
    assert [row[0] for row in rerank["kept_indices"]] == [0, 0, 0]
    assert [row[1] for row in rerank["kept_indices"]] == [4, 4, 4]
    torch.testing.assert_close(torch.tensor(rerank["kept_scores"]), torch.ones(3, 2))
    assert "scores 1.000, 1.000" in capsys.readouterr().out


def test_clip_reranker_adapts_rgb_and_size_to_the_clip(runs):
    from modalforge_generators.rerank import ClipReranker

    _, (clip, clip_run) = runs
    reranker = ClipReranker(clip, clip_run)
    # RGB 4×4 images whose 2×2 blocks are one pixel of the CLIP's 1×2×2 grey image
    grey = torch.zeros(1, 2, 1, 2, 2)
    grey[0, 0, 0, 0, 1] = 1.0  # pixel 1: "green"
    grey[0, 1, 0, 1, 1] = 1.0  # pixel 3: no class
    rgb = grey.repeat_interleave(2, -1).repeat_interleave(2, -2).expand(-1, -1, 3, -1, -1)
    scores = reranker.score(rgb, ["green"])
    assert scores.shape == (1, 2)
    assert scores[0, 0] == pytest.approx(1.0, abs=1e-5) and scores[0, 1] == pytest.approx(0.0)
    with pytest.raises(Exception, match="takes images"):
        reranker.check((2, 4, 4))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["red", "  "], "prompt 2 is empty"),
        (["red", "x" * 1001], "prompt 2 has 1001 characters"),
        (["red", "-n", "0"], "-n must be at least 1"),
        (["red", "-n", "2", "--keep", "3", "--rerank", "x.yaml"], "--keep 3 must be between"),
        (["red", "--temperature", "0.5"], "--temperature does not apply to PixelGenerator"),
        (["red", "--rerank", "missing.yaml", "--rerank-checkpoint", "."], "missing.yaml"),
    ],
)
def test_bad_input_is_a_clear_error(runs, tmp_path, capsys, args, message):
    (spec, run), _ = runs
    err = _error(capsys, ["generate", spec, *args, "--checkpoint", run, "--out", "g.png"])
    assert message in err


def test_rerank_spec_must_be_a_clip_with_a_tokenizer(runs, tmp_path, host, capsys, monkeypatch):
    (spec, run), (clip, clip_run) = runs
    supervised = _save(tmp_path, host, toy_spec(), "sup")
    argv = ["generate", spec, "red", "--checkpoint", run, "--out", str(tmp_path / "g.png")]
    err = _error(capsys, [*argv, "--rerank", supervised[0], "--rerank-checkpoint", supervised[1]])
    assert "contrastive" in err

    # a CLIP trained on pre-tokenized text: its text encoder has no tokenizer for free prompts
    import modalforge.pipeline as pipeline_mod
    from tests.core.evaluation.clip_toy import WordEncoder

    real = pipeline_mod.load_trained

    def trained_without_tokenizer(spec_path, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        trained = real(spec_path, *args, **kwargs)
        if spec_path == clip:
            monkeypatch.setattr(WordEncoder, "preprocess", lambda self: None)
        return trained

    monkeypatch.setattr(pipeline_mod, "load_trained", trained_without_tokenizer)
    err = _error(capsys, [*argv, "--rerank", clip, "--rerank-checkpoint", clip_run])
    assert "model.encoders.text" in err and "cannot embed free-text prompts" in err


def test_checkpoint_of_another_generator_type_is_refused(runs, tmp_path, host, capsys):
    _, _ = runs
    other_spec, other_run = _save(tmp_path, host, generator_spec("other_gen"), "other")
    (spec, _run), _ = runs
    err = _error(capsys, ["generate", spec, "red", "--checkpoint", other_run, "--out", "g.png"])
    assert "holds a OtherGenerator" in err and "builds a PixelGenerator" in err


def test_diffusion_takes_its_sampling_settings_from_the_command_line(tmp_path, capsys):
    from tests.plugins.modalforge_generators import dark_bright

    registry = dark_bright.registry()
    set_host(PluginHost(registry, []))
    spec = dark_bright.gan_spec(generator="diffusion")
    spec_path, run = _save(tmp_path, registry, spec, "diffusion")
    out = tmp_path / "grid.png"
    argv = ["generate", spec_path, "dark", "bright", "--checkpoint", run, "-n", "2"]
    assert main([*argv, "--steps", "3", "--eta", "0.5", "--out", str(out)]) == 0
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["sampling"] == {"steps": 3, "eta": 0.5}
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert "steps must be an integer in [1, 100], got 0" in _error(
        capsys, [*argv, "--steps", "0", "--out", str(out)]
    )
    assert "--top-k does not apply to TextConditionalDiffusion" in _error(
        capsys, [*argv, "--top-k", "3", "--out", str(out)]
    )
