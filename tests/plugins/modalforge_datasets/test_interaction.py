"""The interaction data set: label needs both modalities; each alone is uninformative."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from torch.utils.data import DataLoader

from modalforge_datasets import InteractionDataset
from modalforge_datasets.interaction import TABULAR_SIGNAL


def _arrays(ds: InteractionDataset, split: str, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    data = ds.load(split).tensors
    x = np.concatenate([data[n].flatten(1).numpy() for n in names], axis=1)
    return x, data["target"].numpy()


def _test_accuracy(ds: InteractionDataset, names: list[str], model) -> float:
    x_tr, y_tr = _arrays(ds, "train", names)
    x_te, y_te = _arrays(ds, "test", names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x_tr, y_tr)
    return float(model.score(x_te, y_te))


def test_modalities_shapes_target_and_splits():
    ds = InteractionDataset(num_samples=120, image_size=12, tabular_features=5, num_classes=3)
    assert {n: (str(m.kind), m.shape) for n, m in ds.modalities.items()} == {
        "image": ("image2d", (1, 12, 12)),
        "tabular": ("tabular", (5,)),
    }
    assert ds.target.num_outputs == 3 and ds.target.class_names == ("class_0", "class_1", "class_2")
    batch = next(iter(DataLoader(ds.load("train"), batch_size=1000)))
    assert batch["image"].shape[1:] == (1, 12, 12) and batch["image"].dtype == torch.float32
    assert batch["tabular"].shape[1:] == (5,) and batch["tabular"].dtype == torch.float32
    assert batch["target"].dtype == torch.long
    train, test = ds.train_indices, ds.test_indices
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == 120
    assert len(test) == 30  # a quarter of each latent cell: 3 cells of 14 -> 4, 6 of 13 -> 3


def test_label_is_sum_of_latents_mod_k():
    ds = InteractionDataset(num_samples=90, num_classes=3)
    labels = ds._all.tensors["target"].numpy()
    assert np.array_equal(labels, ds.latents.sum(1) % 3)


def test_latents_are_rendered_into_their_modality_without_noise():
    """With ``noise=0`` the image is one of K blob templates and the vector one of K orthogonal
    prototypes of norm TABULAR_SIGNAL, chosen by the sample's own latent."""
    ds = InteractionDataset(num_samples=64, num_classes=4, noise=0.0)
    images = ds._all.tensors["image"].flatten(1)
    vectors = ds._all.tensors["tabular"]
    a, b = ds.latents[:, 0], ds.latents[:, 1]
    for k in range(4):
        assert torch.equal(images[a == k], images[a == k][:1].expand(int((a == k).sum()), -1))
    peaks = torch.stack([images[a == k][0] for k in range(4)]).argmax(1)
    assert len(set(peaks.tolist())) == 4  # the blob sits in a different place for each a
    protos = torch.stack([vectors[b == k][0] for k in range(4)]).double()
    torch.testing.assert_close(protos @ protos.T, TABULAR_SIGNAL**2 * torch.eye(4).double())


def test_same_seed_same_data_other_seed_other_data():
    a = InteractionDataset(num_samples=200, seed=5).load("test").tensors
    b = InteractionDataset(num_samples=200, seed=5).load("test").tensors
    c = InteractionDataset(num_samples=200, seed=6).load("test").tensors
    for name in ("image", "tabular", "target"):
        assert torch.equal(a[name], b[name])
    assert not torch.equal(a["tabular"], c["tabular"])


@pytest.mark.parametrize("num_classes", [2, 3])
@pytest.mark.parametrize("split", ["train", "test"])
def test_each_latent_alone_leaves_the_label_uniform(num_classes, split):
    """Given either latent, every label is equally frequent: zero mutual information."""
    ds = InteractionDataset(num_samples=900, num_classes=num_classes)
    idx = ds.train_indices if split == "train" else ds.test_indices
    latents, labels = ds.latents[idx], ds._all.tensors["target"].numpy()[idx]
    for which in (0, 1):
        for value in range(num_classes):
            counts = np.bincount(labels[latents[:, which] == value], minlength=num_classes)
            freq = counts / counts.sum()
            np.testing.assert_allclose(freq, 1.0 / num_classes, atol=0.02)


def test_unimodal_and_linear_models_score_chance_an_mlp_on_both_learns_it():
    ds = InteractionDataset(num_samples=1200, seed=1)
    for names in (["image"], ["tabular"], ["image", "tabular"]):
        acc = _test_accuracy(ds, names, LogisticRegression(max_iter=300))
        assert abs(acc - 0.5) < 0.08, (names, acc)
    mlp = MLPClassifier((32,), max_iter=300, random_state=0)
    assert _test_accuracy(ds, ["image", "tabular"], mlp) > 0.85


def test_latent_estimates_from_each_modality_recover_the_label():
    """The latents are recoverable per modality; combining the estimates by the task's rule is
    near perfect, so the difficulty lies only in the interaction."""
    ds = InteractionDataset(num_samples=800, num_classes=3, seed=2)
    estimates = []
    for which, name in enumerate(("image", "tabular")):
        x_tr = ds.load("train").tensors[name].flatten(1).numpy()
        x_te = ds.load("test").tensors[name].flatten(1).numpy()
        clf = LogisticRegression(max_iter=300).fit(x_tr, ds.latents[ds.train_indices, which])
        estimates.append(clf.predict(x_te))
    pred = (estimates[0] + estimates[1]) % 3
    assert (pred == ds.load("test").tensors["target"].numpy()).mean() > 0.9


def test_bad_params_are_value_errors():
    with pytest.raises(ValueError, match="tabular_features"):
        InteractionDataset(tabular_features=2, num_classes=3)
    with pytest.raises(ValueError, match="num_samples"):
        InteractionDataset(num_samples=10, num_classes=3)
    with pytest.raises(ValueError, match="num_classes"):
        InteractionDataset(num_classes=1)
    with pytest.raises(Exception, match="no split 'val'"):
        InteractionDataset(num_samples=40).load("val")


def test_both_benchmark_data_sets_are_registered_through_the_plugin():
    from modalforge.plugin import get_registry

    names = get_registry().names("dataset")
    assert "interaction" in names and "digits_halves" in names
