"""Pipeline assembly from specs."""

from modalforge.pipeline.build import Pipeline, TransformedDataset, build_pipeline, instantiate
from modalforge.pipeline.contrastive import ContrastiveModel, embed_key, feature_key
from modalforge.pipeline.model import MultimodalModel
from modalforge.pipeline.trained import TrainedPipeline, load_trained

__all__ = [
    "ContrastiveModel",
    "MultimodalModel",
    "Pipeline",
    "TrainedPipeline",
    "TransformedDataset",
    "build_pipeline",
    "embed_key",
    "feature_key",
    "instantiate",
    "load_trained",
]
