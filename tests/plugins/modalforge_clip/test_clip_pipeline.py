"""A contrastive spec with the built-in CLIP text tower: captions tokenised by the pipeline."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from modalforge.pipeline import build_pipeline
from modalforge.plugin import load_plugins
from modalforge.spec import parse_spec
from modalforge_clip import ClipTextEncoder

SPEC = {
    "name": "clip_digits",
    "data": {
        "dataset": {"name": "digits_captions", "params": {"image_size": 16}},
        "batch_size": 8,
    },
    "model": {
        "type": "contrastive",
        "embed_dim": 16,
        "encoders": {
            "image": {"name": "cnn", "params": {"widths": [4, 8]}},
            "text": {
                "name": "clip_text",
                "params": {
                    "context_length": 64,
                    "vocab_size": 258,
                    "width": 32,
                    "heads": 4,
                    "layers": 1,
                    "embed_dim": 16,
                },
            },
        },
    },
    "loss": "clip",
}


def test_captions_flow_through_preprocess_into_the_text_tower():
    pipe = build_pipeline(parse_spec(SPEC), load_plugins(warn=False).registry)
    text = pipe.model.encoders["text"]
    assert isinstance(text, ClipTextEncoder)
    assert isinstance(pipe.model.projections["text"], torch.nn.Identity)  # already embed_dim
    data = pipe.load("train")
    raw = pipe.dataset.load("train")[0]["text"]
    sample = data[0]
    assert torch.equal(sample["text"], text.tokenizer(raw)) and sample["text"].shape == (64,)
    batch = next(iter(DataLoader(data, batch_size=8)))
    out = pipe.model(batch)
    assert out["embed.text"].shape == out["embed.image"].shape == (8, 16)
    torch.testing.assert_close(out["embed.text"].norm(dim=-1), torch.ones(8))
    loss = pipe.loss(out, batch)
    loss.total.backward()
    assert text.token_embedding.weight.grad is not None
    assert text.transformer.resblocks[0].attn.in_proj_weight.grad.abs().sum() > 0
