"""``modalforge embed``: write a split's embeddings per modality, with ids and labels.

Output folder (written to a temporary sibling and renamed when complete)::

    <out>/<modality>.safetensors   {"embeddings": float32 (N, D)}, one file per modality
    <out>/index.json               format, spec, checkpoint, split, ids, labels, class names, dims

Each modality's ``space`` says what its rows are: ``shared`` (a contrastive model's embeddings)
or ``encoder`` (encoder features: ``--encoder-features``, or any non-contrastive model).

Row i of every file is sample i of the split, in the data set's order.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from modalforge.errors import ModalforgeError
from modalforge.evaluation import is_contrastive
from modalforge_apps.cli.inference import check_split, class_names_of, embed_split, load_model

FORMAT = "modalforge.embeddings"
FORMAT_VERSION = 1
INDEX_FILE = "index.json"
META = {"format": "pt"}


def cmd_embed(args: argparse.Namespace) -> int:
    from modalforge import io

    out = io.check_output_dir(args.out, "--out")  # --overwrite replaces a folder, never a file
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise ModalforgeError(
            f"{out} exists and is not empty; embed will not overwrite it",
            hint="pass another --out folder, or --overwrite to replace it",
        )
    loaded = load_model(args)
    split = check_split(loaded, args.split)
    encoders = getattr(loaded.model, "encoders", None)
    available = list(encoders) if encoders is not None else []
    modalities = [m.strip() for m in args.modalities.split(",")] if args.modalities else available
    unknown = [m for m in modalities if m not in available]
    if unknown or not modalities:
        raise ModalforgeError(
            f"--modalities: the model has no encoder for {', '.join(map(repr, unknown)) or 'any'}",
            hint=f"choose from: {', '.join(available) or 'none (this model has no encoders)'}",
        )
    data = embed_split(loaded, split, modalities, encoder_features=args.encoder_features)
    index = _index(loaded, args, split, data, modalities)
    _write(out, data.embeds, index)
    dims = ", ".join(f"{m} {tuple(data.embeds[m].shape)}" for m in modalities)
    print(f"embedded {len(data)} samples of split {split!r}: {dims}\nwrote {out}")
    return 0


def _index(loaded, args, split, data, modalities) -> dict[str, Any]:  # noqa: ANN001
    shared = is_contrastive(loaded.model) and not args.encoder_features
    normalized = shared and bool(loaded.model.normalize)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "spec": loaded.spec.name,
        "checkpoint": str(loaded.checkpoint),
        "split": split,
        "count": len(data),
        "modalities": {
            m: {
                "file": f"{m}.safetensors",
                "dim": int(data.embeds[m].shape[1]),
                "normalized": normalized,
                "space": "shared" if shared else "encoder",
            }
            for m in modalities
        },
        "ids": list(data.ids),
        "labels": data.labels.tolist() if data.labels is not None else None,
        "class_names": list(class_names_of(loaded)),
    }


def _write(out: Path, embeds: dict, index: dict[str, Any]) -> None:
    import safetensors.torch

    from modalforge import io

    with io.atomic_dir(out) as tmp:
        for m, z in embeds.items():
            path = str(tmp / f"{m}.safetensors")
            safetensors.torch.save_file({"embeddings": z.contiguous()}, path, metadata=META)
        io.write_json(tmp / INDEX_FILE, index)
