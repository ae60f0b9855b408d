"""Benchmark grids: a base spec, axes of overrides and seeds, expanded into runnable cells.

A grid file looks like::

    name: fusion-sweep            # optional, default: the grid file's stem
    base_spec: ../specs/x.yaml    # or `base: {...}` — an inline pipeline spec
    axes:                         # dotted spec path -> values; cells = cartesian product
      model.fusion: [concat, gmu]
      train.lr: [1.0e-3, 3.0e-3]
    extra_cells:                  # optional: more cells, each a mapping of overrides
      - {model.encoders: {image: cnn}, model.fusion: concat}   # e.g. a unimodal baseline
    seeds: [0, 1, 2]              # default [0, 1, 2]; every cell runs once per seed
    folds: 5                      # optional: k-fold cross-validation, every seed once per fold
    rollout:                      # optional: closed-loop metrics of robotics policies
      env: tabletop_reach         # after training, each run's policy runs `episodes` seeded
      episodes: 20                # episodes (the same for every run): rollout_success (and
                                  # its Wilson interval), rollout_return, rollout_length

An axis value ``null`` on a mapping entry removes that entry (e.g. ``model.encoders.tabular:
[null]`` gives a unimodal baseline). A cell is one combination of axis values; a run is a cell
with one seed (and, with ``folds: K``, one fold: ``data.split.folds=K``, ``data.split.fold=i``,
so the leaderboard's mean ± std is over seeds × folds).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from modalforge.errors import ModalforgeError, SpecError
from modalforge.spec import PipelineSpec, apply_overrides, parse_spec, validate_components
from modalforge.spec.loader import read_yaml

_REMOVE = object()


class GridError(ModalforgeError):
    """A benchmark grid is malformed, names unknown components, or clashes with an output folder."""


class RolloutConfig(BaseModel):
    """A grid's closed-loop evaluation: every trained run is rolled out in ``env``."""

    model_config = ConfigDict(extra="forbid")

    env: str = Field(description="environment (as `modalforge rollout --env`)")
    episodes: int = Field(20, ge=1, description="seeded episodes per run")
    num_envs: int = Field(1, ge=1, description="environments stepped in parallel")
    seed: int = Field(1000, ge=0, description="episode i is reset with seed + i")
    env_params: dict[str, Any] = Field(default_factory=dict, description="environment params")
    execution: Literal["ensemble", "receding", "chunk"] = "ensemble"
    success_at: Literal["any", "final"] | None = None


class Grid(BaseModel):
    """The YAML grid format (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, description="grid name; default: the grid file's stem")
    base: dict[str, Any] | None = Field(None, description="inline base pipeline spec")
    base_spec: str | None = Field(None, description="path to the base spec (relative to the grid)")
    axes: dict[str, list[Any]] = Field(
        default_factory=dict, description="dotted spec path -> list of values"
    )
    extra_cells: list[dict[str, Any]] = Field(
        default_factory=list, description="more cells after the product: override mappings"
    )
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    folds: int | None = Field(
        None, ge=2, description="k-fold cross-validation: every cell × seed runs once per fold"
    )
    rank_by: str | None = Field(None, description="metric that sorts the leaderboard")
    rollout: RolloutConfig | None = Field(
        None, description="closed-loop evaluation of each trained policy (robotics)"
    )

    @field_validator("axes")
    @classmethod
    def _axes(cls, axes: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in axes.items():
            if not key or any(not part for part in key.split(".")) or "=" in key:
                raise ValueError(f"axis {key!r} must be a dotted spec path like `model.fusion`")
            if not values:
                raise ValueError(f"axis {key!r} needs at least one value")
            if key == "seed":
                raise ValueError("use the top-level `seeds:` list, not a `seed` axis")
            if key in ("data.split.fold", "data.split.folds"):
                raise ValueError("use the top-level `folds: K`, not a fold axis")
        return axes

    @field_validator("extra_cells")
    @classmethod
    def _extra(cls, cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for i, cell in enumerate(cells):
            cls._axes({k: [v] for k, v in cell.items()})
            if not cell:
                raise ValueError(f"extra cell {i} sets nothing")
        return cells

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct, got {seeds}")
        if any(s < 0 for s in seeds):
            raise ValueError("seeds must be non-negative")
        return seeds

    @model_validator(mode="after")
    def _one_base(self) -> Grid:
        if (self.base is None) == (self.base_spec is None):
            raise ValueError("give exactly one of `base` (inline spec) or `base_spec` (a path)")
        return self


@dataclass(frozen=True)
class Cell:
    """One combination of axis values. ``cell_id`` is a short stable hash of the overrides."""

    cell_id: str
    label: str
    overrides: dict[str, Any]

    def run_id(self, seed: int, fold: int | None = None) -> str:
        """The id of this cell's run with ``seed`` (and ``fold``): its folder under ``runs/``."""
        return f"{self.cell_id}-s{seed}" + (f"-f{fold}" if fold is not None else "")


