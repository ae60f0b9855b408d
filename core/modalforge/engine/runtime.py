"""Where and how a run executes: device, seeds, mixed precision, moving batches, RNG snapshots."""

from __future__ import annotations

import base64
import contextlib
import random
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import torch

from modalforge.errors import SpecError

_DTYPES: dict[str, torch.dtype | None] = {
    "fp32": None,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def select_device(name: str = "auto") -> torch.device:
    """``auto`` → cuda, else mps, else cpu; explicit names must be available here."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SpecError(
            "train.device", f"unknown device {name!r}", hint="use auto, cpu, cuda, cuda:N or mps"
        ) from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SpecError(
                "train.device",
                f"{name!r} requested but CUDA is not available here",
                hint="use `train.device=auto` (falls back to cpu) or `train.device=cpu`",
            )
        count = torch.cuda.device_count()
        index = 0 if device.index is None else device.index
        if index >= count:
            raise SpecError(
                "train.device",
                f"{name!r} requested but only {count} CUDA device(s) "
                f"exist (cuda:0..cuda:{count - 1})",
                hint="pick an existing index",
            )
        return torch.device("cuda", index)
    if device.type == "mps":
        if not _mps_available():
            raise SpecError(
                "train.device",
                "'mps' requested but Apple MPS is not available here",
                hint="use `train.device=auto` or `train.device=cpu`",
            )
        return device
    raise SpecError(
        "train.device",
        f"unsupported device type {device.type!r}",
        hint="use auto, cpu, cuda, cuda:N or mps",
    )


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices) so a run is reproducible."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds CUDA and MPS generators


class Precision:
    """Autocast settings for one device: ``context()`` per forward, ``scaler`` for fp16."""

    def __init__(self, precision: str, device: torch.device) -> None:
        if precision not in _DTYPES:
            raise SpecError(
                "train.precision", f"unknown precision {precision!r}", hint="use fp32, bf16 or fp16"
            )
        self.name = precision
        self.device = device
        self.dtype = _DTYPES[precision]
        self.scaler: torch.amp.GradScaler | None = None
        if self.dtype is None:
            return
        if not torch.amp.is_autocast_available(device.type):
            raise SpecError(
                "train.precision",
                f"{precision} autocast is not supported on {device.type} in this PyTorch",
                hint="use `train.precision=fp32`",
            )
        if device.type == "cuda" and self.dtype is torch.bfloat16:
            if not torch.cuda.is_bf16_supported():
                raise SpecError(
                    "train.precision",
                    f"this GPU ({torch.cuda.get_device_name(device)}) has no bf16 support",
                    hint="use `train.precision=fp16` or fp32",
                )
        self._check_autocast()
        if self.dtype is torch.float16:
            self.scaler = _make_scaler(device)

    def _check_autocast(self) -> None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                with torch.autocast(self.device.type, dtype=self.dtype):
                    pass
            except (RuntimeError, ValueError) as exc:
                caught.append(warnings.WarningMessage(str(exc), RuntimeWarning, "", 0))
        problems = [str(w.message) for w in caught if "autocast" in str(w.message).lower()]
        if problems:
            raise SpecError(
                "train.precision",
                f"{self.name} autocast is not supported on {self.device.type}: {problems[0]}",
                hint="use `train.precision=bf16` or `train.precision=fp32`",
            )

    @property
    def enabled(self) -> bool:
        return self.dtype is not None

    def context(self) -> contextlib.AbstractContextManager:
        """Autocast for forward passes (a no-op context for fp32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)


def _make_scaler(device: torch.device) -> torch.amp.GradScaler | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scaler = torch.amp.GradScaler(device.type)
    except (RuntimeError, ValueError, AssertionError):
        return None
    return scaler if scaler.is_enabled() else None


def move_to_device(obj: Any, device: torch.device, *, non_blocking: bool = True) -> Any:
    """Move every tensor in a nested dict/list/tuple to ``device``; other values pass through."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=non_blocking)
    if isinstance(obj, Mapping):
        return {k: move_to_device(v, device, non_blocking=non_blocking) for k, v in obj.items()}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # namedtuple
        return type(obj)(*(move_to_device(v, device, non_blocking=non_blocking) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(move_to_device(v, device, non_blocking=non_blocking) for v in obj)
    return obj


def prefetch_to_device(
    batches: Iterable[Any], device: torch.device, transfer: Callable[[Any], Any] | None = None
) -> Iterator[Any]:
    """Yield batches already on ``device``, copying the next one while the current one computes.

    On CUDA the copy runs on a side stream so host-to-device transfer overlaps compute.
    """
    transfer = transfer or (lambda b: move_to_device(b, device))
    if device.type != "cuda":
        for batch in batches:
            yield transfer(batch)
        return
    stream = torch.cuda.Stream(device)
    it = iter(batches)

    def load() -> Any:
        try:
            raw = next(it)
        except StopIteration:
            return _END
        with torch.cuda.stream(stream):
            return transfer(raw)

    nxt = load()
    while nxt is not _END:
        torch.cuda.current_stream(device).wait_stream(stream)
        current = nxt
        _record_stream(current, torch.cuda.current_stream(device))
        nxt = load()
        yield current


_END = object()


def _record_stream(obj: Any, stream: torch.cuda.Stream) -> None:
    if isinstance(obj, torch.Tensor):
        if obj.is_cuda:
            obj.record_stream(stream)
    elif isinstance(obj, Mapping):
        for v in obj.values():
            _record_stream(v, stream)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _record_stream(v, stream)


def _b64(t: torch.Tensor) -> str:
    return base64.b64encode(t.cpu().numpy().tobytes()).decode("ascii")


def _unb64(s: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(s)), dtype=torch.uint8).clone()


def capture_rng_state() -> dict[str, Any]:
    """Every RNG a training step may draw from, as JSON-friendly values."""
    py = random.getstate()
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [
            np_state[0],
            np_state[1].tolist(),
            int(np_state[2]),
            int(np_state[3]),
            float(np_state[4]),
        ],
        "torch": _b64(torch.get_rng_state()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = [_b64(s) for s in torch.cuda.get_rng_state_all()]
    if _mps_available():
        state["mps"] = _b64(torch.mps.get_rng_state())
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`; devices absent now are skipped."""
    if "python" in state:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
    if "numpy" in state:
        name, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    if "torch" in state:
        torch.set_rng_state(_unb64(state["torch"]))
    if "cuda" in state and torch.cuda.is_available():
        saved = state["cuda"][: torch.cuda.device_count()]
        torch.cuda.set_rng_state_all([_unb64(s) for s in saved])
    if "mps" in state and _mps_available():
        torch.mps.set_rng_state(_unb64(state["mps"]))
