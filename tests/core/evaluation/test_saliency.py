"""Saliency maps: Grad-CAM against its closed form on a hand-built model, and both methods on tiny
classifiers trained through the real engine, where the class lives in a known corner block."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from modalforge.contracts import Target, TargetKind
from modalforge.engine.data import collate_samples
from modalforge.errors import ModalforgeError, SpecError
from modalforge.evaluation.saliency import (
    ModalityLogits,
    class_index,
    classifier_parts,
    explain,
    feature_map_layers,
    pick_modality,
)
from modalforge.modality import Modality
from modalforge.pipeline import MultimodalModel, load_trained
from modalforge.plugin import set_host
from modalforge_encoders.cnn import CNNEncoder
from modalforge_encoders.mlp import MLPEncoder
from modalforge_fusion import ConcatFusion
from modalforge_heads.heads import ClassificationHead
from tests.core.evaluation import saliency_toy as toy

MULTICLASS = TargetKind.MULTICLASS


def _contrast(saliency: torch.Tensor) -> float:
    """Mean saliency inside the class-defining block over the mean outside."""
    inside = toy.region(tuple(saliency.shape))
    return float(saliency[inside].mean() / saliency[~inside].mean().clamp(min=1e-9))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Trained 2-D and 3-D toys: {"2d" / "3d": (TrainedPipeline, test split)}."""
    set_host(None)  # the installed plugins
    out = {}
    for name, volume in (("2d", False), ("3d", True)):
        spec, run = toy.train_run(tmp_path_factory.mktemp(name), volume=volume)
        loaded = load_trained(spec, run)
        out[name] = loaded, loaded.pipeline.load("test")
    return out


def _lesions(data, limit: int) -> list[dict]:  # noqa: ANN001
    return [collate_samples([s]) for s in data if int(s["target"]) == 1][:limit]


@pytest.mark.parametrize(
    ("dims", "method", "factor", "options"),
    [
        ("2d", "gradcam", 4, {}),
        ("2d", "occlusion", 8, {}),  # default patch: a quarter of each side
        ("3d", "gradcam", 4, {}),
        ("3d", "occlusion", 8, {"mask_size": 7, "n_batch": 64}),
    ],
)
def test_saliency_concentrates_on_the_lesion(trained, dims, method, factor, options):
    loaded, data = trained[dims]
    samples = _lesions(data, limit=3)
    assert len(samples) == 3
    for batch in samples:
        e = explain(
            loaded.model, batch, target_kind=MULTICLASS, modality="image", method=method, **options
        )
        assert e.predicted == e.class_index == 1 and e.probability > 0.6
        assert tuple(e.saliency.shape) == tuple(batch["image"].shape[2:])
        assert float(e.saliency.min()) >= 0 and float(e.saliency.max()) == pytest.approx(1.0)
        assert e.raw_max > 0
        assert _contrast(e.saliency) > factor, (method, dims, _contrast(e.saliency))
        assert (e.layer == "features") == (method == "gradcam")  # the last conv stage's output


def test_explaining_another_class(trained):
    loaded, data = trained["2d"]
    batch = _lesions(data, limit=1)[0]
    lesion = explain(loaded.model, batch, target_kind=MULTICLASS, modality="image")
    clear = explain(loaded.model, batch, target_kind=MULTICLASS, modality="image", class_index=0)
    assert clear.class_index == 0 and clear.predicted == 1
    assert clear.probability == pytest.approx(1 - lesion.probability, abs=1e-6)
    assert not torch.allclose(clear.saliency, lesion.saliency)


def test_a_named_layer_and_a_wrong_name(trained):
    loaded, data = trained["2d"]
    batch = _lesions(data, limit=1)[0]
    conv = explain(
        loaded.model, batch, target_kind=MULTICLASS, modality="image", layer="features.3"
    )
    assert conv.layer == "features.3" and _contrast(conv.saliency) > 2
    with pytest.raises(ModalforgeError) as err:
        explain(loaded.model, batch, target_kind=MULTICLASS, modality="image", layer="layer4")
    text = str(err.value)
    assert "no layer 'layer4'" in text and "features.0" in text and "features.5, features" in text


def _hand_built(weights: list[list[float]]) -> tuple[MultimodalModel, CNNEncoder]:
    torch.manual_seed(0)
    encoder = CNNEncoder(Modality("image", "image2d", (1, 6, 6)), widths=[2], norm="none")
    head = ClassificationHead(2, Target(MULTICLASS, len(weights), ("a", "b", "c")))
    with torch.no_grad():
        head.net[-1].weight.copy_(torch.tensor(weights))
        head.net[-1].bias.zero_()
    return MultimodalModel({"image": encoder}, None, head).eval(), encoder


