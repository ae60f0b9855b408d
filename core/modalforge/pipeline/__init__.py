"""Pipeline assembly from specs."""

from modalforge.pipeline.build import Pipeline, build_pipeline, instantiate
from modalforge.pipeline.model import MultimodalModel

__all__ = ["MultimodalModel", "Pipeline", "build_pipeline", "instantiate"]
