"""zeroshot, retrieval and probe metrics inside a real evaluation pass of a contrastive pipeline."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.data import DataLoader

from modalforge.contracts import Target
from modalforge.engine.evaluation import run_evaluation
from modalforge.engine.runtime import Precision
from modalforge.errors import SpecError
from modalforge.evaluation import (
    build_zeroshot_classifier,
    cross_validated_probe,
    image_text_retrieval,
    topk_accuracy,
    zeroshot_logits,
)
from modalforge.pipeline import build_pipeline
from modalforge.spec import PipelineSpec
from modalforge_metrics import LinearProbe, Retrieval, SvmProbe, ZeroShot
from tests.core.evaluation.clip_toy import CLASSES, clip_registry, clip_spec

ALL_METRICS = [
    {"name": "zeroshot", "params": {"templates": ["a photo of a {}", "{}"], "top_k": 2}},
    {"name": "retrieval", "params": {"hit": "class"}},
    {"name": "linear_probe", "params": {"folds": 3}},
    {"name": "svm_probe", "params": {"folds": 3}},
]


def _pipeline(hand_set: bool, metrics=None):  # noqa: ANN001, ANN202
    torch.manual_seed(0)
    spec = clip_spec(hand_set=hand_set, metrics=metrics or ALL_METRICS)
    return build_pipeline(PipelineSpec.model_validate(spec), clip_registry())


def _evaluate(pipeline, metrics=None) -> dict[str, float]:  # noqa: ANN001
    loader = DataLoader(pipeline.load("test"), batch_size=5)
    return run_evaluation(
        pipeline.model,
        loader,
        precision=Precision("fp32", torch.device("cpu")),
        metrics=metrics if metrics is not None else pipeline.metrics,
    )


def _all_embeddings(pipeline):  # noqa: ANN001, ANN202
    batch = next(iter(DataLoader(pipeline.load("test"), batch_size=1000)))
    with torch.no_grad():
        out = pipeline.model(batch)
    return out["embed.image"], out["embed.text"], batch["target"]


def test_hand_set_model_is_perfect():
    results = _evaluate(_pipeline(hand_set=True))
    assert results["zeroshot_top1"] == 1.0 and results["zeroshot_top2"] == 1.0
    assert results["retrieval_i2t_r1"] == 1.0 and results["retrieval_t2i_r1"] == 1.0
    assert results["retrieval_t2i_mean_rank"] == 1.0
    assert results["linear_probe_acc"] == 1.0 and results["svm_probe_acc"] == 1.0


def test_zeroshot_uses_the_class_names_it_is_given():
    pipeline = _pipeline(hand_set=True)
    rotated = ZeroShot(pipeline.dataset.target, class_names=[*CLASSES[1:], CLASSES[0]], top_k=1)
    assert _evaluate(pipeline, {"z": rotated}) == {"zeroshot_top1": 0.0}


def test_random_model_metrics_equal_direct_computation():
    pipeline = _pipeline(hand_set=False)
    results = _evaluate(pipeline)
    images, texts, y = _all_embeddings(pipeline)
    model = pipeline.model
    tokenize = model.encoders["text"].preprocess()

    def encode(prompts):  # noqa: ANN001, ANN202
        return model.encode("text", torch.stack([tokenize(p) for p in prompts]))

    with torch.no_grad():
        classifier = build_zeroshot_classifier(encode, CLASSES, ["a photo of a {}", "{}"])
    acc = topk_accuracy(zeroshot_logits(images, classifier), y, ks=(1, 2))
    assert results["zeroshot_top1"] == pytest.approx(acc[1])
    assert results["zeroshot_top2"] == pytest.approx(acc[2])
    expected = image_text_retrieval(images, texts, image_labels=y, text_labels=y)
    for key, value in expected.items():
        assert results[f"retrieval_{key}"] == pytest.approx(value), key
    logistic = cross_validated_probe(images, y, folds=3).accuracy
    assert results["linear_probe_acc"] == pytest.approx(logistic)
    svm = cross_validated_probe(images, y, kind="svm", folds=3).accuracy
    assert results["svm_probe_acc"] == pytest.approx(svm)


def test_instance_level_retrieval_counts_identical_captions_as_misses():
    pipeline = _pipeline(hand_set=True, metrics=["retrieval"])
    results = _evaluate(pipeline)
    # 24 test samples, 8 per class, all captions of a class identical: image i ties with the
    # 7 other captions of its class and ties count against it, so its rank is exactly 8
    assert results["retrieval_i2t_mean_rank"] == 8.0 and results["retrieval_i2t_r5"] == 0.0
    assert results["retrieval_i2t_r10"] == 1.0


def test_metrics_are_registered_by_the_plugin():
    from modalforge.plugin import get_registry

    registry = get_registry()
    for name in ("zeroshot", "retrieval", "linear_probe", "svm_probe"):
        assert ("metric", name) in registry


def test_zeroshot_configuration_errors():
    with pytest.raises(ValueError, match="class names"):
        ZeroShot(Target("multiclass", 3))
    with pytest.raises(ValueError, match="'a'"):
        ZeroShot(Target("multiclass", 3), class_names=["a", "b", "a"])
    with pytest.raises(ValueError, match="3 classes"):
        ZeroShot(Target("multiclass", 3), class_names=["a", "b"])
    with pytest.raises(ValueError, match="placeholder"):
        ZeroShot(Target("multiclass", 2, ("a", "b")), templates=["a photo"])


def test_zeroshot_needs_a_contrastive_model():
    metric = ZeroShot(Target("multiclass", 2, ("a", "b")))
    with pytest.raises(SpecError, match="contrastive"):
        metric.prepare(torch.nn.Linear(2, 2))
    pipeline = _pipeline(hand_set=True)
    with pytest.raises(SpecError, match="'caption'"):
        ZeroShot(pipeline.dataset.target, text_modality="caption").prepare(pipeline.model)


def test_missing_output_is_named():
    metric = Retrieval(hit="instance")
    with pytest.raises(SpecError, match="embed.text"):
        metric.update({"embed.image": torch.ones(2, 3)}, {"target": torch.zeros(2)})


def test_empty_and_undefined_results_are_nan():
    assert math.isnan(LinearProbe().compute()["linear_probe_acc"])
    probe = SvmProbe()
    probe.update({"embed.image": torch.randn(4, 3)}, {"target": torch.zeros(4)})
    with pytest.warns(UserWarning, match="two classes"):
        assert math.isnan(probe.compute()["svm_probe_acc"])
    assert math.isnan(Retrieval().compute()["retrieval_t2i_r1"])
