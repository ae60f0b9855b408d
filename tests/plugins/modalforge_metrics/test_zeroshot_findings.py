"""zeroshot_findings inside a real evaluation pass: equal to the direct computation."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch.utils.data import DataLoader

from modalforge.contracts import Target, TargetKind
from modalforge.engine.data import collate_samples
from modalforge.engine.evaluation import run_evaluation
from modalforge.engine.runtime import Precision
from modalforge.errors import DataError, SpecError
from modalforge.evaluation import build_prompt_pair_classifier, prompt_pair_scores, text_encoder
from modalforge.modality import Modality, ModalityKind
from modalforge.pipeline import build_pipeline
from modalforge.plugin import get_registry
from modalforge.spec import PipelineSpec
from modalforge_medical.synthetic import FINDING_PROMPTS, FINDINGS
from modalforge_metrics.zeroshot_pairs import ZeroShotFindings


def _spec(tmp_path, metric_params=None) -> dict:  # noqa: ANN001
    return {
        "name": "zs-findings",
        "data": {
            "dataset": {
                "name": "synthetic_studies",
                "params": {
                    "dims": 2,
                    "size": 32,
                    "num_train": 8,
                    "num_val": 4,
                    "num_test": 60,
                    "cache_dir": str(tmp_path),
                },
            },
            "transforms": {"eval": {"xray": ["to_tensor"]}},
        },
        "model": {
            "type": "contrastive",
            "embed_dim": 16,
            "encoders": {
                "xray": {"name": "cnn", "params": {"widths": [4, 8]}},
                "report": {
                    "name": "clip_text",
                    "params": {
                        "context_length": 160,
                        "vocab_size": 260,
                        "width": 16,
                        "heads": 2,
                        "layers": 1,
                        "embed_dim": 16,
                    },
                },
            },
        },
        "loss": {"name": "clip", "params": {"pair": ["xray", "report"]}},
        "metrics": [
            {
                "name": "zeroshot_findings",
                "params": dict(metric_params or {}),  # the modalities default to xray / report
            }
        ],
    }


def _collate(pipeline):  # noqa: ANN001, ANN202
    return lambda samples: collate_samples(samples, pipeline.collates)


def _evaluate(pipeline, split="test"):  # noqa: ANN001, ANN202
    loader = DataLoader(pipeline.load(split), batch_size=16, collate_fn=_collate(pipeline))
    return run_evaluation(
        pipeline.model,
        loader,
        precision=Precision("fp32", torch.device("cpu")),
        metrics=pipeline.metrics,
    )


def test_metric_equals_direct_computation(tmp_path):
    torch.manual_seed(0)
    pipeline = build_pipeline(PipelineSpec.model_validate(_spec(tmp_path)), get_registry())
    results = _evaluate(pipeline)
    batch = next(
        iter(DataLoader(pipeline.load("test"), batch_size=100, collate_fn=_collate(pipeline)))
    )
    model = pipeline.model.eval()
    with torch.no_grad():
        z = model(batch)["embed.xray"]
        classifier = build_prompt_pair_classifier(
            text_encoder(model, "report"), FINDING_PROMPTS, FINDINGS
        )
    scores = prompt_pair_scores(z, classifier).numpy()
    y = batch["target"].numpy()
    aucs = [roc_auc_score(y[:, c], scores[:, c]) for c in range(len(FINDINGS))]
    for name, auc in zip(FINDINGS, aucs, strict=True):
        assert results[f"zeroshot_auc/{name}"] == pytest.approx(auc, abs=1e-6)
    assert results["zeroshot_auc_macro"] == pytest.approx(sum(aucs) / len(aucs), abs=1e-6)


def test_one_class_split_is_an_error_not_nan(tmp_path):
    torch.manual_seed(0)
    pipeline = build_pipeline(PipelineSpec.model_validate(_spec(tmp_path)), get_registry())
    (metric,) = pipeline.metrics.values()
    metric.reset()
    metric.prepare(pipeline.model)
    batch = next(
        iter(DataLoader(pipeline.load("val"), batch_size=1, collate_fn=_collate(pipeline)))
    )
    with torch.no_grad():
        metric.update(pipeline.model(batch), batch)
    with pytest.raises(DataError, match=r"finding '\w+' has (no|only) positive cases among the 1"):
        metric.compute()


def test_prompts_are_checked_against_the_findings(tmp_path):
    bad = {"left_lesion": FINDING_PROMPTS["left_lesion"]}
    with pytest.raises(SpecError, match="missing"):
        build_pipeline(
            PipelineSpec.model_validate(_spec(tmp_path, {"prompts": bad})), get_registry()
        )


def test_modality_defaults_need_one_candidate():
    two = SimpleNamespace(
        prompts=FINDING_PROMPTS,
        modalities={
            "pa": Modality("pa", ModalityKind.IMAGE2D, (1, 8, 8)),
            "lateral": Modality("lateral", ModalityKind.IMAGE2D, (1, 8, 8)),
            "report": Modality("report", ModalityKind.TEXT, (None,)),
        },
    )
    target = Target(TargetKind.MULTILABEL, len(FINDINGS), class_names=tuple(FINDINGS))
    with pytest.raises(SpecError, match="image_modality: .* pa, lateral"):
        ZeroShotFindings(target, two)
    metric = ZeroShotFindings(target, two, image_modality="lateral")
    assert (metric.image_modality, metric.text_modality) == ("lateral", "report")
