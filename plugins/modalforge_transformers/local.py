"""Load transformers models and tokenizers from local folders only, with errors naming the param.

Nothing is downloaded: every call passes ``local_files_only=True``, and a folder that is not a
saved model (no ``config.json``, no weights, weights of another architecture) is a modalforge
error naming the spec field, instead of a silently re-initialised model.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modalforge.deps import require
from modalforge.errors import CheckpointError, SpecError
from modalforge.weights import inspect_weights

TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "vocab.json",
    "spiece.model",
    "sentencepiece.bpe.model",
    "tokenizer.model",
)


def transformers_module() -> Any:
    """``transformers``, imported now, or a :class:`MissingDependencyError` with the fix."""
    return require("transformers", package="transformers")


def check_model_dir(model_dir: str, field: str) -> Path:
    """``model_dir`` as a path, if it is a folder holding a saved model's ``config.json``."""
    path = Path(model_dir).expanduser()
    if not path.is_dir():
        raise SpecError(
            field,
            f"model folder {model_dir} does not exist",
            hint="give a local folder written by `model.save_pretrained(folder)` (nothing is "
            "downloaded)",
        )
    if not (path / "config.json").is_file():
        raise SpecError(
            field,
            f"{model_dir} is not a transformers model folder: it has no config.json",
            hint="save the model with `model.save_pretrained(folder)` (and its tokenizer with "
            "`tokenizer.save_pretrained(folder)`)",
        )
    _read_config(path / "config.json", field)
    return path


def _read_config(file: Path, field: str) -> dict[str, Any]:
    """``config.json`` as a mapping, or a :class:`SpecError` naming the file."""
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SpecError(
            field,
            f"{file} is not valid JSON ({_first_line(exc)})",
            hint="save the model again with `model.save_pretrained(folder)`",
        ) from None
    if not isinstance(config, dict):
        raise SpecError(
            field,
            f"{file} holds a JSON {type(config).__name__}, not a model config (an object)",
            hint="save the model again with `model.save_pretrained(folder)`",
        )
    return config


def check_weight_files(path: Path, field: str) -> None:
    """Check the folder's weight files (single or sharded, safetensors or ``.bin``) before
    transformers reads them: an empty, truncated or pickled file is a :class:`CheckpointError`
    naming it. Files are read by :mod:`modalforge.weights` (never unpickled)."""
    hint = "save the model again with `model.save_pretrained(folder)`"
    for name in ("model.safetensors", "pytorch_model.bin"):
        index = path / f"{name}.index.json"
        if (path / name).exists():
            inspect_weights(path / name, field, hint=hint)
        elif index.is_file():
            for shard in _shards(index, field):
                if not (path / shard).is_file():
                    raise CheckpointError(
                        f"{field}: shard {shard} listed in {index} is missing", hint=hint
                    )
                inspect_weights(path / shard, field, hint=hint)


def _shards(index: Path, field: str) -> list[str]:
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        return sorted(set(weight_map.values()))
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(
            f"{field}: {index} is not a valid shard index ({_first_line(exc)})",
            hint="save the model again with `model.save_pretrained(folder)`",
        ) from None


def model_type(path: Path) -> str:
    """The ``model_type`` recorded in the folder's ``config.json``."""
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return ""
    return str(config.get("model_type", "")) if isinstance(config, dict) else ""


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' load report and progress bars; we raise our own errors."""
    logging = transformers_module().utils.logging
    level = logging.get_verbosity()
    bars = logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(level)
        if bars:
            logging.enable_progress_bar()


def load_model(path: Path, field: str, cls: Any = None) -> Any:
    """A model (``AutoModel`` unless ``cls``) in float32 from ``path``, in eval mode.

    Missing, unexpected or mis-shaped tensors raise a :class:`CheckpointError` listing them.
    """
    transformers = transformers_module()
    cls = cls or transformers.AutoModel
    check_weight_files(path, field)
    try:
        with quiet_transformers():
            model, info = _from_pretrained(cls, path)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise CheckpointError(
            f"{field}: cannot load a model from {path}: {_first_line(exc)}",
            hint="the folder must hold config.json and the weights (model.safetensors or "
            "pytorch_model.bin) written by save_pretrained, of the architecture in config.json",
        ) from exc
    problems = []
    for label in ("missing_keys", "unexpected_keys", "mismatched_keys"):
        keys = sorted(_key(k) for k in info.get(label, ()))
        if keys:
            problems.append(f"{label.replace('_', ' ')}: {shorten(keys)}")
    if problems:
        raise CheckpointError(
            f"{field}: the weights in {path} do not match its config.json "
            f"({type(model).__name__}): {'; '.join(problems)}",
            hint="save config and weights together with save_pretrained, from the same model",
        )
    return model.eval()


def _from_pretrained(cls: Any, path: Path) -> tuple[Any, dict]:
    torch = require("torch")
    # Mismatched shapes are loaded as reported (not raised), so the error can list them.
    kwargs: dict[str, Any] = {
        "local_files_only": True,
        "output_loading_info": True,
        "ignore_mismatched_sizes": True,
    }
    try:
        return cls.from_pretrained(str(path), dtype=torch.float32, **kwargs)
    except TypeError:  # transformers < 4.56 names it torch_dtype
        return cls.from_pretrained(str(path), torch_dtype=torch.float32, **kwargs)


def load_tokenizer(path: Path, field: str) -> Any:
    """The folder's own tokenizer (``AutoTokenizer``), or a :class:`SpecError` naming ``field``."""
    if not any((path / f).is_file() for f in TOKENIZER_FILES):
        raise SpecError(
            field,
            f"{path} has no tokenizer files (one of {', '.join(TOKENIZER_FILES)})",
            hint="save the tokenizer into the folder with `tokenizer.save_pretrained(folder)`",
        )
    transformers = transformers_module()
    try:
        with quiet_transformers():
            return transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - tokenizers raises a bare Exception for bad files
        raise SpecError(
            field,
            f"cannot load the tokenizer in {path}: {_first_line(exc)}",
            hint="save a tokenizer with `tokenizer.save_pretrained(folder)`; sentencepiece "
            "tokenizers need `pip install sentencepiece`",
        ) from exc


def shorten(items: list[str], n: int = 6) -> str:
    """``a, b, c and 12 more``."""
    shown = ", ".join(items[:n])
    return shown + (f" and {len(items) - n} more" if len(items) > n else "")


def _key(item: Any) -> str:
    """A loading-info entry: a key, or ``(key, file shape, model shape)`` for mismatches."""
    if isinstance(item, tuple) and len(item) == 3:
        key, a, b = item
        return f"{key} {tuple(a)} in the file vs {tuple(b)} in the model"
    return str(item)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
