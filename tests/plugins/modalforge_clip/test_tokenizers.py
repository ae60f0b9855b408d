"""The CLIP caption tokenizers: byte-level offline default, CLIP BPE from a local folder."""

from __future__ import annotations

import json
import pickle
import warnings

import pytest
import torch

from modalforge.errors import DataError, SpecError
from modalforge.text.tokenizers import (
    ByteTokenizer,
    ClipBpeTokenizer,
    build_tokenizer,
    clean_caption,
)

FIELD = "model.encoders.text.params"


def _ids(*values: int, length: int) -> torch.Tensor:
    out = torch.zeros(length, dtype=torch.long)
    out[: len(values)] = torch.tensor(values)
    return out


def test_byte_tokenizer_frames_utf8_bytes_with_start_and_end():
    tok = ByteTokenizer(context_length=12)
    expected = _ids(256, *b"caf\xc3\xa9 ok", 257, length=12)  # é is two bytes
    assert torch.equal(tok("  Caf&eacute;\n\tOK "), expected)
    assert tok("x").dtype == torch.long and tok("x").shape == (12,)


def test_empty_caption_encodes_to_start_and_end():
    tok = ByteTokenizer(context_length=6)
    assert torch.equal(tok(""), _ids(256, 257, length=6))
    assert torch.equal(tok("   "), _ids(256, 257, length=6))


def test_end_of_text_is_the_largest_id_so_argmax_pools_it():
    tok = ByteTokenizer(context_length=16)
    ids = tok("\xff\xfe anything")  # the largest byte values still sort below the end token
    assert ids.argmax().item() == (ids != 0).nonzero().max().item()


def test_truncation_keeps_end_token_counts_and_warns_once():
    tok = ByteTokenizer(context_length=8)
    with pytest.warns(UserWarning, match="truncated"):
        first = tok("abcdefghijkl")
    assert torch.equal(first, _ids(256, *b"abcdef", 257, length=8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second long caption is counted, not warned
        tok("mnopqrstuvwxyz")
        tok("short")
    assert tok.truncated == 2
    assert ByteTokenizer(context_length=8).truncated == 0  # counts are per tokenizer


def test_a_list_of_captions_gives_a_batch():
    tok = ByteTokenizer(context_length=5)
    batch = tok(["a", "bc"])
    assert batch.shape == (2, 5)
    assert torch.equal(batch[1], tok("bc"))


def test_non_string_caption_is_a_data_error():
    with pytest.raises(DataError, match="must be a str"):
        ByteTokenizer(context_length=5)(3)


def test_clean_caption():
    assert clean_caption("A &amp;&lt;B&gt;\u200b\n\n C\x00") == "a &<b> c"


def test_byte_tokenizer_needs_258_ids():
    with pytest.raises(SpecError, match=rf"^{FIELD}\.vocab_size: .*258"):
        build_tokenizer("bytes", context_length=8, vocab_size=257, tokenizer_dir=None, field=FIELD)


def test_clip_bpe_reads_a_local_vocab_and_merges(clip_bpe_dir):
    vocab = json.loads((clip_bpe_dir / "vocab.json").read_text())
    tok = build_tokenizer(
        "clip_bpe",
        context_length=8,
        vocab_size=len(vocab),
        tokenizer_dir=str(clip_bpe_dir),
        field=FIELD,
    )
    ids = tok("A  photo of the CAT!")
    expected = [
        vocab["<|startoftext|>"],
        vocab["a</w>"],
        vocab["photo</w>"],
        vocab["of</w>"],
        vocab["the</w>"],
        vocab["cat</w>"],
        vocab["!</w>"],
        vocab["<|endoftext|>"],
    ]
    assert ids.tolist() == expected
    clone = pickle.loads(pickle.dumps(tok))  # workers reload the tokenizer from its folder
    assert clone._tok is None and torch.equal(clone("a red car"), tok("a red car"))


@pytest.mark.parametrize(
    ("file", "content"),
    [("vocab.json", b"{oops"), ("vocab.json", b""), ("merges.txt", bytes(range(128, 256)))],
)
def test_damaged_clip_bpe_files_name_the_param(clip_bpe_dir, tmp_path, file, content):
    import shutil

    folder = tmp_path / "bpe"
    shutil.copytree(clip_bpe_dir, folder)
    (folder / file).write_bytes(content)
    with pytest.raises(SpecError, match=rf"^{FIELD}\.tokenizer_dir: cannot load a CLIP tokenizer"):
        build_tokenizer(
            "clip_bpe", context_length=8, vocab_size=300, tokenizer_dir=str(folder), field=FIELD
        )


def test_clip_bpe_matches_open_clip_tokenize_on_the_real_vocabulary(tmp_path):
    """The real CLIP BPE (open_clip ships its merges) gives open_clip.tokenize's ids."""
    open_clip = pytest.importorskip("open_clip")
    from open_clip.tokenizer import SimpleTokenizer

    simple = SimpleTokenizer()
    names = {"<start_of_text>": "<|startoftext|>", "<end_of_text>": "<|endoftext|>"}
    vocab = {names.get(k, k): v for k, v in simple.encoder.items()}
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    merges = sorted(simple.bpe_ranks, key=simple.bpe_ranks.get)
    (tmp_path / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n"
    )
    captions = [
        "a photo of a cat.",
        "Two DOGS playing in the snow!",
        "",
        "naïve café façade — 42 €",
        "word " * 100,  # truncated: open_clip also keeps the end token last
    ]
    tok = ClipBpeTokenizer(str(tmp_path), context_length=77)
    with pytest.warns(UserWarning, match="truncated"):
        ours = tok(captions)
    assert torch.equal(ours, open_clip.tokenize(captions))
    assert tok.vocab_size == 49408 and tok.eot == 49407


def test_clip_bpe_folder_missing_merges_names_the_file(tmp_path):
    (tmp_path / "vocab.json").write_text("{}")
    with pytest.raises(SpecError, match=rf"^{FIELD}\.tokenizer_dir: .* lacks merges\.txt"):
        build_tokenizer(
            "clip_bpe", context_length=8, vocab_size=100, tokenizer_dir=str(tmp_path), field=FIELD
        )


@pytest.mark.parametrize("folder", [None, "does/not/exist"])
def test_clip_bpe_without_a_folder_is_a_spec_error(folder):
    with pytest.raises(SpecError, match=rf"^{FIELD}\.tokenizer_dir"):
        build_tokenizer(
            "clip_bpe", context_length=8, vocab_size=100, tokenizer_dir=folder, field=FIELD
        )


def test_clip_bpe_vocabulary_larger_than_the_tower_is_a_spec_error(clip_bpe_dir):
    with pytest.raises(SpecError, match=rf"^{FIELD}\.vocab_size: .*has \d+ tokens"):
        build_tokenizer(
            "clip_bpe",
            context_length=8,
            vocab_size=10,
            tokenizer_dir=str(clip_bpe_dir),
            field=FIELD,
        )
