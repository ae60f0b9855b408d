"""``shapes``: one coloured shape on a black background, captioned, with colour–shape combinations
held out of training, for testing whether a text-to-image generator composes attributes.

Each image shows one shape (:data:`SHAPES`) of one colour (:data:`COLORS`) at one of five places
(:data:`POSITIONS`), with a little seeded jitter of size, position and brightness so that no two
images are equal. The ``train`` and ``test`` splits draw only *seen* combinations; ``heldout`` draws
only the combinations named in ``held_out``, which never occur in ``train`` or ``test``: a
generator that draws "a blue circle" without ever having seen one composes what it learnt.

Samples carry the attribute labels as integer tensors ``color``, ``shape`` and ``position``
(indices into the vocabularies), so that judges can score generated images, and the multiclass
``target`` ``color * len(SHAPES) + shape`` over all colour–shape combinations (class names
"red circle", ...). A classifier trained on ``train`` never sees the held-out classes, so its
accuracy on ``heldout`` measures compositional generalisation too (zero for a plain classifier).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from modalforge.contracts import DatasetReader, Target, TargetKind
from modalforge.errors import SpecError
from modalforge.modality import Modality
from modalforge_datasets.common import PackedStrings, TensorDictDataset, unknown_split
from modalforge_datasets.digits_captions import CaptionedDataset

COLORS: tuple[str, ...] = ("red", "green", "blue", "yellow", "magenta", "cyan")
COLOR_RGB: dict[str, tuple[float, float, float]] = {
    "red": (1.0, 0.0, 0.0),
    "green": (0.0, 1.0, 0.0),
    "blue": (0.0, 0.0, 1.0),
    "yellow": (1.0, 1.0, 0.0),
    "magenta": (1.0, 0.0, 1.0),
    "cyan": (0.0, 1.0, 1.0),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross", "diamond")
POSITIONS: tuple[str, ...] = ("top left", "top right", "bottom left", "bottom right", "center")
ATTRIBUTES: dict[str, tuple[str, ...]] = {"color": COLORS, "shape": SHAPES, "position": POSITIONS}
# Held out by default: four combinations with four different colours and four different shapes, so
# every colour and every shape still occurs in training with other partners.
DEFAULT_HELD_OUT: tuple[str, ...] = ("red triangle", "green square", "blue circle", "yellow cross")
# Caption templates; the first is the canonical caption of :func:`caption` and ``fixed`` mode.
TEMPLATES: tuple[str, ...] = (
    "a {color} {shape} at the {position}",
    "a {color} {shape} in the {position}",
    "the {position} has a {color} {shape}",
    "{color} {shape}, {position}",
    "a {color} {shape} at the {position} on a black background",
)
# Zero-shot templates over the ``target`` class names ("red circle"), one "{}" each.
ZEROSHOT_TEMPLATES: tuple[str, ...] = ("a {}", "a {} on a black background", "a picture of a {}")
SPLITS: tuple[str, ...] = ("train", "test", "heldout")

# Geometry, as fractions of the image side: centres of the five positions (row, col), the radius
# range and the position jitter (uniform, +-). Brightness is drawn from BRIGHTNESS.
_CENTRES = np.array([(0.28, 0.28), (0.28, 0.72), (0.72, 0.28), (0.72, 0.72), (0.5, 0.5)])
RADIUS = (0.15, 0.2)
POSITION_JITTER = 0.04
BRIGHTNESS = (0.75, 1.0)
_PARAM = "data.dataset.params"


def _index(vocab: tuple[str, ...], value: str | int, what: str) -> int:
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        if 0 <= value < len(vocab):
            return int(value)
        raise ValueError(f"{what} index {value} out of range 0..{len(vocab) - 1}")
    if value not in vocab:
        raise ValueError(f"unknown {what} {value!r}; valid: {', '.join(vocab)}")
    return vocab.index(value)  # type: ignore[arg-type]


def caption(color: str | int, shape: str | int, position: str | int, template: int = 0) -> str:
    """The caption of one image, e.g. ``caption("red", "circle", "top left")`` →
    ``"a red circle at the top left"`` (names or vocabulary indices; ``template`` indexes
    :data:`TEMPLATES`)."""
    return TEMPLATES[template].format(
        color=COLORS[_index(COLORS, color, "color")],
        shape=SHAPES[_index(SHAPES, shape, "shape")],
        position=POSITIONS[_index(POSITIONS, position, "position")],
    )


def combo_names() -> tuple[str, ...]:
    """All colour–shape combinations as "colour shape", in ``target`` order."""
    return tuple(f"{c} {s}" for c in COLORS for s in SHAPES)


def parse_held_out(held_out: Sequence[str], field: str = f"{_PARAM}.held_out") -> tuple[int, ...]:
    """Combination indices (``color * len(SHAPES) + shape``) of "colour shape" strings.

    Raises :class:`SpecError` naming ``field[i]`` for a malformed entry or an unknown colour or
    shape, and naming ``field`` when a colour or shape would be held out with every partner (it
    would then never be seen in training).
    """
    if isinstance(held_out, str):
        raise SpecError(
            field,
            "must be a list of 'colour shape' strings, got one string",
            hint=f'write e.g. ["{held_out}"]',
        )
    combos: list[int] = []
    for i, entry in enumerate(held_out):
        words = str(entry).lower().split()
        if len(words) != 2:
            raise SpecError(
                f"{field}[{i}]",
                f"{entry!r} is not 'colour shape'",
                hint="write a colour and a shape, e.g. 'red circle'",
            )
        color, shape = words
        if color not in COLORS:
            raise SpecError(
                f"{field}[{i}]",
                f"unknown colour {color!r} in {entry!r}",
                hint=f"valid colours: {', '.join(COLORS)}",
            )
        if shape not in SHAPES:
            raise SpecError(
                f"{field}[{i}]",
                f"unknown shape {shape!r} in {entry!r}",
                hint=f"valid shapes: {', '.join(SHAPES)}",
            )
        combo = COLORS.index(color) * len(SHAPES) + SHAPES.index(shape)
        if combo not in combos:
            combos.append(combo)
    held = np.zeros((len(COLORS), len(SHAPES)), dtype=bool)
    for combo in combos:
        held[divmod(combo, len(SHAPES))] = True
    for name, full in [(COLORS[c], held[c].all()) for c in range(len(COLORS))] + [
        (SHAPES[s], held[:, s].all()) for s in range(len(SHAPES))
    ]:
        if full:
            raise SpecError(
                field,
                f"holds out every combination with {name!r}, so it would never be seen in training",
                hint="hold out fewer combinations",
            )
    return tuple(sorted(combos))


def _signed_distance(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Distance to the outline in radii (negative inside), ``u`` right and ``v`` down."""
    au, av = np.abs(u), np.abs(v)
    name = SHAPES[shape]
    if name == "circle":
        return np.sqrt(u * u + v * v) - 1.0
    if name == "square":
        return np.maximum(au, av) - 0.8
    if name == "diamond":
        return (au + av - 1.1) / np.sqrt(2.0)
    if name == "cross":
        w = 0.32
        return np.minimum(np.maximum(au - w, av - 1.0), np.maximum(av - w, au - 1.0))
    if name == "triangle":  # apex up at v = -1, base at v = 0.8, half-width 1 at the base
        return np.maximum(v - 0.8, (1.8 * au - (v + 1.0)) / np.hypot(1.8, 1.0))
    raise AssertionError(name)


