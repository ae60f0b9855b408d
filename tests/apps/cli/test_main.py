import subprocess
import sys

import pytest
import yaml

from modalforge_apps.cli import main
from tests.core.toy import toy_spec

HEAVY = ("torch", "timm", "transformers", "monai")


def _spec_file(tmp_path, data: dict):  # noqa: ANN202
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_help_imports_nothing_heavy():
    code = (
        "import sys\n"
        "from modalforge_apps.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "usage: modalforge" in out.stdout
    assert out.stdout.strip().endswith("[]")


def test_import_modalforge_imports_nothing_heavy():
    code = f"import sys, modalforge\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_check_prints_tree(toy_host, tmp_path, capsys):
    assert main(["check", str(_spec_file(tmp_path, toy_spec()))]) == 0
    out = capsys.readouterr().out
    assert "encoders.ct: flatten (FlattenEncoder) → 6  390 params" in out  # 64*6 + 6
    assert "fusion: concat (image:4 + ct:6 + state:8) → 18" in out
    assert "head: linear (LinearHead) 18 → logits  57 params" in out  # 18*3 + 3
    assert "is valid" in out


def test_check_with_override(toy_host, tmp_path, capsys):
    path = _spec_file(tmp_path, toy_spec())
    assert main(["check", str(path), "model.encoders.ct.params.dim=2"]) == 0
    assert "fusion: concat (image:4 + ct:2 + state:8) → 14" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["model"].update(fusion="concatt"), "did you mean 'concat'"),
        (lambda d: d["train"].update(epochs="x"), "train.epochs: Input should be a valid integer"),
        (lambda d: d["model"]["encoders"].update(audio="flatten"), "does not provide modality"),
        (
            lambda d: d["model"].update(head={"name": "linear", "params": {"in_dim": 3}}),
            "model.head.params.in_dim: set to 3",
        ),
    ],
)
def test_user_errors_exit_2_without_traceback(toy_host, tmp_path, capsys, mutate, expected):
    data = toy_spec()
    mutate(data)
    assert main(["check", str(_spec_file(tmp_path, data))]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err
    assert "Traceback" not in err


def test_malformed_yaml_exit_2(toy_host, tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("name: [unclosed\n")
    assert main(["check", str(path)]) == 2
    assert "invalid YAML at line" in capsys.readouterr().err


def test_debug_reraises(toy_host, tmp_path):
    from modalforge.errors import SpecError

    with pytest.raises(SpecError):
        main(["--debug", "check", str(tmp_path / "missing.yaml")])


def test_subprocess_exit_code_and_no_traceback(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\n")
    proc = subprocess.run(
        [sys.executable, "-m", "modalforge", "check", str(path)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert "data: Field required" in proc.stderr


def test_components_listing(toy_host, capsys):
    assert main(["components", "head"]) == 0
    out = capsys.readouterr().out
    assert "heads (1):" in out and "linear" in out and "bias: bool = True" in out
    assert main(["components", "head", "linear"]) == 0
    out = capsys.readouterr().out
    assert "sized by the pipeline (not set in specs): in_dim, target" in out
    assert main(["components", "heads", "nope"]) == 2
    assert "no head named 'nope'" in capsys.readouterr().err


def test_overrides_after_options(toy_host, tmp_path, capsys):
    path = _spec_file(tmp_path, toy_spec())
    argv = ["train", str(path), "--out", str(tmp_path / "run"), "train.epochs=2", "seed=3"]
    assert main(argv) == 0
    assert yaml.safe_load((tmp_path / "run" / "spec.yaml").read_text())["train"]["epochs"] == 2
    with pytest.raises(SystemExit):
        main(["check", str(path), "--bogus"])
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_a_built_in_recipe_is_named_recipe_colon_name(capsys):
    assert main(["check", "recipe:digits_gan.yaml", "train.epochs=1"]) == 0
    out = capsys.readouterr().out
    assert "generator: text_gan" in out and "digits_gan.yaml is valid" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "recipe:digits_nope.yaml"],
        ["generate", "recipe:digits_nope.yaml", "a seven", "--checkpoint", "x", "--out", "g.png"],
        [
            "generate",
            "g.yaml",
            "a seven",
            "--checkpoint",
            "x",
            "--out",
            "g.png",
            "--rerank",
            "recipe:digits_nope.yaml",
        ],
    ],
)
def test_an_unknown_recipe_exits_2_naming_the_available_ones(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "no recipe named 'digits_nope.yaml'" in err and "digits_gan.yaml" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("content", [b"", b"\x00" * 64])
def test_a_damaged_weights_file_exits_2_naming_the_param(tmp_path, capsys, content):
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(content)
    argv = [
        "check",
        "recipe:digits_classifier",
        f"model.encoders.image.params.weights_file={weights}",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: model.encoders.image.params.weights_file: weights file ")
    assert "Traceback" not in err and "internal error" not in err
