"""Bring-your-own CLIP / SigLIP: saved transformers models loaded through our encoders.

SigLIP's own tokenizer needs sentencepiece model files, which cannot be produced offline here, so
the SigLIP folder carries a small fast word-level tokenizer, and the embeddings are compared on
pre-tokenised ``input_ids`` (what the model sees either way).
"""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest
import torch

from modalforge.errors import CheckpointError, SpecError
from modalforge.modality import Modality
from modalforge.pipeline import ContrastiveModel
from modalforge_clip import (
    HFClipImageEncoder,
    HFClipTextEncoder,
    HFSiglipImageEncoder,
    HFSiglipTextEncoder,
    load_clip_pair,
)
from modalforge_clip.cache import PAIR_CACHE

transformers = pytest.importorskip("transformers")

PIXELS = Modality("image", "image2d", (3, 32, 32))
IMAGES = Modality("image", "image2d", (3, None, None), "image")
CAPTIONS = Modality("text", "text", (None,), "str")
IDS = Modality("text", "text", (10,), "int64")
FIELD = "model.encoders.image.params.model_dir"


def _reference(cls_name: str, folder):
    return getattr(transformers, cls_name).from_pretrained(str(folder)).eval()


def _features(out) -> torch.Tensor:  # transformers 5 returns an output object, 4 a tensor
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def _pil(seed: int = 0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (40, 52, 3), dtype=np.uint8))


def test_clip_pair_matches_get_image_and_text_features(hf_clip_dir):
    ref = _reference("CLIPModel", hf_clip_dir)
    before = PAIR_CACHE.loads
    image, text, scale, bias = load_clip_pair(str(hf_clip_dir))
    assert PAIR_CACHE.loads == before + 1  # one read for both towers
    assert isinstance(image, HFClipImageEncoder) and isinstance(text, HFClipTextEncoder)
    assert scale == pytest.approx(ref.logit_scale.item()) and bias is None

    pixels = torch.stack([image.preprocess()(_pil(i)) for i in range(3)])
    processor = transformers.AutoImageProcessor.from_pretrained(str(hf_clip_dir))
    expected_pixels = processor(images=[_pil(i) for i in range(3)], return_tensors="pt")
    torch.testing.assert_close(pixels, expected_pixels["pixel_values"])

    captions = ["a photo of a cat", "the red car", ""]
    ids = text.collate()([text.preprocess()(c) for c in captions])  # padded to the longest
    tok = transformers.AutoTokenizer.from_pretrained(str(hf_clip_dir))
    enc = tok(captions, padding="max_length", max_length=12, return_tensors="pt")
    assert ids.shape == (3, 7) and torch.equal(ids, enc["input_ids"][:, :7])
    with torch.no_grad():
        want_image = _features(ref.get_image_features(pixel_values=pixels))
        want_text = _features(ref.get_text_features(**enc))  # with the attention mask
        got_image, got_text = image.eval()(pixels), text.eval()(ids)
    assert image.output.dim == text.output.dim == 24
    torch.testing.assert_close(got_image, want_image, rtol=0, atol=1e-5)
    torch.testing.assert_close(got_text, want_text, rtol=0, atol=1e-5)


