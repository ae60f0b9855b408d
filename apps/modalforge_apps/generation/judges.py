"""Independent judges of generated images: what do they show, and how far are they from real data?

A judge is trained on real images only, never on generated ones, and shares nothing with the
generators or the CLIP reranker it evaluates (its own architecture, data draw and training):

- :class:`DigitsJudge` labels digits with the classic scikit-learn digits classifier,
  ``SVC(gamma=0.001)`` on 8×8 images scaled to 0..16, fit on the ``train`` split of ``digits`` /
  ``digits_captions`` (the same split: same ``test_fraction`` and ``split_seed``, the same loader).
- :class:`ShapesJudge` predicts colour, shape and position of ``shapes`` images, each from its
  own position-, size- and brightness-normalised descriptor (:mod:`.descriptors`): colour by the
  nearest class centroid of the shape's chromaticity, position by the nearest class centroid of
  its centre, shape by an RBF ``SVC`` on the shape resampled in its own frame. Factorised this way,
  no attribute can be guessed from another, so held-out combinations are judged like any other.
  It is trained on a separately drawn shapes set with every colour–shape combination (held-out
  ones included: it is an evaluator, not a generator), from another seed (``DATA_SEED + seed``)
  than any data set a generator trains on, so it has seen none of their images; half of its
  training images are noisy or blurred copies, so that imperfect samples are judged fairly.

Both give ``features(images)``, an embedding for KID (:func:`modalforge.evaluation.kid`) that
belongs to neither a generator nor a reranker (:class:`KidFeatures`): the penultimate layer of a
small CNN trained to classify real images of that data set (digits: the digit; shapes: the
attributes) next to a thumbnail of the pixels (at most 16×16). The CNN part alone barely notices
pixel noise or blur (a classifier learns to ignore them); the thumbnail does. Both parts weigh
the same and are scaled on the real training images so that the kernel ``(x·y/d + 1)³`` sees
inputs of order one, as with Inception features. Compute the real side of a KID from real images
of the same data set at the same ``image_size`` as the generator's: the resizing matters.
Inputs are ``(N, C, H, W)`` in ``[0, 1]`` of any size; they are resized to the judge's resolution
with area interpolation (bilinear when enlarging). Everything is deterministic given ``seed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from modalforge.evaluation import attribute_accuracy, judge_accuracy
from modalforge_apps.generation.descriptors import augment, describe
from modalforge_apps.generation.nets import (
    JudgeNet,
    as_images,
    cached_net,
    resize,
    run_chunks,
    seeded_net,
    train_judge_net,
)
from modalforge_datasets.digits import CLASS_NAMES, DigitsDataset
from modalforge_datasets.shapes import ATTRIBUTES, ShapesDataset

DATA_SEED = 7919  # shapes judge data: seed DATA_SEED + seed, far from the data sets' small seeds
THUMBNAIL = 16  # largest side of the pixel block of the KID features


class KidFeatures:
    """KID embedding: a trained :class:`JudgeNet`'s penultimate layer (what the image shows)
    next to an area-downsampled copy of its pixels, at most ``THUMBNAIL`` on a side (how it looks:
    noise, blur, brightness, which a classifier learns to ignore).

    Each block is scaled by a constant fixed on the real training images so that both weigh the
    same in a dot product and every entry is of order one (mean square 1 over all ``dim``).
    """

    def __init__(self, net: JudgeNet, size: int, channels: int, real: Tensor) -> None:
        self.net, self.size, self.channels = net, size, channels
        self.thumbnail = min(THUMBNAIL, size)
        self.scales = (1.0, 1.0)
        blocks = self._blocks(real)
        self.dim = sum(b.shape[1] for b in blocks)
        self.scales = tuple(
            float((self.dim / (len(blocks) * b.shape[1])) ** 0.5 / b.pow(2).mean().sqrt())
            for b in blocks
        )

    def _blocks(self, images: Tensor | np.ndarray) -> tuple[Tensor, Tensor]:
        x = resize(as_images(images, self.channels), self.size)
        deep = run_chunks(self.net.features, x) * self.scales[0]
        return deep, resize(x, self.thumbnail).flatten(1) * self.scales[1]

    def __call__(self, images: Tensor | np.ndarray) -> Tensor:
        return torch.cat(self._blocks(images), 1)


class DigitsJudge:
    """Digit labels from ``SVC(gamma=0.001)`` on 8×8 images (0..16), KID features from a CNN.

    ``test_accuracy`` is the SVC's accuracy on the real ``test`` split, ``feature_test_accuracy``
    that of the feature CNN (a check that its features carry the digit).
    """

    image_size = 8
    class_names = CLASS_NAMES

    def __init__(
        self,
        *,
        test_fraction: float = 0.2,
        split_seed: int = 0,
        seed: int = 0,
        epochs: int = 20,
        cache_dir: str | Path | None = None,
    ) -> None:
        from sklearn.svm import SVC

        self.data = DigitsDataset(image_size=8, test_fraction=test_fraction, split_seed=split_seed)
        self._split = (test_fraction, split_seed)
        train, test = self.real_images("train"), self.real_images("test")
        self.svc = SVC(gamma=0.001).fit(_svc_input(train[0]), train[1].numpy())

        def build() -> JudgeNet:
            return seeded_net(seed, lambda: JudgeNet(1, 8, {"digit": 10}))

        def fit() -> JudgeNet:
            labels = {"digit": train[1]}
            return train_judge_net(build(), train[0], labels, epochs=epochs, seed=seed)

        config = {
            "name": "digits",
            "test_fraction": test_fraction,
            "split_seed": split_seed,
            "seed": seed,
            "epochs": epochs,
        }
        net = cached_net(cache_dir, config, fit, build)
        self._features = KidFeatures(net, 8, 1, train[0])
        self.test_accuracy = self.score(*test)
        net_pred = run_chunks(lambda x: net(x)["digit"].argmax(1), test[0])
        self.feature_test_accuracy = judge_accuracy(net_pred, test[1])

    def real_images(self, split: str, image_size: int = 8) -> tuple[Tensor, Tensor]:
        """``(images (N, 1, S, S), labels)`` of a real split, e.g. for KID and its floor.

        ``image_size``: that of the generator's data (``digits_captions`` upsamples the 8×8
        digits bilinearly, exactly as here); the real side of a KID must be made the same way
        as the generated side, since resizing 32 → 8 does not restore the original 8×8 images.
        """
        data = self.data
        if image_size != data.image_size:
            data = DigitsDataset(image_size, self._split[0], self._split[1])
        t = data.load(split).tensors
        return t["image"], t["target"]

    def predict(self, images: Tensor | np.ndarray) -> Tensor:
        """Digit labels ``(N,)`` of images ``(N, 1, H, W)`` in ``[0, 1]``."""
        x = as_images(images, 1)
        if len(x) == 0:
            return torch.zeros(0, dtype=torch.long)
        return torch.from_numpy(self.svc.predict(_svc_input(x))).long()

    def features(self, images: Tensor | np.ndarray) -> Tensor:
        """``(N, 192)`` KID features (:class:`KidFeatures`): CNN penultimate layer, 8×8 pixels."""
        return self._features(images)

    def score(self, images: Tensor | np.ndarray, labels: Tensor | np.ndarray) -> float:
        """Fraction of ``images`` judged to show their ``labels`` (the prompted digits)."""
        return judge_accuracy(self.predict(images), labels)


def _svc_input(images: Tensor) -> np.ndarray:
    return (resize(images, 8) * 16.0).flatten(1).numpy().astype(np.float64)


class ShapesJudge:
    """Colour, shape and position of ``shapes`` images from factorised descriptors; KID features
    from a small three-headed CNN.

    Trained on ``train_samples`` real images at ``image_size`` (use the generator's data size)
    with every combination, drawn from seed ``DATA_SEED + seed``, plus a noisy/blurred copy.
    Images in which nothing is visible get label ``-1`` for every attribute (always wrong).
    """

    attributes: tuple[str, ...] = tuple(ATTRIBUTES)

    def __init__(
        self,
        *,
        image_size: int = 32,
        train_samples: int = 3000,
        seed: int = 0,
        epochs: int = 4,
        cache_dir: str | Path | None = None,
    ) -> None:
        from sklearn.neighbors import NearestCentroid
        from sklearn.svm import SVC

        self.image_size = image_size
        data = ShapesDataset(
            image_size=image_size,
            train_samples=train_samples,
            test_samples=0,
            held_out=[],
            caption_mode="fixed",
            seed=DATA_SEED + seed,
        )
        t = data.tensors("train")
        images = t["image"]
        hard = augment(images, torch.Generator().manual_seed(seed))
        d = describe(torch.cat([images, hard]))
        y = {name: torch.cat([t[name], t[name]]).numpy() for name in ATTRIBUTES}
        self.color_model = NearestCentroid().fit(d.chroma, y["color"])
        self.position_model = NearestCentroid().fit(d.centroid, y["position"])
        self.shape_model = SVC(C=10.0).fit(d.patch, y["shape"])

        heads = {name: len(vocab) for name, vocab in ATTRIBUTES.items()}

        def build() -> JudgeNet:
            return seeded_net(seed, lambda: JudgeNet(3, image_size, heads))

        def fit() -> JudgeNet:
            labels = {name: t[name] for name in heads}
            return train_judge_net(build(), images, labels, epochs=epochs, seed=seed)

        config = {
            "name": f"shapes{image_size}",
            "train_samples": train_samples,
            "seed": seed,
            "epochs": epochs,
        }
        self._features = KidFeatures(
            cached_net(cache_dir, config, fit, build), image_size, 3, images
        )

    def predict(self, images: Tensor | np.ndarray) -> dict[str, Tensor]:
        """``{"color", "shape", "position"}`` → labels ``(N,)`` (indices into the vocabularies of
        :mod:`modalforge_datasets.shapes`; ``-1``: nothing visible) of images ``(N, 3, H, W)`` in
        ``[0, 1]``."""
        x = resize(as_images(images, 3), self.image_size)
        if len(x) == 0:
            return {name: torch.zeros(0, dtype=torch.long) for name in ATTRIBUTES}
        d = describe(x)
        out = {
            "color": self.color_model.predict(d.chroma),
            "shape": self.shape_model.predict(d.patch),
            "position": self.position_model.predict(d.centroid),
        }
        empty = torch.from_numpy(d.empty)
        return {
            name: torch.from_numpy(np.asarray(p)).long().masked_fill(empty, -1)
            for name, p in out.items()
        }

    def features(self, images: Tensor | np.ndarray) -> Tensor:
        """``(N, 128 + 3·T²)`` KID features (:class:`KidFeatures`): CNN penultimate layer and
        ``T × T`` RGB pixels, ``T = min(16, image_size)``."""
        return self._features(images)

    def score(
        self, images: Tensor | np.ndarray, labels: Mapping[str, Tensor | np.ndarray]
    ) -> dict[str, float]:
        """Per-attribute accuracy against ``labels`` (the prompted attributes) and ``"all"``."""
        return attribute_accuracy(self.predict(images), labels)