@dataclass(frozen=True)
class LoadedGrid:
    """A parsed grid with its base spec resolved to a dict."""

    name: str
    grid: Grid
    base: dict[str, Any]
    cells: list[Cell]

    @property
    def seeds(self) -> list[int]:
        return list(self.grid.seeds)

    @property
    def replicates(self) -> list[tuple[int, int | None]]:
        """The ``(seed, fold)`` runs of every cell (fold ``None`` without cross-validation)."""
        folds = range(self.grid.folds) if self.grid.folds else [None]
        return [(s, f) for s in self.grid.seeds for f in folds]

    def run_ids(self) -> set[str]:
        return {c.run_id(s, f) for c in self.cells for s, f in self.replicates}

    def digest(self) -> str:
        """Hash of everything that determines the runs: base spec, axes, seeds and folds."""
        g = self.grid
        what = {"base": self.base, "axes": g.axes, "extra": g.extra_cells, "seeds": g.seeds}
        if g.folds:
            what["folds"] = g.folds
        if g.rollout is not None:
            what["rollout"] = g.rollout.model_dump()
        return _hash(what, 16)

    def cell_dict(self, cell: Cell, seed: int, fold: int | None = None) -> dict[str, Any]:
        """The spec dict of ``cell`` run with ``seed`` and ``fold`` (progress bars off)."""
        data = cell_spec_dict(self.base, cell.overrides, seed)
        if fold is not None:
            data = apply_overrides(
                data, [f"data.split.folds={self.grid.folds}", f"data.split.fold={fold}"]
            )
        return data


def _hash(obj: Any, n: int) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:n]


def _short(value: Any) -> str:
    """A cell label's value: a component's name, ``key:value`` pairs of other mappings (``{}``:
    ``none``), the items of a list joined by ``+``."""
    if isinstance(value, dict):
        if "name" in value:
            return str(value["name"])
        return " ".join(f"{k}:{_short(v)}" for k, v in value.items()) or "none"
    if isinstance(value, list):
        return "+".join(_short(v) for v in value) or "none"
    return "none" if value is None else str(value)


def expand_cells(
    axes: dict[str, list[Any]], extra: list[dict[str, Any]] | None = None
) -> list[Cell]:
    """The cartesian product of the axes in axis order, then the ``extra`` cells; ids depend
    only on the overrides. Duplicates are dropped."""
    keys = list(axes)
    combos = [dict(zip(keys, c, strict=True)) for c in itertools.product(*axes.values())]
    cells: list[Cell] = []
    for overrides in [*combos, *(extra or [])]:
        if any(c.overrides == overrides for c in cells):
            continue
        label = ", ".join(f"{k.split('.')[-1]}={_short(v)}" for k, v in overrides.items())
        cells.append(Cell(_hash(overrides, 10), label or "base", overrides))
    return cells


def cell_spec_dict(base: dict[str, Any], overrides: dict[str, Any], seed: int) -> dict[str, Any]:
    """``base`` with the overrides applied (JSON values through ``apply_overrides``)."""
    sets = [f"{k}={json.dumps(v)}" for k, v in overrides.items() if v is not None]
    data = apply_overrides(base, [*sets, f"seed={seed}", "train.progress=false"])
    for key, value in overrides.items():
        if value is None:
            _remove(data, key)
    return data


def _remove(data: dict[str, Any], key: str) -> None:
    *parents, last = key.split(".")
    node: Any = data
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return
    if isinstance(node, dict):
        node.pop(last, None)


def load_grid(path: str | Path) -> LoadedGrid:
    """Read and structurally validate a grid file; errors name the grid field."""
    path = Path(path)
    raw = read_yaml(path)
    try:
        grid = Grid.model_validate(raw)
    except pydantic.ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "(grid)"
            lines.append(f"{loc}: {err['msg'].removeprefix('Value error, ')}")
        raise GridError(
            f"{path}: invalid benchmark grid: " + "; ".join(lines),
            hint="a grid has `base` or `base_spec`, `axes: {dotted.path: [values]}`, `seeds`",
        ) from None
    if grid.base_spec is not None:
        base_path = Path(grid.base_spec)
        if not base_path.is_absolute():
            base_path = path.parent / base_path
        base = read_yaml(base_path)
    else:
        base = dict(grid.base or {})
    return LoadedGrid(grid.name or path.stem, grid, base, expand_cells(grid.axes, grid.extra_cells))


def check_cells(loaded: LoadedGrid, registry: Any) -> dict[str, PipelineSpec]:
    """Parse every cell's spec and validate its components; all problems raise one GridError."""
    specs: dict[str, PipelineSpec] = {}
    problems: list[str] = []
    for cell in loaded.cells:
        try:
            spec = parse_spec(loaded.cell_dict(cell, *loaded.replicates[0]))
            validate_components(spec, registry)
        except SpecError as exc:
            problems.append(f"cell {cell.cell_id} ({cell.label}): {exc}")
            continue
        specs[cell.cell_id] = spec
    if problems:
        raise GridError(
            f"{len(problems)} of {len(loaded.cells)} cells are invalid; nothing was run:\n  "
            + "\n  ".join(problems),
            hint="fix the base spec or the axis values named above",
        )
    return specs
