"""Training settings (the ``train:`` section of a spec)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, NonNegativeInt, PositiveInt

Precision = Literal["fp32", "bf16", "fp16"]


class TrainConfig(BaseModel):
    """How the engine trains: optimisation, precision, device, logging and checkpoint cadence."""

    model_config = ConfigDict(extra="forbid")

    epochs: PositiveInt = Field(10, description="passes over the training split")
    max_steps: PositiveInt | None = Field(
        None, description="stop after this many optimizer steps (overrides epochs when reached)"
    )
    lr: float = Field(1e-3, gt=0, description="peak AdamW learning rate")
    weight_decay: NonNegativeFloat = Field(0.05, description="AdamW decay (not on biases/norms)")
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0)
    warmup_steps: NonNegativeInt = Field(0, description="linear warm-up steps before cosine decay")
    min_lr_ratio: float = Field(0.0, ge=0, le=1, description="final lr as a fraction of lr")
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
