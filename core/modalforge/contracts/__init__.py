"""The component contracts every plugin implements."""

from modalforge.contracts.adapter import DomainAdapter
from modalforge.contracts.callback import Callback, RunLogger
from modalforge.contracts.dataset import MASKS_KEY, TARGET_KEY, DatasetReader, Target, TargetKind
from modalforge.contracts.encoder import Encoder
from modalforge.contracts.features import FeatureSpec
from modalforge.contracts.fusion import Fusion
from modalforge.contracts.generator import CustomTrainStep, Generator
from modalforge.contracts.head import Head
from modalforge.contracts.loader import ColumnLoader
from modalforge.contracts.loss import Loss, LossOutput
from modalforge.contracts.metric import Metric
from modalforge.contracts.optim import Optimizer, Scheduler
from modalforge.contracts.reranker import Reranked, Reranker
from modalforge.contracts.transform import Transform

# Component kinds, in the order they appear in specs and listings, with their base class.
KINDS: dict[str, type] = {
    "dataset": DatasetReader,
    "loader": ColumnLoader,
    "transform": Transform,
    "encoder": Encoder,
    "fusion": Fusion,
    "head": Head,
    "loss": Loss,
    "generator": Generator,
    "reranker": Reranker,
    "adapter": DomainAdapter,
    "metric": Metric,
    "optimizer": Optimizer,
    "scheduler": Scheduler,
    "callback": Callback,
    "logger": RunLogger,
}

__all__ = [
    "KINDS",
    "MASKS_KEY",
    "TARGET_KEY",
    "Callback",
    "ColumnLoader",
    "CustomTrainStep",
    "DatasetReader",
    "DomainAdapter",
    "Encoder",
    "FeatureSpec",
    "Fusion",
    "Generator",
    "Head",
    "Loss",
    "LossOutput",
    "Metric",
    "Optimizer",
    "Reranked",
    "Reranker",
    "RunLogger",
    "Scheduler",
    "Target",
    "TargetKind",
    "Transform",
]
