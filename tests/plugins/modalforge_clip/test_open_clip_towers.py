"""open_clip towers: a tiny open_clip model saved to a file, loaded through our encoders."""

from __future__ import annotations

import json
import pickle
import sys

import numpy as np
import pytest
import torch

from modalforge.errors import CheckpointError, MissingDependencyError, SpecError
from modalforge.modality import Modality
from modalforge_clip import OpenClipImageEncoder, OpenClipTextEncoder
from modalforge_clip.cache import PAIR_CACHE

open_clip = pytest.importorskip("open_clip")

PIXELS = Modality("image", "image2d", (3, 32, 32))
IDS = Modality("text", "text", (16,), "int64")
CAPTIONS = Modality("text", "text", (None,), "str")
FIELD = "model.encoders.{}.params.{}"


def _config(text_layers: int = 2, custom_text: bool = False) -> dict:
    cfg = {
        "embed_dim": 24,
        "vision_cfg": {
            "image_size": 32,
            "layers": 2,
            "width": 32,
            "patch_size": 8,
            "head_width": 16,
        },
        "text_cfg": {
            "context_length": 16,
            "vocab_size": 300,
            "width": 32,
            "heads": 4,
            "layers": text_layers,
        },
    }
    if custom_text:
        cfg["custom_text"] = True
    return cfg


def _local_model(folder, seed: int = 0, **kwargs):
    """A random open_clip model from a local-dir config; returns (model_name, model)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": _config(**kwargs)}))
    name = f"local-dir:{folder}"
    torch.manual_seed(seed)
    return name, open_clip.create_model(name, load_weights=False).eval()


def _save(model, path) -> str:
    if str(path).endswith(".safetensors"):
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    else:
        torch.save({"epoch": 1, "state_dict": model.state_dict()}, path)
    return str(path)


def _ids() -> torch.Tensor:
    ids = torch.randint(1, 298, (3, 16), generator=torch.Generator().manual_seed(0))
    ids[:, 0] = 298
    for row, end in enumerate([4, 15, 9]):
        ids[row, end] = 299
        ids[row, end + 1 :] = 0
    return ids


@pytest.mark.parametrize(("suffix", "custom"), [(".safetensors", False), (".pt", True)])
def test_towers_match_encode_image_and_encode_text(tmp_path, suffix, custom):
    name, ref = _local_model(tmp_path / "cfg", custom_text=custom)
    ckpt = _save(ref, tmp_path / f"model{suffix}")
    before = PAIR_CACHE.loads
    image = OpenClipImageEncoder(PIXELS, model_name=name, checkpoint=ckpt).eval()
    text = OpenClipTextEncoder(IDS, model_name=name, checkpoint=ckpt).eval()
    assert PAIR_CACHE.loads == before + 1
    assert image.logit_scale == pytest.approx(ref.logit_scale.item())
    pixels, ids = torch.randn(2, 3, 32, 32), _ids()
    with torch.no_grad():
        torch.testing.assert_close(image(pixels), ref.encode_image(pixels), rtol=0, atol=1e-5)
        torch.testing.assert_close(text(ids), ref.encode_text(ids), rtol=0, atol=1e-5)
    assert image.output.dim == text.output.dim == 24
    assert not any(k.startswith("visual") for k in text.state_dict())
    assert "logit_scale" not in text.state_dict()


def test_preprocess_is_open_clips_transform_and_tokenizer(tmp_path):
    from PIL import Image

    name, ref = _local_model(tmp_path / "cfg")
    ckpt = _save(ref, tmp_path / "model.safetensors")
    image = OpenClipImageEncoder(
        Modality("image", "image2d", (3, None, None), "image"), model_name=name, checkpoint=ckpt
    )
    text = OpenClipTextEncoder(CAPTIONS, model_name=name, checkpoint=ckpt)
    _, _, reference_transform = open_clip.create_model_and_transforms(name, load_weights=False)
    picture = Image.fromarray(
        np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    )
    transform = pickle.loads(pickle.dumps(image.preprocess()))
    torch.testing.assert_close(transform(picture), reference_transform(picture))
    tokenize = pickle.loads(pickle.dumps(text.preprocess()))
    expected = open_clip.get_tokenizer(name)(["a photo of a cat"])[0]
    assert torch.equal(tokenize("a photo of a cat"), expected) and expected.shape == (16,)


def test_checkpoint_of_another_architecture_lists_the_mismatch(tmp_path):
    name, _ = _local_model(tmp_path / "two")
    _, deeper = _local_model(tmp_path / "three", text_layers=3)
    ckpt = _save(deeper, tmp_path / "deeper.safetensors")
    with pytest.raises(CheckpointError) as info:
        OpenClipTextEncoder(IDS, model_name=name, checkpoint=ckpt)
    msg = str(info.value)
    assert msg.startswith(FIELD.format("text", "checkpoint"))
    assert "unexpected: transformer.resblocks.2." in msg


def test_checkpoint_of_another_width_is_a_checkpoint_error(tmp_path):
    name, _ = _local_model(tmp_path / "small")
    folder = tmp_path / "wide"
    folder.mkdir()
    cfg = _config()
    cfg["text_cfg"]["width"] = 64
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg}))
    wide = open_clip.create_model(f"local-dir:{folder}", load_weights=False)
    ckpt = _save(wide, tmp_path / "wide.safetensors")
    with pytest.raises(CheckpointError, match=r"size mismatch"):
        OpenClipImageEncoder(PIXELS, model_name=name, checkpoint=ckpt)


def test_unknown_model_name_lists_close_matches(tmp_path):
    ckpt = tmp_path / "x.safetensors"
    ckpt.write_bytes(b"")
    with pytest.raises(SpecError, match=r"^model\.encoders\.image\.params\.model_name: .*ViT-B-32"):
        OpenClipImageEncoder(PIXELS, model_name="ViT-B-32x", checkpoint=str(ckpt))
    with pytest.raises(SpecError, match=r"params\.model_name: models from the Hugging Face Hub"):
        OpenClipImageEncoder(PIXELS, model_name="hf-hub:org/model", checkpoint=str(ckpt))


def test_missing_checkpoint_names_the_param(tmp_path):
    name, _ = _local_model(tmp_path / "cfg")
    with pytest.raises(SpecError, match=r"^model\.encoders\.text\.params\.checkpoint: .*not exist"):
        OpenClipTextEncoder(IDS, model_name=name, checkpoint=str(tmp_path / "none.pt"))


@pytest.mark.parametrize("cut", [0, 100, "half"])
def test_an_empty_or_truncated_checkpoint_is_refused_before_building(tmp_path, cut):
    name, model = _local_model(tmp_path / "cfg")
    path = tmp_path / "w.safetensors"
    _save(model, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2 if cut == "half" else cut])
    expected = "is empty" if cut == 0 else "is truncated or corrupt"
    with pytest.raises(
        CheckpointError, match=rf"^model\.encoders\.image\.params\.checkpoint: .*{expected}"
    ):
        OpenClipImageEncoder(PIXELS, model_name=name, checkpoint=str(path))


def test_without_open_clip_installed_the_error_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "open_clip", None)  # makes `import open_clip` fail
    with pytest.raises(MissingDependencyError, match="pip install open-clip-torch"):
        OpenClipImageEncoder(PIXELS, model_name="ViT-B-32", checkpoint=str(tmp_path / "x.pt"))
