"""Padding to the longest caption, the folder's own maximum length, and truthful truncation
warnings (``HFTokenize`` and ``hf_text``), on a tiny BERT saved to a folder."""

from __future__ import annotations

import json
import logging
import pickle
import shutil
import warnings

import pytest
import torch

from modalforge.errors import SpecError
from modalforge.modality import Modality

transformers = pytest.importorskip("transformers")
from modalforge_transformers import HFTextEncoder, HFTokenize  # noqa: E402
from modalforge_transformers.tokenize import PadCollate  # noqa: E402

CAPTIONS = Modality("text", "text", (None,), "str")
FIELD = "model.encoders.text.params"
TEXTS = ["a photo of the cats", "a red car", "", "the dog is a red car of the cat"]


def _encoders(folder, pooling: str, **kwargs):
    torch.manual_seed(0)  # same projection in both
    dynamic = HFTextEncoder(CAPTIONS, str(folder), pooling=pooling, **kwargs).eval()
    torch.manual_seed(0)
    fixed = HFTextEncoder(
        CAPTIONS, str(folder), pooling=pooling, padding="max_length", **kwargs
    ).eval()
    return dynamic, fixed


@pytest.mark.parametrize("pooling", ["mean", "cls", "eos"])
def test_padding_to_the_longest_caption_gives_the_max_length_features(bert_dir, pooling):
    dynamic, fixed = _encoders(bert_dir, pooling, max_length=16, proj_dim=5)
    short = dynamic.collate()([dynamic.preprocess()(t) for t in TEXTS])
    full = torch.stack([fixed.preprocess()(t) for t in TEXTS])
    lengths = [len(transformers.AutoTokenizer.from_pretrained(str(bert_dir))(t)["input_ids"])
               for t in TEXTS]  # fmt: skip
    assert short.shape == (4, 2, max(lengths)) and max(lengths) < 16 and full.shape == (4, 2, 16)
    assert torch.equal(short[:, 1].sum(1), torch.tensor(lengths))  # each caption's own tokens
    assert torch.equal(short, full[:, :, : max(lengths)])  # the same ids, less padding
    with torch.no_grad():
        torch.testing.assert_close(dynamic(short), fixed(full), rtol=1e-5, atol=1e-5)


def test_the_engine_loader_pads_each_batch_to_its_longest_caption(bert_dir):
    from modalforge.engine.data import EpochLoader

    enc = HFTextEncoder(CAPTIONS, str(bert_dir))
    samples = [{"text": enc.preprocess()(t), "target": i} for i, t in enumerate(TEXTS)]
    loader = EpochLoader(
        samples, batch_size=2, shuffle=False, seed=0, num_workers=1, drop_last=False,
        pin_memory=False, field="t", collates={"text": enc.collate()},
    )  # fmt: skip
    batches = list(loader.epoch(0))
    lengths = [int(s["text"].shape[-1]) for s in samples]
    assert lengths[0] != lengths[1] and lengths[2] != lengths[3]
    expected = [(2, 2, max(lengths[:2])), (2, 2, max(lengths[2:]))]
    assert [tuple(b["text"].shape) for b in batches] == expected
    assert batches[1]["target"].tolist() == [2, 3]


def test_pad_collate_pads_ids_and_masks_on_the_right():
    collate = pickle.loads(pickle.dumps(PadCollate(9)))
    a, b = torch.tensor([[5, 6, 7], [1, 1, 1]]), torch.tensor([[5], [1]])
    assert collate([a, b]).tolist() == [[[5, 6, 7], [1, 1, 1]], [[5, 9, 9], [1, 0, 0]]]
    assert collate([torch.tensor([3]), torch.tensor([3, 4])]).tolist() == [[3, 9], [3, 4]]
    assert PadCollate(0, length=4)([torch.tensor([3])]).tolist() == [[3, 0, 0, 0]]


def test_max_length_defaults_to_the_folders_own_limit(bert_dir, tmp_path):
    assert HFTextEncoder(CAPTIONS, str(bert_dir)).max_length == 16  # max_position_embeddings
    folder = tmp_path / "st"
    shutil.copytree(bert_dir, folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, "model_max_length": 12}))
    assert HFTextEncoder(CAPTIONS, str(folder)).max_length == 12  # the tokenizer's
    (folder / "sentence_bert_config.json").write_text('{"max_seq_length": 10}')
    enc = HFTextEncoder(CAPTIONS, str(folder))
    assert enc.max_length == 10 and enc.preprocess().max_length == 10  # sentence-transformers'
    assert HFTextEncoder(CAPTIONS, str(folder), max_length=16).max_length == 16  # explicit wins
    with pytest.raises(SpecError, match=rf"^{FIELD}\.max_length: .*\(16\), got 17"):
        HFTextEncoder(CAPTIONS, str(folder), max_length=17)


def test_a_folder_limit_beyond_the_positions_is_capped(bert_dir, tmp_path):
    folder = tmp_path / "st"
    shutil.copytree(bert_dir, folder)
    (folder / "sentence_bert_config.json").write_text('{"max_seq_length": 512}')
    assert HFTextEncoder(CAPTIONS, str(folder)).max_length == 16


@pytest.fixture
def transformers_log():
    """Messages logged by transformers (its loggers do not propagate to pytest's caplog)."""
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    handler, logger = Keep(), logging.getLogger("transformers")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def test_a_long_caption_warns_truthfully_and_not_about_indexing_errors(
    bert_dir, tmp_path, transformers_log
):
    folder = tmp_path / "short_tokenizer"
    shutil.copytree(bert_dir, folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, "model_max_length": 8}))
    tokenize = HFTokenize(folder, max_length=8, padding="longest")
    long = " ".join(["the red car"] * 10)  # 32 tokens with [CLS] and [SEP]
    with pytest.warns(UserWarning, match=r"has 32 tokens, more than max_length=8: it was cut") as w:
        ids = tokenize(long)
    assert "indexing" not in str(w[0].message)
    reference = transformers.AutoTokenizer.from_pretrained(str(folder))
    assert ids.tolist() == reference(long, truncation=True, max_length=8)["input_ids"]
    assert len(ids) == 8 and ids[-1] == reference.sep_token_id  # cut, [SEP] kept
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tokenize("a red car").shape == (5,)  # a short caption: no warning, own length
    assert tokenize.truncated == 1
    assert not [m for m in transformers_log if "indexing errors" in m], transformers_log
