import pytest

from modalforge.errors import SpecError
from modalforge.weights import check_weights_file


def test_existing_file_with_known_suffix(tmp_path):
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"x")
    assert check_weights_file(str(path), "a.b", hint="h") == path


def test_missing_file_names_field_and_hint(tmp_path):
    with pytest.raises(SpecError) as exc:
        check_weights_file(
            str(tmp_path / "nope.pt"), "model.x.params.w", what="checkpoint", hint="give the file"
        )
    msg = str(exc.value)
    assert msg.startswith("model.x.params.w: checkpoint ") and "does not exist" in msg
    assert "fix: give the file" in msg


def test_unknown_suffix(tmp_path):
    path = tmp_path / "w.npz"
    path.write_bytes(b"x")
    with pytest.raises(SpecError, match=r"unknown suffix.*\n  fix: use one of .safetensors, .pt"):
        check_weights_file(str(path), "f", hint="h")
