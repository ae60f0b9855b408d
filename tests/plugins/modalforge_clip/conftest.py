"""Tiny CLIP-family models and tokenizers, built locally with random weights and saved to disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

WORDS = ["a", "photo", "of", "the", "cat", "dog", "red", "blue", "car"]


def write_tiny_clip_bpe(folder: Path) -> dict[str, int]:
    """A CLIP-style BPE vocabulary: letters, word-final letters, whole words, then specials.

    ``<|endoftext|>`` is the last (largest) id, as in CLIP's real vocabulary.
    """
    folder.mkdir(parents=True, exist_ok=True)
    letters = list("abcdefghijklmnopqrstuvwxyz.,!'")
    vocab = {c: i for i, c in enumerate(letters)}
    vocab.update({c + "</w>": len(letters) + i for i, c in enumerate(letters)})
    merges = []
    for word in WORDS:  # left-to-right merges building each word
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        while len(parts) > 1:
            merges.append(f"{parts[0]} {parts[1]}")
            parts = [parts[0] + parts[1], *parts[2:]]
            vocab.setdefault(parts[0], len(vocab))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    unique = list(dict.fromkeys(merges))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(unique) + "\n")
    return vocab


@pytest.fixture(scope="session")
def clip_bpe_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("clip_bpe")
    write_tiny_clip_bpe(folder)
    return folder


@pytest.fixture(scope="session")
def hf_clip_dir(tmp_path_factory, clip_bpe_dir) -> Path:
    """A random ``CLIPModel`` with its tokenizer and image processor, saved by save_pretrained."""
    transformers = pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("hf_clip")
    tok = transformers.CLIPTokenizerFast.from_pretrained(str(clip_bpe_dir))
    config = transformers.CLIPConfig(
        text_config={
            "vocab_size": len(tok),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "max_position_embeddings": 12,
            "bos_token_id": tok.bos_token_id,
            "eos_token_id": tok.eos_token_id,
            "pad_token_id": tok.pad_token_id,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=24,
    )
    torch.manual_seed(0)
    transformers.CLIPModel(config).save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    transformers.CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    ).save_pretrained(str(folder))
    return folder


def word_level_tokenizer(max_length: int):
    """A fast word-level tokenizer built offline (stands in for SigLIP's sentencepiece one)."""
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(WORDS)}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    from tokenizers.processors import TemplateProcessing

    backend.post_processor = TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=max_length,
    )


@pytest.fixture(scope="session")
def hf_siglip_dir(tmp_path_factory) -> Path:
    """A random ``SiglipModel`` with an offline word-level tokenizer and its image processor."""
    transformers = pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("hf_siglip")
    config = transformers.SiglipConfig(
        text_config={
            "vocab_size": 16,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "max_position_embeddings": 10,
            "pad_token_id": 0,
            "eos_token_id": 1,
            "bos_token_id": None,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "image_size": 32,
            "patch_size": 8,
        },
    )
    torch.manual_seed(1)
    model = transformers.SiglipModel(config)
    with torch.no_grad():  # distinct from the defaults, so the test sees them carried over
        model.logit_scale.fill_(2.5)
        model.logit_bias.fill_(-3.0)
    model.save_pretrained(str(folder))
    word_level_tokenizer(10).save_pretrained(str(folder))
    transformers.SiglipImageProcessor(size={"height": 32, "width": 32}).save_pretrained(str(folder))
    return folder
