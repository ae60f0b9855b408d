"""CLIP encoders: a built-in CLIP text tower, and towers of your own CLIP / SigLIP weights.

- ``clip_text``: OpenAI CLIP's text transformer in plain PyTorch, with an offline byte tokenizer
  or CLIP's BPE from a local folder; loads OpenAI / open_clip text-tower weights.
- ``hf_clip_image`` / ``hf_clip_text`` / ``hf_siglip_image`` / ``hf_siglip_text``: the towers of
  a transformers ``CLIPModel`` / ``SiglipModel`` saved in a local folder (see
  :func:`load_clip_pair`).
- ``open_clip_image`` / ``open_clip_text``: the towers of an open_clip model and a local
  checkpoint (needs open-clip-torch).

transformers and open_clip are imported only when an encoder is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modalforge.plugin import hookimpl
from modalforge.text.tokenizers import ByteTokenizer, ClipBpeTokenizer
from modalforge_clip.hf import (
    HFClipImageEncoder,
    HFClipTextEncoder,
    HFSiglipImageEncoder,
    HFSiglipTextEncoder,
    load_clip_pair,
)
from modalforge_clip.open_clip_towers import OpenClipImageEncoder, OpenClipTextEncoder
from modalforge_clip.text import ClipTextEncoder

if TYPE_CHECKING:
    from modalforge.registry import Registrar

__all__ = [
    "ByteTokenizer",
    "ClipBpeTokenizer",
    "ClipTextEncoder",
    "HFClipImageEncoder",
    "HFClipTextEncoder",
    "HFSiglipImageEncoder",
    "HFSiglipTextEncoder",
    "OpenClipImageEncoder",
    "OpenClipTextEncoder",
    "load_clip_pair",
    "register_components",
]


@hookimpl
def register_components(registry: Registrar) -> None:
    registry.encoder("clip_text", ClipTextEncoder, tags=("text", "clip"))
    registry.encoder("hf_clip_image", HFClipImageEncoder, tags=("image2d", "clip", "pretrained"))
    registry.encoder("hf_clip_text", HFClipTextEncoder, tags=("text", "clip", "pretrained"))
    registry.encoder(
        "hf_siglip_image", HFSiglipImageEncoder, tags=("image2d", "siglip", "pretrained")
    )
    registry.encoder("hf_siglip_text", HFSiglipTextEncoder, tags=("text", "siglip", "pretrained"))
    registry.encoder(
        "open_clip_image", OpenClipImageEncoder, tags=("image2d", "clip", "pretrained")
    )
    registry.encoder("open_clip_text", OpenClipTextEncoder, tags=("text", "clip", "pretrained"))
