"""The shapes data set: held-out combinations, captions matching labels, determinism, rendering."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from modalforge.errors import SpecError
from modalforge.plugin import get_registry
from modalforge_datasets import ShapesDataset
from modalforge_datasets.shapes import (
    COLOR_RGB,
    COLORS,
    DEFAULT_HELD_OUT,
    POSITIONS,
    RADIUS,
    SHAPES,
    TEMPLATES,
    caption,
    combo_names,
    parse_held_out,
    render,
)


def _small(**kw) -> ShapesDataset:
    return ShapesDataset(
        **{"image_size": 16, "train_samples": 520, "test_samples": 260, "heldout_samples": 80, **kw}
    )


def _parse(text: str) -> tuple[int, int, int]:
    """Attribute indices named in a caption (each vocabulary word occurs exactly once)."""
    found = []
    for vocab in (COLORS, SHAPES, POSITIONS):
        hits = [i for i, w in enumerate(vocab) if w in text]
        assert len(hits) == 1, (text, hits)
        found.append(hits[0])
    return tuple(found)  # type: ignore[return-value]


def test_registered_modalities_target_and_batches():
    assert "shapes" in get_registry().names("dataset")
    ds = _small()
    assert {n: (str(m.kind), m.shape, m.dtype) for n, m in ds.modalities.items()} == {
        "image": ("image2d", (3, 16, 16), "float32"),
        "text": ("text", (None,), "str"),
    }
    assert ds.target.num_outputs == 30 and ds.target.class_names[:2] == ("red circle", "red square")
    assert ds.splits == ("train", "test", "heldout")
    batch = next(iter(DataLoader(ds.load("train"), batch_size=64)))
    assert batch["image"].shape == (64, 3, 16, 16) and batch["image"].dtype == torch.float32
    assert batch["image"].min() >= 0 and batch["image"].max() <= 1
    assert isinstance(batch["text"], list) and isinstance(batch["text"][0], str)
    for key in ("target", "color", "shape", "position"):
        assert batch[key].dtype == torch.long and batch[key].shape == (64,)
    assert torch.equal(batch["target"], batch["color"] * len(SHAPES) + batch["shape"])


def test_held_out_combos_only_in_heldout_split_and_all_others_in_train():
    ds = _small()
    held = {combo_names().index(n) for n in DEFAULT_HELD_OUT}
    assert set(ds.held_out) == held
    for split in ("train", "test"):
        combos = set(ds.tensors(split)["target"].tolist())
        assert not combos & held
        assert combos == set(range(30)) - held  # every seen combination occurs
    heldout = ds.tensors("heldout")
    assert set(heldout["target"].tolist()) == held
    assert set(heldout["position"].tolist()) == set(range(len(POSITIONS)))
    train = ds.tensors("train")
    assert set(train["color"].tolist()) == set(range(6)) and set(train["shape"].tolist()) == set(
        range(5)
    )
    # balanced: 26 seen combos x 5 positions = 130 cells, 520 samples -> exactly 4 each
    cells = train["target"] * 5 + train["position"]
    assert torch.bincount(cells, minlength=150)[cells.unique()].eq(4).all()


def test_captions_name_the_labelled_attributes():
    ds = _small()
    for split in ds.splits:
        t = ds.tensors(split)
        labels = torch.stack([t["color"], t["shape"], t["position"]], 1).tolist()
        assert [list(_parse(c)) for c in ds.captions(split)] == labels
    used = {
        next(i for i, tpl in enumerate(TEMPLATES) if _fits(c, tpl)) for c in ds.captions("train")
    }
    assert used == set(range(len(TEMPLATES)))  # random_template uses every template
    fixed = _small(caption_mode="fixed")
    t = fixed.tensors("test")
    assert fixed.captions("test")[:3] == [
        caption(int(t["color"][i]), int(t["shape"][i]), int(t["position"][i])) for i in range(3)
    ]


def _fits(text: str, template: str) -> bool:
    return any(
        template.format(color=c, shape=s, position=p) == text
        for c in COLORS
        for s in SHAPES
        for p in POSITIONS
    )


def test_caption_function():
    assert caption("red", "circle", "top left") == "a red circle at the top left"
    assert caption(2, 4, 4) == "a blue diamond at the center"
    assert caption("cyan", "cross", "bottom right", template=3) == "cyan cross, bottom right"
    with pytest.raises(ValueError, match="valid: red, green"):
        caption("purple", "circle", "center")


def test_deterministic_given_seed_and_splits_distinct():
    a, b, c = _small(seed=3), _small(seed=3), _small(seed=4)
    for split in ("train", "heldout"):
        for key, value in a.tensors(split).items():
            assert torch.equal(value, b.tensors(split)[key])
        assert a.captions(split) == b.captions(split)
    assert not torch.equal(a.tensors("train")["image"], c.tensors("train")["image"])
    train = a.tensors("train")["image"].flatten(1)
    test = a.tensors("test")["image"].flatten(1)
    assert torch.cdist(test, train).min() > 1e-3  # no test image repeats a training image
    assert torch.pdist(train[:200]).min() > 1e-3  # jitter: no two training images are equal


def test_rendering_colour_position_and_shape_area():
    """Pure-colour pixels, the shape's centre of mass at its position, the area ordering."""
    size, n = 32, 6
    rng = np.random.default_rng(0)
    colors, shapes = np.arange(n), np.zeros(n, dtype=int)
    positions = np.array([0, 1, 2, 3, 4, 0])
    images = render(colors, shapes, positions, size, rng)
    assert images.shape == (n, 3, size, size) and images.dtype == np.float32
    grid = np.arange(size) + 0.5
    for i in range(n):
        rgb = np.array(COLOR_RGB[COLORS[colors[i]]])
        mass = images[i].max(0)
        assert np.allclose(images[i], rgb[:, None, None] * mass[None], atol=1e-6)
        assert 0.75 <= mass.max() <= 1.0  # brightness jitter; fully covered pixels inside
        row = (mass.sum(1) * grid).sum() / mass.sum() / size
        col = (mass.sum(0) * grid).sum() / mass.sum() / size
        expected = {0: (0.28, 0.28), 1: (0.28, 0.72), 2: (0.72, 0.28), 3: (0.72, 0.72)}
        assert np.allclose((row, col), expected.get(positions[i], (0.5, 0.5)), atol=0.045)
    # areas in units of radius^2 against closed forms (the radius is the stream's first draw)
    one = np.zeros(5, dtype=int)
    cov = render(one, np.arange(5), np.full(5, 4), 64, np.random.default_rng(1))[:, 0]
    radius = np.random.default_rng(1).uniform(*RADIUS, size=5) * 64
    area = cov.sum(axis=(1, 2)) / cov.max(axis=(1, 2)) / radius**2
    closed = {
        "circle": np.pi,
        "square": 1.6**2,
        "triangle": 2.0 * 1.8 / 2,
        "cross": 2 * (2.0 * 0.64) - 0.64**2,
        "diamond": 2 * 1.1**2,
    }
    assert np.allclose(area, [closed[s] for s in SHAPES], rtol=0.03)


