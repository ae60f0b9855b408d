"""The ``hf_text`` encoder: any transformers text model from a local folder.

transformers itself is imported only when an encoder is built, so loading this plugin stays
cheap. The loading helpers (:mod:`modalforge_transformers.local`) and the caption tokenizer
(:class:`HFTokenize`) are shared with the CLIP plugin's transformers-backed encoders.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modalforge.plugin import hookimpl
from modalforge_transformers.text import HFTextEncoder
from modalforge_transformers.tokenize import HFTokenize

if TYPE_CHECKING:
    from modalforge.registry import Registrar

__all__ = ["HFTextEncoder", "HFTokenize", "register_components"]


@hookimpl
def register_components(registry: Registrar) -> None:
    registry.encoder("hf_text", HFTextEncoder, tags=("text", "pretrained"))
