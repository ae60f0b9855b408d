"""A small multi-head CNN classifier for judging generated images, its seeded training loop, the
input checks and resizing shared by the judges, and an optional on-disk weight cache."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modalforge.io import write_with

CHUNK = 1024  # images per forward pass in predict/features
CACHE_FORMAT = 1  # bump when JudgeNet or its training changes: old cache files are then ignored


@contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one intra-op thread, then restore the setting.

    These nets are tiny: on one thread they train several times faster than on two when the
    CPU is shared (no spinning thread barriers), and the result does not depend on the core count.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class JudgeNet(nn.Module):
    """Conv stem (stride 2 above 16 pixels) and stride-2 stages down to at most 4×4 → flatten →
    ``feature_dim`` features → one linear head per attribute.

    The features (post-ReLU penultimate layer) are the judges' KID embedding; the trunk ends in
    a flatten, not a global pool, so they keep *where* things are.
    """

    def __init__(
        self,
        in_channels: int,
        image_size: int,
        heads: Mapping[str, int],
        width: int = 16,
        feature_dim: int = 128,
    ) -> None:
        super().__init__()
        stem = 2 if image_size > 16 else 1
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, width, 3, stride=stem, padding=1),
            nn.ReLU(),
        ]
        channels, size = width, -(-image_size // stem)
        while size > 4:
            out = min(channels * 2, 4 * width)
            layers += [nn.Conv2d(channels, out, 3, stride=2, padding=1), nn.ReLU()]
            channels, size = out, (size + 1) // 2
        self.trunk = nn.Sequential(*layers, nn.Flatten())
        self.embed = nn.Sequential(nn.Linear(channels * size * size, feature_dim), nn.ReLU())
        self.heads = nn.ModuleDict({name: nn.Linear(feature_dim, n) for name, n in heads.items()})
        self.feature_dim = feature_dim

    def features(self, x: Tensor) -> Tensor:
        return self.embed(self.trunk(x))

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        h = self.features(x)
        return {name: head(h) for name, head in self.heads.items()}


def train_judge_net(
    net: JudgeNet,
    images: Tensor,
    labels: Mapping[str, Tensor],
    *,
    epochs: int,
    seed: int,
    lr: float = 2e-3,
    batch_size: int = 128,
) -> JudgeNet:
    """Adam with a one-cycle schedule on the summed cross-entropy of all heads, shuffled by a
    ``seed``-ed generator. Runs on one thread (:func:`single_thread`); deterministic given
    ``seed``."""
    with single_thread():
        return _train(net, images, labels, epochs, seed, lr, batch_size)


def _train(
    net: JudgeNet,
    images: Tensor,
    labels: Mapping[str, Tensor],
    epochs: int,
    seed: int,
    lr: float,
    batch_size: int,
) -> JudgeNet:
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, total_steps=epochs * -(-len(images) // batch_size)
    )
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=g)
        for start in range(0, len(images), batch_size):
            idx = order[start : start + batch_size]
            out = net(images[idx])
            loss = sum(F.cross_entropy(out[k], labels[k][idx]) for k in net.heads)
            opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[union-attr]
            opt.step()
            sched.step()
    return net.eval()


def seeded_net(seed: int, build: Callable[[], JudgeNet]) -> JudgeNet:
    """Build a net with weights initialised from ``seed`` without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def as_images(images: Tensor | np.ndarray, channels: int, name: str = "images") -> Tensor:
    """``images`` as a float32 CPU tensor ``(N, channels, H, W)``, or a ``ValueError`` that says
    which shape was expected."""
    x = torch.as_tensor(images)
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(
            f"{name} must be (N, {channels}, H, W) in [0, 1], got shape {tuple(x.shape)}"
        )
    x = x.detach().to("cpu", torch.float32)
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contain NaN or infinite values")
    return x


def resize(x: Tensor, size: int) -> Tensor:
    """Area interpolation to ``size × size`` when shrinking (averages, as a camera would);
    bilinear when enlarging; unchanged when already that size."""
    if x.shape[-2:] == (size, size):
        return x
    if x.shape[-2] >= size and x.shape[-1] >= size:
        return F.interpolate(x, size=(size, size), mode="area")
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


@torch.no_grad()
def run_chunks(fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """``fn`` over ``x`` in chunks of :data:`CHUNK`, without gradients, on one thread."""
    with single_thread():
        if len(x) == 0:
            return fn(torch.zeros(1, *x.shape[1:]))[:0]
        return torch.cat([fn(x[i : i + CHUNK]) for i in range(0, len(x), CHUNK)])


def cached_net(
    cache_dir: str | Path | None,
    config: Mapping[str, object],
    fit: Callable[[], JudgeNet],
    build: Callable[[], JudgeNet],
) -> JudgeNet:
    """``fit()``, or load its weights from ``cache_dir`` when a run with the same ``config`` saved
    them there (a safetensors file named by a hash of the config and :data:`CACHE_FORMAT`),
    saved atomically. An unreadable cache file is refitted and replaced: it is only a cache."""
    if cache_dir is None:
        return fit()
    from safetensors.torch import load_file, save_file

    text = json.dumps({**config, "format": CACHE_FORMAT}, sort_keys=True)
    key = hashlib.sha256(text.encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"{config.get('name', 'judge')}-{key}.safetensors"
    if path.is_file():
        net = build()
        try:
            net.load_state_dict(load_file(str(path)))
            return net.eval()
        except Exception:  # noqa: BLE001 - truncated or foreign file: refit below
            pass
    net = fit()
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    write_with(path, lambda p: save_file(state, str(p)))
    return net
