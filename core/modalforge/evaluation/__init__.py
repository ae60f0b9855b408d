"""Evaluation: zero-shot classification, retrieval, linear probes, robustness to corruption and
generated images (KID, CLIP score, R-precision, judge accuracy).

Pure functions on tensors, with no registry or plugin in sight: metrics (``modalforge_metrics``)
and the CLI (``modalforge zeroshot``, ``retrieve``, ``embed``) are thin layers over them.
scikit-learn is imported only inside the probe functions.
"""

from modalforge.evaluation.encode import (
    is_contrastive,
    model_device,
    preprocess_batch,
    text_encoder,
    unwrap_model,
)
from modalforge.evaluation.generation import (
    attribute_accuracy,
    clip_score,
    judge_accuracy,
    kid,
    mmd2_unbiased,
    polynomial_kernel,
    r_precision,
)
from modalforge.evaluation.probe_auc import ProbeAucResult, cross_validated_probe_auc, probe_auc
from modalforge.evaluation.probes import (
    DEFAULT_CS,
    ProbeResult,
    cross_validated_probe,
    fit_probe,
    linear_probe,
    svm_probe,
)
from modalforge.evaluation.prompt_pairs import (
    build_prompt_pair_classifier,
    prompt_pair_probs,
    prompt_pair_scores,
    validate_prompt_pairs,
)
from modalforge.evaluation.retrieval import (
    image_text_retrieval,
    invert_positives,
    retrieval_metrics,
    retrieval_ranks,
    summarize_ranks,
    topk,
)
from modalforge.evaluation.robustness import (
    DEFAULT_NOISE_LEVELS,
    corrupt_batch,
    evaluate_robustness,
    normalized_auc,
)
from modalforge.evaluation.zeroshot import (
    DEFAULT_TEMPLATES,
    build_zeroshot_classifier,
    format_prompts,
    per_class_accuracy,
    topk_accuracy,
    validate_prompts,
    zeroshot_logits,
)

__all__ = [
    "build_prompt_pair_classifier",
    "prompt_pair_probs",
    "prompt_pair_scores",
    "validate_prompt_pairs",
    "DEFAULT_NOISE_LEVELS",
    "DEFAULT_CS",
    "DEFAULT_TEMPLATES",
    "ProbeAucResult",
    "ProbeResult",
    "attribute_accuracy",
    "build_zeroshot_classifier",
    "clip_score",
    "corrupt_batch",
    "evaluate_robustness",
    "cross_validated_probe",
    "cross_validated_probe_auc",
    "fit_probe",
    "format_prompts",
    "image_text_retrieval",
    "invert_positives",
    "is_contrastive",
    "judge_accuracy",
    "kid",
    "linear_probe",
    "probe_auc",
    "mmd2_unbiased",
    "model_device",
    "normalized_auc",
    "per_class_accuracy",
    "polynomial_kernel",
    "preprocess_batch",
    "r_precision",
    "retrieval_metrics",
    "retrieval_ranks",
    "summarize_ranks",
    "svm_probe",
    "text_encoder",
    "topk",
    "topk_accuracy",
    "unwrap_model",
    "validate_prompts",
    "zeroshot_logits",
]