def _legacy_eos_copy(hf_clip_dir, folder) -> str:
    """The CLIP folder with the pre-2023 ``eos_token_id: 2`` (pooling at ``argmax`` of the ids)."""
    import json

    shutil.copytree(hf_clip_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["text_config"]["eos_token_id"] = 2
    (folder / "config.json").write_text(json.dumps(config))
    return str(folder)


@pytest.mark.parametrize("legacy", [False, True])
def test_clip_text_padded_to_the_longest_caption_gives_the_max_length_embedding(
    hf_clip_dir, tmp_path, legacy
):
    folder = _legacy_eos_copy(hf_clip_dir, tmp_path / "old") if legacy else str(hf_clip_dir)
    PAIR_CACHE.clear()
    text = HFClipTextEncoder(CAPTIONS, folder).eval()
    assert text.padding_is_inert()
    captions = ["a photo of a cat", "the red car", "a cat"]
    ids = text.collate()([text.preprocess()(c) for c in captions])
    assert ids.shape == (3, 7)  # the longest caption's length, not max_length (12)
    full = torch.cat([ids, torch.full((3, 5), text.tokenize.pad_id)], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(text(ids), text(full), rtol=0, atol=1e-5)


def test_clip_text_keeps_max_length_where_argmax_pooling_would_move(
    hf_clip_dir, tmp_path, monkeypatch
):
    from modalforge_transformers import HFTokenize

    PAIR_CACHE.clear()
    text = HFClipTextEncoder(CAPTIONS, _legacy_eos_copy(hf_clip_dir, tmp_path / "old"))
    eos = text.tokenize.tokenizer.eos_token_id
    monkeypatch.setattr(HFTokenize, "pad_id", property(lambda self: eos + 1))  # above the end
    assert not text.padding_is_inert()  # argmax would pool at the first padding token
    ids = text.collate()([text.preprocess()(c) for c in ["a photo of a cat", "a cat"]])
    assert ids.shape == (2, 12) and ids[1, 4:].eq(eos + 1).all()


@pytest.mark.parametrize("content", ["{oops", "", "[1, 2]"])
def test_a_damaged_image_processor_file_names_the_param(hf_clip_dir, tmp_path, content):
    folder = tmp_path / "clip"
    shutil.copytree(hf_clip_dir, folder)
    (folder / "preprocessor_config.json").write_text(content)
    PAIR_CACHE.clear()
    encoder = HFClipImageEncoder(IMAGES, str(folder))
    with pytest.raises(SpecError, match=rf"^{FIELD}: cannot read the image processor .*prepro"):
        encoder.preprocess()


def test_towers_hold_disjoint_parameters_and_pipelines_do_not_share(hf_clip_dir):
    image, text, _, _ = load_clip_pair(str(hf_clip_dir))
    image2, _, _, _ = load_clip_pair(str(hf_clip_dir))
    ids = {id(p) for p in image.parameters()}
    assert ids.isdisjoint(id(p) for p in text.parameters())
    assert ids.isdisjoint(id(p) for p in image2.parameters())
    assert all(k.startswith(("vision_model.", "visual_projection.")) for k in image.state_dict())
    assert all(k.startswith(("text_model.", "text_projection.")) for k in text.state_dict())


def test_contrastive_model_uses_the_towers_embeddings_as_they_are(hf_clip_dir):
    ref = _reference("CLIPModel", hf_clip_dir)
    encoders = {
        "image": HFClipImageEncoder(PIXELS, str(hf_clip_dir)),
        "text": HFClipTextEncoder(IDS, str(hf_clip_dir), max_length=10),
    }
    model = ContrastiveModel(encoders).eval()
    assert all(isinstance(p, torch.nn.Identity) for p in model.projections.values())
    pixels = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        got = model({"image": pixels})["embed.image"]
        want = _features(ref.get_image_features(pixel_values=pixels))
    torch.testing.assert_close(got, torch.nn.functional.normalize(want, dim=-1), atol=1e-5, rtol=0)


def test_siglip_pair_matches_get_features_and_carries_logit_bias(hf_siglip_dir):
    ref = _reference("SiglipModel", hf_siglip_dir)
    image, text, scale, bias = load_clip_pair(str(hf_siglip_dir), text_modality=IDS)
    assert isinstance(image, HFSiglipImageEncoder) and isinstance(text, HFSiglipTextEncoder)
    assert (scale, bias) == (pytest.approx(2.5), pytest.approx(-3.0))
    pixels = torch.stack([image.preprocess()(_pil(i)) for i in range(2)])
    processor = transformers.AutoImageProcessor.from_pretrained(str(hf_siglip_dir))
    want_pixels = processor(images=[_pil(0), _pil(1)], return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(pixels, want_pixels)
    ids = torch.tensor([[3, 4, 5, 6, 7, 1, 0, 0, 0, 0], [8, 9, 10, 11, 1, 0, 0, 0, 0, 0]])
    with torch.no_grad():
        want_image = _features(ref.get_image_features(pixel_values=pixels))
        want_text = _features(ref.get_text_features(input_ids=ids))
        torch.testing.assert_close(image.eval()(pixels), want_image, rtol=0, atol=1e-5)
        torch.testing.assert_close(text.eval()(ids), want_text, rtol=0, atol=1e-5)
    assert image.output.dim == want_image.shape[1] and text.output.dim == want_text.shape[1]


def test_siglip_captions_are_padded_to_the_models_length(hf_siglip_dir):
    text = HFSiglipTextEncoder(CAPTIONS, str(hf_siglip_dir))
    tokenize = pickle.loads(pickle.dumps(text.preprocess()))
    assert tokenize("a photo of the cat").tolist() == [3, 4, 5, 6, 7, 1, 0, 0, 0, 0]


def test_image_preprocess_takes_tensors_and_arrays(hf_clip_dir):
    transform = HFClipImageEncoder(IMAGES, str(hf_clip_dir)).preprocess()
    image = _pil(5)
    array = np.array(image)
    from_pil = transform(image)
    assert from_pil.shape == (3, 32, 32)
    torch.testing.assert_close(transform(array), from_pil)
    torch.testing.assert_close(transform(torch.from_numpy(array).permute(2, 0, 1)), from_pil)
    as_float = transform(torch.from_numpy(array).permute(2, 0, 1).float() / 255)
    assert as_float.shape == from_pil.shape  # resized without uint8 rounding, so close only
    assert (as_float - from_pil).abs().mean() < 0.05


def test_frozen_tower_has_no_gradients_and_stays_in_eval(hf_clip_dir):
    enc = HFClipImageEncoder(PIXELS, str(hf_clip_dir), freeze=True)
    enc.train()
    assert not enc.training and not any(p.requires_grad for p in enc.parameters())
    assert not enc(torch.randn(1, 3, 32, 32)).requires_grad


def test_missing_folder_and_folder_without_config(tmp_path):
    with pytest.raises(SpecError, match=rf"^{FIELD}: model folder .* does not exist"):
        HFClipImageEncoder(PIXELS, str(tmp_path / "nope"))
    with pytest.raises(SpecError, match=rf"^{FIELD}: .* no config\.json"):
        HFClipImageEncoder(PIXELS, str(tmp_path))


def test_folder_of_the_other_family_suggests_its_encoder(hf_clip_dir):
    with pytest.raises(SpecError, match=rf"^{FIELD}: .*'clip' model.*use hf_clip_image"):
        HFSiglipImageEncoder(PIXELS, str(hf_clip_dir))


def test_weights_not_matching_the_config_list_the_keys(hf_clip_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "partial"
    shutil.copytree(hf_clip_dir, folder)
    state = load_file(str(folder / "model.safetensors"))
    state = {k: v for k, v in state.items() if not k.startswith("visual_projection")}
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match=rf"^{FIELD}: .*missing keys: visual_projection"):
        HFClipImageEncoder(PIXELS, str(folder))


def test_captions_need_a_tokenizer_in_the_folder(hf_clip_dir, tmp_path):
    folder = tmp_path / "no_tokenizer"
    shutil.copytree(hf_clip_dir, folder, ignore=shutil.ignore_patterns("tokenizer*", "vocab*"))
    with pytest.raises(SpecError, match=r"^model\.encoders\.text\.params\.model_dir: .*tokenizer"):
        HFClipTextEncoder(CAPTIONS, str(folder))
    HFClipTextEncoder(IDS, str(folder), max_length=10)  # pre-tokenised ids need none


@pytest.mark.parametrize(
    ("modality", "match"),
    [
        (Modality("image", "image2d", (1, 32, 32)), "RGB images"),
        (Modality("image", "image2d", (3, 64, 64)), r"32×32 images"),
    ],
)
def test_image_modality_must_fit_the_model(hf_clip_dir, modality, match):
    with pytest.raises(SpecError, match=rf"^model\.encoders\.image: .*{match}"):
        HFClipImageEncoder(modality, str(hf_clip_dir))


def test_max_length_beyond_the_models_positions_names_the_param(hf_clip_dir):
    with pytest.raises(SpecError, match=r"^model\.encoders\.text\.params\.max_length"):
        HFClipTextEncoder(IDS, str(hf_clip_dir), max_length=13)


def test_load_clip_pair_rejects_other_models(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(SpecError, match=r"'bert' model, not CLIP or SigLIP"):
        load_clip_pair(str(tmp_path))
