import os

import pytest
import torch
from safetensors.torch import save_file

from modalforge.errors import CheckpointError, SpecError
from modalforge.weights import check_weights_file, file_format, inspect_weights, read_state_dict


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


# ------------------------------------------------------------------ what the file holds

STATE = {"a.weight": torch.arange(6.0).reshape(2, 3), "a.bias": torch.ones(2)}


class _Evil:
    """Unpickling this would run a shell command; a weights reader must refuse it."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def good(tmp_path):
    st, pt = tmp_path / "w.safetensors", tmp_path / "w.pth"
    save_file(STATE, str(st))
    torch.save(STATE, pt)
    return st, pt


def test_good_files_give_the_state_dict_and_its_shapes(good, tmp_path):
    nested = tmp_path / "train.pth"
    torch.save({"state_dict": STATE, "epoch": 3}, nested)
    for path in (*good, nested):
        assert inspect_weights(path, "f") == {"a.weight": (2, 3), "a.bias": (2,)}
        got = read_state_dict(path, "f")
        assert all(torch.equal(got[k], v) for k, v in STATE.items()) and set(got) == set(STATE)
    assert [file_format(p) for p in good] == ["safetensors", "torch-zip"]


def _write(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("name", ["e.safetensors", "e.pth"])
def test_an_empty_file_says_it_is_empty(tmp_path, name):
    with pytest.raises(CheckpointError, match=r"^m\.w: weights file .* is empty \(0 bytes\)"):
        inspect_weights(_write(tmp_path, name, b""), "m.w")


def test_truncated_files_are_corrupt_not_internal_errors(good, tmp_path):
    for path in good:
        data = path.read_bytes()
        for cut in (len(data) // 2, 20):
            bad = _write(tmp_path, "cut" + path.suffix, data[:cut])
            with pytest.raises(CheckpointError, match=r"^m\.w: .*cut.* is truncated or corrupt"):
                read_state_dict(bad, "m.w")
            with pytest.raises(CheckpointError, match="truncated or corrupt"):
                inspect_weights(bad, "m.w")


@pytest.mark.parametrize("name", ["g.safetensors", "g.pth", "g.bin"])
def test_random_bytes_are_neither_format(tmp_path, name):
    path = _write(tmp_path, name, bytes(range(7, 256)) * 4)
    with pytest.raises(CheckpointError, match=r"first bytes match neither format"):
        inspect_weights(path, "m.w")


def test_a_pickled_object_is_refused_without_being_run(tmp_path):
    marker = tmp_path / "ran"
    torch.save({"x": _Evil(str(marker))}, tmp_path / "evil.pth")
    torch.save(torch.nn.Linear(2, 2), tmp_path / "module.pth")
    with pytest.raises(CheckpointError, match=r"pickled Python objects.*(posix|os)\.system"):
        read_state_dict(tmp_path / "evil.pth", "m.w")
    with pytest.raises(CheckpointError, match=r"pickled Python objects.*torch\.nn\..*Linear"):
        inspect_weights(tmp_path / "module.pth", "m.w")
    assert not marker.exists()


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ([1, 2, 3], "holds a list, not a state dict"),
        ({"a": "text", "b": torch.ones(1)}, "entry 'a' is a str, not a tensor"),
        ({}, "it is empty"),
    ],
)
def test_a_file_that_is_not_a_state_dict(tmp_path, obj, expected):
    torch.save(obj, tmp_path / "x.pth")
    with pytest.raises(CheckpointError, match=expected):
        inspect_weights(tmp_path / "x.pth", "m.w")


def test_a_folder_or_a_misnamed_file(good, tmp_path):
    (tmp_path / "d.safetensors").mkdir()
    with pytest.raises(SpecError, match=r"d\.safetensors is a folder, not a file"):
        inspect_weights(tmp_path / "d.safetensors", "m.w")
    st, pt = good
    renamed = _write(tmp_path, "pt.safetensors", pt.read_bytes())
    with pytest.raises(CheckpointError, match=r"named \.safetensors.*\n.*rename it to pt\.pth"):
        inspect_weights(renamed, "m.w")
    renamed = _write(tmp_path, "st.pth", st.read_bytes())
    with pytest.raises(CheckpointError, match=r"fix: rename it to st\.safetensors"):
        inspect_weights(renamed, "m.w")
