"""A tiny random BERT with a WordPiece vocabulary, saved to a folder as save_pretrained does."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

WORDS = ["a", "photo", "of", "the", "cat", "dog", "##s", "red", "car", "is"]


@pytest.fixture(scope="session")
def bert_dir(tmp_path_factory) -> Path:
    transformers = pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("bert")
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    (folder / "vocab.txt").write_text("\n".join(specials + WORDS) + "\n")
    tok = transformers.BertTokenizerFast.from_pretrained(str(folder))
    (folder / "vocab.txt").unlink()
    tok.save_pretrained(str(folder))
    config = transformers.BertConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=16,
    )
    torch.manual_seed(0)
    transformers.BertModel(config).save_pretrained(str(folder))
    return folder
