"""The pipeline spec: a YAML document validated against these pydantic models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveInt,
    field_validator,
    model_validator,
)

from modalforge.engine.config import TrainConfig
from modalforge.spec.data import SplitSpec, TransformsSpec
from modalforge.spec.ref import ComponentRef


class DataSpec(BaseModel):
    """Which data set to read and how to batch it."""

    model_config = ConfigDict(extra="forbid")

    dataset: ComponentRef = Field(description="registered dataset reader")
    train_split: str = Field("train", description="split to train on")
    eval_split: str | None = Field("test", description="split to evaluate on; null: none")
    batch_size: PositiveInt = Field(64, description="samples per training micro-batch, per process")
    eval_batch_size: PositiveInt | None = Field(None, description="default: batch_size")
    num_workers: NonNegativeInt | Literal["auto"] = Field(
        "auto",
        description="DataLoader worker processes; auto: none on the CPU (the cores train), on an "
        "accelerator up to 4 per process, one core left for the process itself",
    )
    drop_last: bool = Field(False, description="drop the last incomplete training batch")
    split: SplitSpec | None = Field(
        None, description="divide a split of the data set into parts (grouped, stratified, k-fold)"
    )
    transforms: TransformsSpec = Field(
        default_factory=TransformsSpec,
        description="per-modality preprocessing (pre, eval) and augmentation (train) steps",
    )
    cache: Literal["none", "memory", "disk"] = Field(
        "none",
        description="keep each sample as it leaves the reader and the deterministic steps before "
        "the first random one (data.transforms.pre): in memory, or as files in cache_dir",
    )
    cache_dir: str | None = Field(None, description="with cache: disk, the folder of the files")

    @model_validator(mode="after")
    def _cache(self) -> DataSpec:
        if self.cache == "disk" and not self.cache_dir:
            raise ValueError("`cache: disk` needs `cache_dir`, the folder for the cached samples")
        if self.cache != "disk" and self.cache_dir:
            raise ValueError(f"`cache_dir` applies to `cache: disk` only (cache is {self.cache!r})")
        return self


class ModelSpec(BaseModel):
    """What to build: a supervised model (encoders → fusion → head), a contrastive model
    (encoders → shared embedding space, as CLIP) or a generator."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["supervised", "contrastive", "generator"] | None = Field(
        None, description="inferred: generator if `generator` is set, else supervised"
    )
    embed_dim: PositiveInt | None = Field(
        None, description="contrastive only: shared embedding size (default: the encoders' size)"
    )
    encoders: dict[str, ComponentRef] = Field(
        default_factory=dict,
        description="one encoder per modality, keyed by modality name; with a generator, the "
        "encoders of its condition (e.g. a text encoder for prompts)",
    )
    fusion: ComponentRef | None = Field(None, description="combines encoders; needed with 2+")
    head: ComponentRef | None = Field(None, description="maps the representation to outputs")
    generator: ComponentRef | None = Field(
        None, description="a generator instead of encoders/fusion/head"
    )
    modality_dropout: dict[str, float] = Field(
        default_factory=dict,
        description="supervised only: per-modality probability in [0, 1) of dropping it (mask "
        "False) for a training sample; one modality per sample is always kept",
    )

    @model_validator(mode="after")
    def _shape(self) -> ModelSpec:
        if self.type is None:
            self.type = "generator" if self.generator is not None else "supervised"
        if self.type != "contrastive" and self.embed_dim is not None:
            raise ValueError("`embed_dim` applies to `type: contrastive` only")
        if self.type != "supervised" and self.modality_dropout:
            raise ValueError("`modality_dropout` applies to `type: supervised` only")
        if self.type == "generator":
            if self.generator is None:
                raise ValueError("`type: generator` needs a `generator`")
            if self.fusion or self.head:
                raise ValueError(
                    "a generator takes no `fusion`/`head`; its condition encoders go in `encoders`"
                )
            return self
        if self.generator is not None:
            raise ValueError(f"`type: {self.type}` takes no `generator`")
        if not self.encoders:
            raise ValueError("needs `encoders` (one per modality) or a `generator`")
        if self.type == "contrastive":
            if self.fusion is not None or self.head is not None:
                raise ValueError("`type: contrastive` embeds each modality; remove fusion/head")
            if len(self.encoders) < 2:
                raise ValueError("`type: contrastive` needs encoders for two or more modalities")
            return self
        if self.head is None:
            raise ValueError("needs a `head` (e.g. `head: classification`), or `type: contrastive`")
        return self


class PipelineSpec(BaseModel):
    """A whole pipeline: data, model, objective, metrics and training settings."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$", description="run name; used for output dirs")
    domain: ComponentRef | None = Field(
        None, description="a domain adapter whose defaults this spec starts from (yours win)"
    )
    preset: list[str] = Field(
        default_factory=list,
        description="presets (from plugins) whose defaults this spec starts from, in order",
    )
    seed: NonNegativeInt = Field(0, description="seeds python, numpy and torch")
    data: DataSpec = Field(description="what to read and how to batch it")
    model: ModelSpec = Field(description="the components and how they connect")
    loss: ComponentRef | None = Field(None, description="training objective (not for generators)")
    metrics: list[ComponentRef] = Field(
        default_factory=list, description="evaluation metrics, computed on eval_split"
    )
    train: TrainConfig = Field(default_factory=TrainConfig, description="engine settings")
    output_dir: str | None = Field(None, description="default: runs/<name>")

    @field_validator("preset", mode="before")
    @classmethod
    def _one_preset(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _loss_needed(self) -> PipelineSpec:
        if self.model.type != "generator" and self.loss is None:
            raise ValueError("needs a `loss`, e.g. `loss: cross_entropy`")
        return self

    def component_refs(self) -> list[tuple[str, str, ComponentRef]]:
        """Every component the spec names, as ``(kind, field path, ref)``."""
        refs: list[tuple[str, str, ComponentRef]] = [("dataset", "data.dataset", self.data.dataset)]
        if self.domain is not None:
            refs.append(("adapter", "domain", self.domain))
        refs += [("transform", path, ref) for path, ref in self.data.transforms.refs()]
        for mod, ref in self.model.encoders.items():
            refs.append(("encoder", f"model.encoders.{mod}", ref))
        if self.model.fusion is not None:
            refs.append(("fusion", "model.fusion", self.model.fusion))
        if self.model.head is not None:
            refs.append(("head", "model.head", self.model.head))
        if self.model.generator is not None:
            refs.append(("generator", "model.generator", self.model.generator))
        if self.loss is not None:
            refs.append(("loss", "loss", self.loss))
        for i, ref in enumerate(self.metrics):
            refs.append(("metric", f"metrics.{i}", ref))
        refs += self.train.component_refs()
        return refs