def test_parse_held_out_and_param_errors():
    assert parse_held_out(["Red  Circle", "red circle", "cyan diamond"]) == (0, 29)
    with pytest.raises(SpecError, match=r"held_out\[1\].*purple.*\n.*valid colours: red, green"):
        ShapesDataset(held_out=["red circle", "purple circle"])
    with pytest.raises(SpecError, match=r"held_out\[0\].*hexagon.*\n.*valid shapes: circle"):
        ShapesDataset(held_out=["red hexagon"])
    with pytest.raises(SpecError, match=r"held_out\[0\].*not 'colour shape'"):
        ShapesDataset(held_out=["red"])
    with pytest.raises(SpecError, match="every combination with 'red'"):
        ShapesDataset(held_out=[f"red {s}" for s in SHAPES])
    with pytest.raises(SpecError, match="every combination with 'circle'"):
        ShapesDataset(held_out=[f"{c} circle" for c in COLORS])
    with pytest.raises(SpecError, match="data.dataset.params.image_size"):
        ShapesDataset(image_size=4)
    with pytest.raises(SpecError, match="data.dataset.params.train_samples"):
        ShapesDataset(train_samples=-1)
    with pytest.raises(SpecError, match="data.dataset.params.held_out: must be a list"):
        ShapesDataset(held_out="red circle")  # type: ignore[arg-type]


def test_no_held_out_has_no_heldout_split():
    ds = _small(held_out=[])
    assert ds.splits == ("train", "test")
    assert set(ds.tensors("train")["target"].tolist()) == set(range(30))
    with pytest.raises(Exception, match="no split 'heldout'"):
        ds.load("heldout")
