"""The engine's optimizers and learning-rate schedules (registered by the ``training`` plugin),
parameter groups, and the spec checks of their ``train.*`` fields."""

from modalforge.engine.optim.groups import (
    NO_DECAY_NAMES,
    grouped_params,
    named_trainable,
    no_decay,
    param_groups,
    prefixes_of,
)
from modalforge.engine.optim.optimizers import SGD, Adam, AdamW
from modalforge.engine.optim.schedulers import (
    Constant,
    Linear,
    StepDecay,
    WarmupCosine,
    warmup_cosine,
    warmup_linear,
)

__all__ = [
    "NO_DECAY_NAMES",
    "SGD",
    "Adam",
    "AdamW",
    "Constant",
    "Linear",
    "StepDecay",
    "WarmupCosine",
    "grouped_params",
    "named_trainable",
    "no_decay",
    "param_groups",
    "prefixes_of",
    "warmup_cosine",
    "warmup_linear",
]
