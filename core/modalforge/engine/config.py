"""Training settings (the ``train:`` section of a spec)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveInt,
    field_validator,
    model_validator,
)

from modalforge.spec.ref import ComponentRef

Precision = Literal["fp32", "bf16", "fp16"]
DEFAULT_OPTIMIZER = "adamw"
DEFAULT_SCHEDULER = "warmup_cosine"


class ParamGroup(BaseModel):
    """Optimizer settings for the parameters under one name prefix (``train.param_groups``)."""

    model_config = ConfigDict(extra="forbid")

    lr_mult: float | None = Field(None, gt=0, description="multiplies train.lr for this group")
    lr: float | None = Field(
        None, gt=0, description="this group's own peak rate (not with lr_mult)"
    )
    weight_decay: NonNegativeFloat | None = Field(
        None, description="this group's decay (default train.weight_decay; never on biases/norms)"
    )

    @model_validator(mode="after")
    def _one_rate(self) -> ParamGroup:
        if self.lr is not None and self.lr_mult is not None:
            raise ValueError("set `lr` or `lr_mult`, not both")
        if self.lr is None and self.lr_mult is None and self.weight_decay is None:
            raise ValueError("set `lr_mult`, `lr` or `weight_decay`")
        return self


def _flatten_groups(value: Any, prefix: str = "") -> Any:
    """``{encoders: {text: {lr_mult: 0.1}}}`` → ``{"encoders.text": {lr_mult: 0.1}}``, so that a
    command-line override ``train.param_groups.encoders.text.lr_mult=0.1`` means the same."""
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, sub in value.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if not isinstance(sub, dict):
            out[name] = sub  # pydantic reports the wrong type with this path
            continue
        own = {k: v for k, v in sub.items() if k in ParamGroup.model_fields}
        if own:
            out[name] = own
        rest = {k: v for k, v in sub.items() if k not in ParamGroup.model_fields}
        if rest:
            out.update(_flatten_groups(rest, name))
    return out


class TrainConfig(BaseModel):
    """How the engine trains: optimisation, precision, device, logging and checkpoint cadence."""

    model_config = ConfigDict(extra="forbid")

    epochs: PositiveInt = Field(10, description="passes over the training split")
    max_steps: PositiveInt | None = Field(
        None, description="stop after this many optimizer steps (overrides epochs when reached)"
    )
    optimizer: ComponentRef = Field(
        default_factory=lambda: ComponentRef(name=DEFAULT_OPTIMIZER),
        description="registered optimizer (`modalforge components optimizer`): adamw, sgd, adam; "
        "generators build their own optimizers (leave it at the default for them)",
    )
    scheduler: ComponentRef = Field(
        default_factory=lambda: ComponentRef(name=DEFAULT_SCHEDULER),
        description="registered learning-rate schedule: warmup_cosine, linear, constant, step; "
        "scales every parameter group (and each optimizer of a generator)",
    )
    lr: float = Field(1e-3, gt=0, description="peak learning rate, for every optimizer")
    weight_decay: NonNegativeFloat = Field(
        0.05, description="weight decay, for every optimizer (never on biases, norms, temperatures)"
    )
    betas: tuple[float, float] = Field(
        (0.9, 0.999),
        description="Adam(W) betas, unless the optimizer's params set them; a spec error with an "
        "optimizer that has none (sgd)",
    )
    eps: float = Field(
        1e-8, gt=0, description="Adam(W) eps, unless the optimizer's params set it; as betas"
    )
    warmup_steps: NonNegativeInt = Field(
        0, description="linear warm-up steps at the start of every schedule"
    )
    min_lr_ratio: float = Field(
        0.0,
        ge=0,
        le=1,
        description="final lr as a fraction of lr (warmup_cosine, linear; an error with others)",
    )
    param_groups: dict[str, ParamGroup] = Field(
        default_factory=dict,
        description="per-component rates by parameter-name prefix, e.g. `encoders.text: "
        "{lr_mult: 0.1}`, `fusion: {lr: 1.0e-3}`, `loss: {weight_decay: 0}`; the longest "
        "matching prefix wins",
    )
    callbacks: list[ComponentRef] = Field(
        default_factory=list, description="registered callbacks, e.g. early_stopping"
    )
    loggers: list[ComponentRef] = Field(
        default_factory=list, description="extra metric loggers, e.g. csv (process 0 only)"
    )
    grad_accum_steps: PositiveInt = Field(1, description="micro-batches per optimizer step")
    clip_grad_norm: float | None = Field(None, gt=0, description="max global gradient norm")
    precision: Precision = Field("fp32", description="autocast dtype: fp32, bf16 or fp16")
    compile: bool = Field(False, description="wrap the model in torch.compile")
    ddp_find_unused_parameters: bool = Field(
        False,
        description="torchrun runs only: let DDP skip parameters a step does not use (slower)",
    )
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N or mps")
    num_threads: PositiveInt | None = Field(
        None,
        description="CPU threads for torch ops (torch.set_num_threads); default: torch's. Small "
        "models on a busy CPU often train fastest with 1",
    )
    log_every_steps: PositiveInt = Field(10, description="steps between metric log lines")
    eval_every_epochs: PositiveInt = Field(1, description="epochs between evaluations")
    checkpoint_every_epochs: PositiveInt = Field(1, description="epochs between checkpoints")
    keep_checkpoints: PositiveInt = Field(2, description="most recent checkpoints kept on disk")
    best_metric: str | None = Field(
        None, description="eval metric that picks the best checkpoint (default: eval loss)"
    )
    best_mode: Literal["auto", "min", "max"] = Field(
        "auto",
        description="whether lower or higher best_metric is better; auto: min for "
        "loss/error-like names, else max",
    )
    progress: bool = Field(True, description="show a progress bar")
    tensorboard: bool = Field(True, description="also write TensorBoard event files")

    def component_refs(self) -> list[tuple[str, str, ComponentRef]]:
        """The components ``train`` names, as ``(kind, field path, ref)``."""
        refs = [
            ("optimizer", "train.optimizer", self.optimizer),
            ("scheduler", "train.scheduler", self.scheduler),
        ]
        refs += [("callback", f"train.callbacks.{i}", r) for i, r in enumerate(self.callbacks)]
        refs += [("logger", f"train.loggers.{i}", r) for i, r in enumerate(self.loggers)]
        return refs

    @field_validator("optimizer", "scheduler", mode="before")
    @classmethod
    def _default_name(cls, value: Any, info: Any) -> Any:  # noqa: ANN401
        """``train.optimizer.params.momentum=0.8`` alone keeps the default's name."""
        if isinstance(value, dict) and "name" not in value:
            default = DEFAULT_OPTIMIZER if info.field_name == "optimizer" else DEFAULT_SCHEDULER
            return {"name": default, **value}
        return value

    @field_validator("param_groups", mode="before")
    @classmethod
    def _nested_groups(cls, value: Any) -> Any:  # noqa: ANN401
        return _flatten_groups(value)
