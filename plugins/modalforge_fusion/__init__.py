"""Built-in fusions of per-modality features, all mask aware.

Pooled: ``concat``, ``mean``, ``sum``, ``max``, ``gmu``, ``tensor``, ``low_rank_tensor``,
``film``, ``late``. Token level: ``cross_attention``, ``bottleneck``, ``token_learner``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modalforge.plugin import hookimpl
from modalforge_fusion.attention import BottleneckFusion, CrossAttentionFusion
from modalforge_fusion.concat import ConcatFusion
from modalforge_fusion.film import FiLMFusion
from modalforge_fusion.gmu import GMUFusion
from modalforge_fusion.late import LateFusion
from modalforge_fusion.mean import MeanFusion
from modalforge_fusion.reduce import MaxFusion, SumFusion
from modalforge_fusion.tensor import LowRankTensorFusion, TensorFusion
from modalforge_fusion.token_learner import TokenLearner, TokenLearnerFusion

if TYPE_CHECKING:
    from modalforge.registry import Registrar

__all__ = [
    "BottleneckFusion",
    "ConcatFusion",
    "CrossAttentionFusion",
    "FiLMFusion",
    "GMUFusion",
    "LateFusion",
    "LowRankTensorFusion",
    "MaxFusion",
    "MeanFusion",
    "SumFusion",
    "TensorFusion",
    "TokenLearner",
    "TokenLearnerFusion",
    "register_components",
]


@hookimpl
def register_components(registry: Registrar) -> None:
    registry.fusion("concat", ConcatFusion, tags=("late",))
    registry.fusion("mean", MeanFusion, tags=("late",))
    registry.fusion("sum", SumFusion, tags=("late",))
    registry.fusion("max", MaxFusion, tags=("late",))
    registry.fusion("gmu", GMUFusion, tags=("gated",))
    registry.fusion("tensor", TensorFusion, tags=("tensor",))
    registry.fusion("low_rank_tensor", LowRankTensorFusion, tags=("tensor",))
    registry.fusion("film", FiLMFusion, tags=("conditioning",))
    registry.fusion("late", LateFusion, tags=("late",))
    registry.fusion("cross_attention", CrossAttentionFusion, tags=("attention", "tokens"))
    registry.fusion("bottleneck", BottleneckFusion, tags=("attention", "tokens"))
    registry.fusion("token_learner", TokenLearnerFusion, tags=("attention", "tokens", "robotics"))