def render(
    colors: np.ndarray,
    shapes: np.ndarray,
    positions: np.ndarray,
    image_size: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """``(N, 3, S, S)`` float32 images in ``[0, 1]`` of the given attribute indices.

    Radius, centre and brightness are jittered from ``rng``; edges are anti-aliased (a pixel's
    coverage is ``clip(0.5 - distance_in_pixels, 0, 1)``).
    """
    colors, shapes, positions = (np.asarray(a, dtype=np.int64) for a in (colors, shapes, positions))
    n, s = len(colors), image_size
    radius = rng.uniform(*RADIUS, size=n) * s
    centre = (_CENTRES[positions] + rng.uniform(-POSITION_JITTER, POSITION_JITTER, (n, 2))) * s
    brightness = rng.uniform(*BRIGHTNESS, size=n)
    grid = np.arange(s, dtype=np.float64) + 0.5
    coverage = np.zeros((n, s, s), dtype=np.float64)
    for k in np.unique(shapes):
        idx = np.flatnonzero(shapes == k)
        r = radius[idx, None, None]
        v = (grid[None, :, None] - centre[idx, 0, None, None]) / r
        u = (grid[None, None, :] - centre[idx, 1, None, None]) / r
        coverage[idx] = np.clip(0.5 - _signed_distance(int(k), u, v) * r, 0.0, 1.0)
    rgb = np.array([COLOR_RGB[c] for c in COLORS])[colors] * brightness[:, None]  # (N, 3)
    return (coverage[:, None] * rgb[:, :, None, None]).astype(np.float32)


def balanced_cells(combos: Sequence[int], num_samples: int, rng: np.random.Generator) -> np.ndarray:
    """``(N, 2)`` (combo, position) pairs cycling through all ``combos × POSITIONS`` cells, then
    shuffled, so every cell is equally frequent (exactly when their count divides ``N``)."""
    cells = np.arange(num_samples) % (len(combos) * len(POSITIONS))
    cells = rng.permutation(cells)
    combo = np.asarray(combos, dtype=np.int64)[cells // len(POSITIONS)]
    return np.stack([combo, cells % len(POSITIONS)], axis=1)


class ShapesDataset(DatasetReader):
    """Modalities ``image`` (image2d ``(3, S, S)`` in ``[0, 1]``) and ``text`` (raw captions), plus
    integer labels ``color``, ``shape``, ``position`` and the colour×shape ``target``.

    Splits: ``train`` (``train_samples``, seen combinations), ``test`` (``test_samples``, seen
    combinations, other draws) and ``heldout`` (``heldout_samples``, only the ``held_out``
    combinations; absent when ``held_out`` is empty). Each split is balanced over its
    combination × position cells and is a pure function of ``seed`` and the parameters (its own
    NumPy PCG64 stream), generated on first use. ``caption_mode=random_template`` captions each
    sample from a template of :data:`TEMPLATES` drawn from the same stream; ``fixed`` uses the
    first (see :func:`caption`).
    """

    def __init__(
        self,
        image_size: int = 32,
        train_samples: int = 5200,
        test_samples: int = 1040,
        heldout_samples: int = 520,
        held_out: list[str] | None = None,
        caption_mode: Literal["random_template", "fixed"] = "random_template",
        seed: int = 0,
    ) -> None:
        if image_size < 8:
            raise SpecError(f"{_PARAM}.image_size", f"must be at least 8, got {image_size}")
        for name, value in (
            ("train_samples", train_samples),
            ("test_samples", test_samples),
            ("heldout_samples", heldout_samples),
        ):
            if value < 0:
                raise SpecError(f"{_PARAM}.{name}", f"must be non-negative, got {value}")
        if caption_mode not in ("random_template", "fixed"):
            raise SpecError(
                f"{_PARAM}.caption_mode",
                f"must be random_template or fixed, got {caption_mode!r}",
            )
        self.image_size = image_size
        self.caption_mode = caption_mode
        self.seed = seed
        self.held_out = parse_held_out(DEFAULT_HELD_OUT if held_out is None else held_out)
        all_combos = range(len(COLORS) * len(SHAPES))
        self.seen = tuple(c for c in all_combos if c not in self.held_out)
        self._sizes = {"train": train_samples, "test": test_samples, "heldout": heldout_samples}
        self._cache: dict[str, tuple[dict[str, torch.Tensor], PackedStrings]] = {}

    @property
    def modalities(self) -> dict[str, Modality]:
        s = self.image_size
        return {
            "image": Modality("image", "image2d", (3, s, s)),
            "text": Modality("text", "text", (None,), dtype="str"),
        }

    @property
    def target(self) -> Target:
        return Target(TargetKind.MULTICLASS, len(COLORS) * len(SHAPES), combo_names())

    @property
    def class_names(self) -> tuple[str, ...]:
        return combo_names()

    @property
    def templates(self) -> tuple[str, ...]:
        """Zero-shot templates over the class names (``"a {}"`` → ``"a red circle"``)."""
        return ZEROSHOT_TEMPLATES

    @property
    def held_out_names(self) -> tuple[str, ...]:
        return tuple(combo_names()[c] for c in self.held_out)

    @property
    def splits(self) -> tuple[str, ...]:
        return SPLITS if self.held_out else SPLITS[:2]

    def tensors(self, split: str) -> dict[str, torch.Tensor]:
        """The whole split as tensors ``image``, ``color``, ``shape``, ``position``, ``target``."""
        return dict(self._generate(split)[0])

    def captions(self, split: str) -> list[str]:
        return list(self._generate(split)[1])

    def load(self, split: str) -> Dataset:
        tensors, captions = self._generate(split)
        return CaptionedDataset(TensorDictDataset(tensors), captions)  # type: ignore[arg-type]

    def _generate(self, split: str) -> tuple[dict[str, torch.Tensor], PackedStrings]:
        if split not in self.splits:
            raise unknown_split("shapes", split, self.splits)
        if split not in self._cache:
            rng = np.random.default_rng([self.seed, 0x5A9E, SPLITS.index(split)])
            combos = self.held_out if split == "heldout" else self.seen
            cells = balanced_cells(combos, self._sizes[split], rng)
            color, shape = np.divmod(cells[:, 0], len(SHAPES))
            position = cells[:, 1]
            images = render(color, shape, position, self.image_size, rng)
            if self.caption_mode == "fixed":
                which = np.zeros(len(cells), dtype=np.int64)
            else:
                which = rng.integers(len(TEMPLATES), size=len(cells))
            texts = [
                caption(c, s, p, t)
                for c, s, p, t in zip(
                    color.tolist(), shape.tolist(), position.tolist(), which.tolist(), strict=True
                )
            ]
            tensors = {
                "image": torch.from_numpy(images),
                "target": torch.from_numpy(cells[:, 0].copy()),
                "color": torch.from_numpy(color),
                "shape": torch.from_numpy(shape),
                "position": torch.from_numpy(position.copy()),
            }
            self._cache[split] = (tensors, PackedStrings(texts))
        return self._cache[split]