def test_gradcam_equals_its_closed_form():
    """conv → ReLU → mean pool → linear: d logit_k / dA_c = W[k, c] / N at every position, so
    Grad-CAM is ReLU(sum_c W[k, c] / N · A_c) (same size as the input: no upsampling)."""
    weights = [[1.0, -1.0], [-1.0, -1.0], [0.5, 0.8]]
    model, encoder = _hand_built(weights)
    x = torch.randn(1, 1, 6, 6)
    conv = encoder.features[0]
    with torch.no_grad():
        acts = F.relu(F.conv2d(x, conv.weight, conv.bias, padding=1))[0]  # (2, 6, 6)
        expected = F.relu(sum(w / 36 * a for w, a in zip(weights[2], acts, strict=True)))
    e = explain(model, {"image": x}, target_kind=MULTICLASS, modality="image", class_index=2)
    assert e.layer == "features"
    assert e.raw_max == pytest.approx(float(expected.max()), rel=1e-5)
    torch.testing.assert_close(e.saliency, expected / expected.max(), rtol=1e-5, atol=1e-6)
    probs = torch.softmax(torch.tensor(weights) @ acts.mean(dim=(1, 2)), dim=0)
    torch.testing.assert_close(e.probabilities, probs, rtol=1e-5, atol=1e-6)
    # multilabel: the same map, sigmoid probabilities, the likeliest finding by default
    findings = explain(model, {"image": x}, target_kind=TargetKind.MULTILABEL, modality="image")
    logits = torch.tensor(weights) @ acts.mean(dim=(1, 2))
    torch.testing.assert_close(findings.probabilities, logits.sigmoid(), rtol=1e-5, atol=1e-6)
    assert findings.class_index == int(logits.argmax())
    # class b has only negative weights on non-negative activations: no supporting region
    none = explain(model, {"image": x}, target_kind=MULTICLASS, modality="image", class_index=1)
    assert none.raw_max == 0 and float(none.saliency.abs().max()) == 0


def test_the_other_modalities_stay_fixed():
    torch.manual_seed(0)
    image = CNNEncoder(Modality("image", "image2d", (1, 8, 8)), widths=[4], norm="none")
    labs = MLPEncoder(Modality("labs", "tabular", (3,)), hidden_dims=[4], out_dim=4)
    fusion = ConcatFusion({"image": image.output, "labs": labs.output})
    head = ClassificationHead(fusion.output.dim, Target(MULTICLASS, 2, ("u", "v")))
    model = MultimodalModel({"image": image, "labs": labs}, fusion, head).eval()
    batch = {"image": torch.randn(1, 1, 8, 8), "labs": torch.randn(1, 3)}
    wrapper = ModalityLogits(model, "image", batch, "logits")
    torch.testing.assert_close(wrapper(batch["image"]), model(batch)["logits"])
    many = torch.randn(5, 1, 8, 8)  # occlusion's batches: labs repeated for each copy
    expected = model({"image": many, "labs": batch["labs"].expand(5, 3)})["logits"]
    torch.testing.assert_close(wrapper(many), expected)
    assert feature_map_layers(wrapper, batch["image"])[-1] == "features"
    for method in ("gradcam", "occlusion"):
        e = explain(model, batch, target_kind=MULTICLASS, modality="image", method=method)
        assert tuple(e.saliency.shape) == (8, 8)
    mods = {"image": image.modality, "labs": labs.modality}
    with pytest.raises(ModalforgeError, match="'labs' is tabular, not an image or volume"):
        pick_modality(model, mods, "labs")
    assert pick_modality(model, mods, None) == "image"  # the only spatial one
    two = SimpleNamespace(encoders={"image": image, "image_b": image})
    with pytest.raises(ModalforgeError, match=r"2 spatial modalities \(image, image_b\)"):
        pick_modality(two, {"image": image.modality, "image_b": image.modality}, None)


def test_errors_name_the_fix():
    model, encoder = _hand_built([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    mods = {"image": encoder.modality}
    assert pick_modality(model, mods, None) == "image"
    with pytest.raises(ModalforgeError, match="no input 'ct'.*\n.*fix: spatial modalities"):
        pick_modality(model, mods, "ct")
    with pytest.raises(ModalforgeError, match="no class 'd'.*\n.*a, b, c"):
        class_index(("a", "b", "c"), "d")
    assert class_index(("a", "b", "c"), "c") == 2
    with pytest.raises(SpecError, match="target is regression"):
        classifier_parts(model, TargetKind.REGRESSION)
    with pytest.raises(SpecError, match="explain a classifier, and this spec builds a Linear"):
        classifier_parts(torch.nn.Linear(2, 2), MULTICLASS)
    x = {"image": torch.randn(1, 1, 6, 6)}
    with pytest.raises(ModalforgeError, match="--mask-size 7 does not fit"):
        explain(model, x, target_kind=MULTICLASS, modality="image", method="occlusion", mask_size=7)
