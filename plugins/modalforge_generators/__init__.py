"""Built-in generators: text-conditional GAN, DALL·E-style VQ tokenizer + autoregressive
transformer, text-conditional diffusion, and CLIP reranking of their samples."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modalforge.plugin import hookimpl
from modalforge_generators.autoregressive import DalleTransformer
from modalforge_generators.diffusion import TextConditionalDiffusion
from modalforge_generators.gan import TextConditionalGAN
from modalforge_generators.rerank import ClipReranker
from modalforge_generators.vqvae import VQVAE

if TYPE_CHECKING:
    from modalforge.registry import Registrar


@hookimpl
def register_components(registry: Registrar) -> None:
    # Each generator module adds its own lines here.
    registry.generator("text_gan", TextConditionalGAN)
    registry.generator("vqvae", VQVAE)
    registry.generator("dalle", DalleTransformer)
    registry.generator("diffusion", TextConditionalDiffusion)
    registry.reranker("clip", ClipReranker)
