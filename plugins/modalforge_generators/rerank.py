"""``clip`` reranker: score generated images by cosine similarity to their prompt under a CLIP
trained with modalforge (a contrastive spec and its checkpoint), as DALL·E reranks its samples.

Images are brought to the CLIP's image modality first: grey ↔ RGB (repeat, or ITU-R 601
luminance), then resized to its height × width (area averaging to shrink, bilinear to enlarge).
A CLIP whose image modality is raw (PIL images through the encoder's ``preprocess()``) receives
each image as a PIL image.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from modalforge.contracts import Reranker
from modalforge.errors import ModalforgeError, SpecError

_LUMA = (0.299, 0.587, 0.114)


class ClipReranker(Reranker):
    """Cosine similarity between each candidate image and its prompt, in a trained CLIP's space.

    ``spec`` and ``checkpoint``: the CLIP pipeline (``model.type: contrastive``) and its trained
    weights (a run folder or checkpoint). ``image_modality`` / ``text_modality`` default to the
    model's only text modality and the other one.
    """

    def __init__(
        self,
        spec: str,
        checkpoint: str,
        image_modality: str | None = None,
        text_modality: str | None = None,
        device: str | None = None,
        batch_size: int = 256,
    ) -> None:
        from modalforge.evaluation import is_contrastive
        from modalforge.pipeline import load_trained

        if not Path(spec).is_file():
            raise SpecError("spec", f"reranker spec {spec} does not exist", hint="check the path")
        self.trained = load_trained(spec, checkpoint, device=device)
        model = self.trained.model
        if not is_contrastive(model):
            raise SpecError(
                "model.type",
                f"reranker spec {spec} builds a {type(model).__name__}; reranking needs a CLIP "
                "(a contrastive model with image and text encoders)",
                hint="pass a spec with `model.type: contrastive`, e.g. recipes/digits_clip.yaml",
            )
        self.spec_path = spec
        self.batch_size = batch_size
        self.image, self.text = self._modalities(image_modality, text_modality)
        if model.encoders[self.text].preprocess() is None:
            raise SpecError(
                f"model.encoders.{self.text}",
                f"the reranker's text encoder ({type(model.encoders[self.text]).__name__}, in "
                f"{spec}) has no tokenizer, so it cannot embed free-text prompts",
                hint="use a CLIP whose text encoder carries its tokenizer, e.g. clip_text",
            )

    def _modalities(self, image: str | None, text: str | None) -> tuple[str, str]:
        from modalforge.evaluation.encode import pick_image_text

        mods = self.trained.pipeline.dataset.modalities
        return pick_image_text(
            {m: mods[m].kind for m in self.trained.model.encoders},
            image,
            text,
            model=f"the reranker CLIP ({self.spec_path})",
            image_option="image_modality",
            text_option="text_modality",
        )

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.trained.pipeline.dataset.modalities[self.image].shape)

    def check(self, sample_shape: Sequence[int]) -> None:
        shape = tuple(sample_shape)
        want = self.image_shape
        if len(shape) != 3 or (len(want) == 3 and {shape[0], want[0]} - {1, 3}):
            raise ModalforgeError(
                f"the reranker CLIP ({self.spec_path}) takes images {want}, and the generator "
                f"makes samples of shape {shape}",
                hint="rerank with a CLIP trained on images (1 or 3 channels)",
            )

    def _adapt(self, images: Tensor) -> Tensor:
        """``(B, C, H, W)`` in [0, 1] → the CLIP image modality's channels and size."""
        want = self.image_shape
        if len(want) != 3:
            return images
        c, h, w = want
        if images.shape[1] == 1 and c == 3:
            images = images.expand(-1, 3, -1, -1)
        elif images.shape[1] == 3 and c == 1:
            luma = torch.tensor(_LUMA, dtype=images.dtype, device=images.device)
            images = (images * luma.view(1, 3, 1, 1)).sum(1, keepdim=True)
        size = tuple(images.shape[-2:])
        if size != (h, w) and h and w:
            shrink = h <= size[0] and w <= size[1]
            images = F.interpolate(images, size=(h, w), mode="area" if shrink else "bilinear")
        return images.clamp(0, 1)

    @torch.no_grad()
    def embed_images(self, images: Tensor) -> Tensor:
        """L2-normalised CLIP embeddings ``(N, D)`` (CPU) of images ``(N, C, H, W)`` in [0, 1]."""
        from modalforge.evaluation.encode import preprocess_batch

        model, precision = self.trained.model, self.trained.precision
        flat = self._adapt(images.float())
        raw = self.trained.pipeline.dataset.modalities[self.image].is_raw
        chunks = []
        for start in range(0, len(flat), self.batch_size):
            batch = flat[start : start + self.batch_size]
            if raw:
                batch = preprocess_batch(model, self.image, [_to_pil(x) for x in batch.cpu()])
            else:
                batch = batch.to(self.trained.device)
            with precision.context():
                chunks.append(model.encode(self.image, batch).float().cpu())
        return F.normalize(torch.cat(chunks), dim=-1)

    @torch.no_grad()
    def embed_texts(self, prompts: Sequence[str]) -> Tensor:
        """L2-normalised CLIP embeddings ``(P, D)`` (CPU) of prompt strings."""
        from modalforge.evaluation import text_encoder

        with self.trained.precision.context():
            text = text_encoder(self.trained.model, self.text)(list(prompts)).float().cpu()
        return F.normalize(text, dim=-1)

    @torch.no_grad()
    def score(self, samples: Tensor, prompts: Sequence[str]) -> Tensor:
        self.check(samples.shape[2:])
        p, n = samples.shape[:2]
        image = self.embed_images(samples.reshape(p * n, *samples.shape[2:])).view(p, n, -1)
        return torch.einsum("pnd,pd->pn", image, self.embed_texts(prompts))


def _to_pil(image: Tensor):  # noqa: ANN202
    from PIL import Image

    array = (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    return Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
