"""The CLI's train / eval / resume paths, and what bad checkpoints do to them."""

import hashlib
import json

import pytest
import yaml

from modalforge_apps.cli import main

pytestmark = pytest.mark.usefixtures("toy_host")


@pytest.fixture
def spec_path(toy_spec_file):
    return toy_spec_file


def _digest(folder) -> dict[str, str]:  # noqa: ANN001
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "tensorboard" not in p.parts
    }


@pytest.fixture
def trained(tmp_path, spec_path, capsys):
    out = tmp_path / "run"
    assert main(["train", str(spec_path), "--out", str(out)]) == 0
    capsys.readouterr()
    return out


def test_train_writes_run_folder(trained):
    results = json.loads((trained / "results.json").read_text())
    assert results["steps"] == 3  # 24 samples / batch 8, one epoch
    assert (trained / "checkpoints" / "step_00000003" / "model.safetensors").exists()
    assert yaml.safe_load((trained / "spec.yaml").read_text())["name"] == "toy"


def test_train_into_used_folder_is_refused(trained, spec_path, capsys):
    before = _digest(trained)
    assert main(["train", str(spec_path), "--out", str(trained)]) == 2
    assert "--resume" in capsys.readouterr().err
    assert _digest(trained) == before


def test_resume_continues(trained, spec_path, capsys):
    cmd = ["train", str(spec_path), "train.epochs=2", "--out", str(trained), "--resume"]
    assert main([*cmd, str(trained)]) == 0
    assert json.loads((trained / "results.json").read_text())["steps"] == 6


def test_eval_prints_and_writes(trained, spec_path, tmp_path, capsys):
    out_json = tmp_path / "eval.json"
    argv = ["eval", str(spec_path), "--checkpoint", str(trained), "--output", str(out_json)]
    assert main(argv) == 0
    assert "accuracy" in capsys.readouterr().out
    metrics = json.loads(out_json.read_text())
    results = json.loads((trained / "results.json").read_text())
    assert metrics["accuracy"] == pytest.approx(results["metrics"]["accuracy"])


@pytest.mark.parametrize("content", [b"not a checkpoint", b"PK\x03\x04torch-zip-pickle"])
def test_resume_from_foreign_file(trained, spec_path, tmp_path, capsys, content):
    foreign = tmp_path / "weights.pt"
    foreign.write_bytes(content)
    before = _digest(trained)
    argv = ["train", str(spec_path), "--out", str(trained), "--resume", str(foreign)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(foreign) in err and "Traceback" not in err
    assert _digest(trained) == before


def test_truncated_checkpoint(trained, spec_path, capsys):
    ckpt = trained / "checkpoints" / "step_00000003" / "model.safetensors"
    ckpt.write_bytes(ckpt.read_bytes()[:-100])
    assert main(["eval", str(spec_path), "--checkpoint", str(trained)]) == 2
    err = capsys.readouterr().err
    assert "model.safetensors" in err and "Traceback" not in err


def test_checkpoint_of_another_architecture(trained, spec_path, capsys):
    argv = ["eval", str(spec_path), "model.encoders.image.params.dim=5", "--checkpoint"]
    assert main([*argv, str(trained)]) == 2
    err = capsys.readouterr().err
    assert "encoders.image.proj.weight" in err and "Traceback" not in err


def test_eval_with_a_missing_modality_equals_the_robustness_evaluation(trained, spec_path, capsys):
    from functools import partial

    from torch.utils.data import DataLoader

    from modalforge.engine.data import collate_samples
    from modalforge.evaluation import evaluate_robustness
    from modalforge.pipeline.trained import load_trained

    argv = ["eval", str(spec_path), "--checkpoint", str(trained), "--missing", "ct"]
    out_json = trained.parent / "missing.json"
    assert main([*argv, "--output", str(out_json)]) == 0
    assert "without ct" in capsys.readouterr().out
    loaded = load_trained(spec_path, trained)
    loader = DataLoader(
        loaded.pipeline.load(loaded.spec.data.eval_split),
        batch_size=8,
        collate_fn=partial(collate_samples, collates=loaded.pipeline.collates),
    )

    def accuracy(logits, targets):  # noqa: ANN001, ANN202
        return float((logits.argmax(-1) == targets).float().mean())

    expected = evaluate_robustness(loaded.model, loader, accuracy, ["ct"], noise_levels=[0.0])
    assert json.loads(out_json.read_text())["accuracy"] == pytest.approx(expected["missing"]["ct"])


@pytest.mark.parametrize(
    ("missing", "message"),
    [("lidar", "lidar, not a modality"), ("image,ct,state", "withholds every modality")],
)
def test_eval_missing_names_a_bad_modality(trained, spec_path, capsys, missing, message):
    argv = ["eval", str(spec_path), "--checkpoint", str(trained), "--missing", missing]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
