"""The generation benchmark's YAML file: which stages to train, which generators to judge.

```yaml
name: digits-generators
judge: digits                  # digits | shapes (or {name: shapes, params: {image_size: 32}})
samples_per_prompt: 50         # plain samples per prompt, judged
best_of: 8                     # reranked samples: the best of this many candidates each
seed: 0
stages:                        # trained in order into OUT/runs/<key>; finished ones are reused
  clip_rerank: {spec: recipe:digits_clip.yaml}
  clip_eval: {spec: recipe:digits_clip.yaml, overrides: [seed=1]}
  vqvae: {spec: recipe:digits_vqvae.yaml}
  dalle:
    spec: recipe:digits_dalle.yaml
    overrides: ["model.generator.params.tokenizer_checkpoint={runs}/vqvae"]
generators: [dalle]            # stages whose models are judged
rerank: clip_rerank            # stage of the CLIP that reranks
eval_clip: clip_eval           # stage of the CLIP that scores (CLIP score, R-precision)
```

``recipe:NAME`` names a built-in recipe; other spec paths are relative to the benchmark file.
``{runs}`` in an override is the benchmark's ``OUT/runs`` folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError, model_validator

from modalforge.errors import SpecError
from modalforge.spec.loader import read_yaml
from modalforge_apps import recipes


class Stage(BaseModel):
    """One training run: a spec, with overrides."""

    model_config = ConfigDict(extra="forbid")

    spec: str = Field(description="spec path, or recipe:NAME for a built-in recipe")
    overrides: list[str] = Field(default_factory=list, description="a.b.c=value overrides")


class JudgeRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Literal["digits", "shapes"]
    params: dict[str, Any] = Field(default_factory=dict)


class GenBenchConfig(BaseModel):
    """A generation benchmark (see the module docstring for the file format)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    judge: JudgeRef
    samples_per_prompt: PositiveInt = 50
    best_of: PositiveInt = 8
    seed: int = 0
    stages: dict[str, Stage]
    generators: list[str] = Field(min_length=1)
    rerank: str | None = None
    eval_clip: str | None = None
    grid_columns: PositiveInt = Field(8, description="samples shown per prompt in the grids")

    @model_validator(mode="before")
    @classmethod
    def _judge_shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("judge"), str):
            data = {**data, "judge": {"name": data["judge"]}}
        return data

    @model_validator(mode="after")
    def _stages_exist(self) -> GenBenchConfig:
        for field, names in (
            ("generators", self.generators),
            ("rerank", [self.rerank] if self.rerank else []),
            ("eval_clip", [self.eval_clip] if self.eval_clip else []),
        ):
            for name in names:
                if name not in self.stages:
                    raise ValueError(
                        f"{field}: {name!r} is not a stage (stages: {', '.join(self.stages)})"
                    )
        return self


def load_config(path: str | Path) -> GenBenchConfig:
    """Read and validate a benchmark file; errors name the field."""
    path = Path(path)
    raw = read_yaml(path)
    try:
        return GenBenchConfig.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise SpecError(
            field, f"{path}: {err['msg']}", hint="see `modalforge genbench --help`"
        ) from None


def resolve_spec(spec: str, base_dir: Path) -> Path:
    """A stage's spec file: ``recipe:NAME`` from the built-in recipes, else relative to
    ``base_dir``."""
    if spec.startswith(recipes.PREFIX):
        try:
            return recipes.recipe_path(spec.removeprefix(recipes.PREFIX))
        except LookupError as exc:
            raise SpecError("stages", str(exc), hint="check the name") from None
    path = Path(spec) if Path(spec).is_absolute() else base_dir / spec
    if not path.is_file():
        raise SpecError("stages", f"spec {spec!r} not found in {base_dir}", hint="check the name")
    return path
