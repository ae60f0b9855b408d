"""``modalforge retrieve``: text → the split's closest images, or an image → closest captions.

With ``--query TEXT`` the split's images are indexed and ranked by cosine similarity to the text.
With ``--query-index N`` (a sample of the split) or ``--query-image PATH`` (an image file) the
split's captions are ranked instead; raw captions are de-duplicated first (many samples may share
one caption), each listed once with how many samples carry it.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import default_collate

from modalforge.engine.runtime import move_to_device
from modalforge.errors import ModalforgeError
from modalforge.evaluation import topk
from modalforge.modality import Modality
from modalforge_apps.cli.inference import (
    Loaded,
    check_split,
    class_names_of,
    embed_split,
    embed_texts,
    image_text_modalities,
    indexable,
    load_model,
    raw_samples,
    require_tokenizer,
)


def cmd_retrieve(args: argparse.Namespace) -> int:
    if args.k < 1:
        raise ModalforgeError(f"-k must be at least 1, got {args.k}")
    loaded = load_model(args)
    split = check_split(loaded, args.split)
    image, text = image_text_modalities(loaded, args.image_modality, args.text_modality, "retrieve")
    if args.query is not None:
        require_tokenizer(loaded, text, "retrieve")
        report = _text_to_images(loaded, split, image, text, args.query, args.k)
    else:
        query, about = _query_image(loaded, split, image, args)
        report = _image_to_texts(loaded, split, text, query, args.k)
        report["query"] = about
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print(report)
    return 0


def _label_name(label: Any, names: tuple[str, ...]) -> Any:
    if isinstance(label, int) and 0 <= label < len(names):
        return names[label]
    return label


def _labels_list(labels: Tensor | None, n: int) -> list[Any]:
    if labels is None:
        return [None] * n
    flat = labels.reshape(n, -1)
    return flat[:, 0].tolist() if flat.shape[1] == 1 else flat.tolist()


def _text_to_images(
    loaded: Loaded, split: str, image: str, text: str, query: str, k: int
) -> dict[str, Any]:
    data = embed_split(loaded, split, [image])
    q = embed_texts(loaded, text, [query])
    scores, indices = topk(q, data.embeds[image], k)
    names = class_names_of(loaded)
    labels = _labels_list(data.labels, len(data))
    results = []
    for r, (i, s) in enumerate(zip(indices[0].tolist(), scores[0].tolist(), strict=True)):
        row: dict[str, Any] = {"rank": r + 1, "index": i}
        if data.has_ids:
            row["id"] = data.ids[i]
        if data.labels is not None:
            row["label"] = _label_name(labels[i], names)
        results.append({**row, "score": s})
    return {
        "split": split,
        "query": {"text": query},
        "searched": f"{len(data)} {image} samples",
        "results": results,
    }


def _image_to_texts(loaded: Loaded, split: str, text: str, query: Tensor, k: int) -> dict[str, Any]:
    captions = raw_samples(loaded, split, text)
    if captions is None:  # texts are tensors already: rank the split's samples
        data = embed_split(loaded, split, [text])
        scores, indices = topk(query, data.embeds[text], k)
        results = [
            {"rank": r + 1, "index": i, **({"id": data.ids[i]} if data.has_ids else {}), "score": s}
            for r, (i, s) in enumerate(zip(indices[0].tolist(), scores[0].tolist(), strict=True))
        ]
        return {"split": split, "searched": f"{len(data)} {text} samples", "results": results}
    unique: dict[str, list[int]] = {}
    for i, caption in enumerate(captions):
        unique.setdefault(str(caption), []).append(i)
    texts = list(unique)
    scores, indices = topk(query, embed_texts(loaded, text, texts), k)
    results = [
        {
            "rank": r + 1,
            "caption": texts[j],
            "score": s,
            "count": len(unique[texts[j]]),
            "first_index": unique[texts[j]][0],
        }
        for r, (j, s) in enumerate(zip(indices[0].tolist(), scores[0].tolist(), strict=True))
    ]
    return {
        "split": split,
        "searched": f"{len(texts)} distinct captions of {len(captions)} samples",
        "results": results,
    }


@torch.no_grad()
def _query_image(
    loaded: Loaded, split: str, image: str, args: argparse.Namespace
) -> tuple[Tensor, dict[str, Any]]:
    """The query image's embedding ``(1, D)`` and a description of it."""
    modality = loaded.pipeline.dataset.modalities[image]
    if args.query_index is not None:
        data = indexable(loaded.pipeline.load(split), split)
        n = len(data)
        if not 0 <= args.query_index < n:
            raise ModalforgeError(
                f"--query-index {args.query_index} is outside split {split!r} ({n} samples)",
                hint=f"pass 0 … {n - 1}",
            )
        sample = data[args.query_index]
        batch = default_collate([{image: sample[image]}])
        about: dict[str, Any] = {"index": args.query_index}
        if "id" in sample:
            about["id"] = sample["id"] if isinstance(sample["id"], str) else str(sample["id"])
        if "target" in sample:
            label = _labels_list(torch.as_tensor(sample["target"]).reshape(1, -1), 1)[0]
            about["label"] = _label_name(label, class_names_of(loaded))
        x = batch[image]
    else:
        x = load_image_file(args.query_image, modality, loaded.model.encoders[image])[None]
        about = {"image": str(args.query_image)}
    x = move_to_device(x, loaded.device)
    with loaded.precision.context():
        z = loaded.model.encode(image, x)
    return z.float().cpu(), about


def load_image_file(path: str, modality: Modality, encoder: torch.nn.Module) -> Tensor:
    """An image file as one sample of ``modality``.

    A raw image modality goes through the encoder's own ``preprocess()``; a tensor modality
    ``(C, H, W)`` gets the file converted to C channels (grayscale or RGB), resized to H × W and
    scaled to ``[0, 1]``, the convention of the built-in image data sets.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            picture = img.copy()
    except (OSError, UnidentifiedImageError) as exc:
        raise ModalforgeError(
            f"cannot read --query-image {path}: {exc}", hint="pass a PNG or JPEG file"
        ) from None
    if modality.is_raw:
        preprocess = encoder.preprocess()
        if preprocess is None:
            raise ModalforgeError(f"the {modality.name} encoder has no preprocess() for images")
        return torch.as_tensor(preprocess(picture.convert("RGB")))
    channels, height, width = (modality.shape + (None, None, None))[:3]
    if modality.spatial_dims != 2 or channels not in (1, 3) or None in (height, width):
        raise ModalforgeError(
            f"--query-image cannot be turned into modality {modality.describe()}",
            hint="use --query-index to pick a sample of the split instead",
        )
    picture = picture.convert("L" if channels == 1 else "RGB").resize((width, height))
    x = torch.from_numpy(np.asarray(picture, dtype=np.float32) / 255.0)
    return x.reshape(height, width, channels).permute(2, 0, 1).contiguous()


def _print(report: dict[str, Any]) -> None:
    query = ", ".join(
        f"{k} {v!r}" if isinstance(v, str) else f"{k} {v}" for k, v in report["query"].items()
    )
    print(f"query: {query}")
    print(f"searched {report['searched']} of split {report['split']!r}\n")
    results = report["results"]
    if not results:
        print("  no results")
        return
    columns = [c for c in results[0] if c != "score"] + ["score"]
    cells = [[_cell(row[c]) for c in columns] for row in results]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  " + "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        print("  " + "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "-" if value is None else str(value)
