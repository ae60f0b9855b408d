"""mkdocs hook: fill the reference pages from the live registry, spec models and CLI parser.

Pages contain markers that this hook replaces on every build, so the reference cannot drift from
the code:

- ``<!-- modalforge:components -->``: every component of the built-in plugins, by kind;
- ``<!-- modalforge:spec-fields -->``: the fields of every section of a pipeline spec;
- ``<!-- modalforge:cli -->``: the ``--help`` of ``modalforge`` and each of its commands;
- ``<!-- modalforge:scaffold PATH -->``: file PATH of the project that
  ``modalforge new-plugin acme_vitals`` creates, so the tutorial shows exactly what it writes.

Only plugins shipped in the ``modalforge`` distribution are documented, whatever else is installed,
so the site is the same on every machine. A built-in plugin that fails to load fails the build.
"""

from __future__ import annotations

import argparse
import inspect
import logging
import os
import re
import types
import typing
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from typing import Any

import pydantic

from modalforge.contracts import KINDS
from modalforge.plugin import PluginHost, load_plugins
from modalforge.plugin.manager import discover
from modalforge.registry import ComponentInfo, Registry
from modalforge.spec.params import describe_params

log = logging.getLogger("mkdocs.plugins.modalforge_reference")

DISTRIBUTION = "modalforge"
COMPONENTS_MARKER = "<!-- modalforge:components -->"
SPEC_MARKER = "<!-- modalforge:spec-fields -->"
CLI_MARKER = "<!-- modalforge:cli -->"
SCAFFOLD_MARKER = re.compile(r"<!-- modalforge:scaffold (\S+) -->")
SCAFFOLD_NAME = "acme_vitals"

KIND_TITLES = {
    "dataset": "Datasets",
    "loader": "Column loaders",
    "transform": "Transforms",
    "encoder": "Encoders",
    "fusion": "Fusions",
    "head": "Heads",
    "loss": "Losses",
    "generator": "Generators",
    "reranker": "Rerankers",
    "adapter": "Domain adapters",
    "metric": "Metrics",
    "optimizer": "Optimizers",
    "scheduler": "Learning-rate schedules",
    "callback": "Training callbacks",
    "logger": "Metric loggers",
}
KIND_INTROS = {
    "dataset": "Named in `data.dataset`. Each provides modalities (and a target) by name.",
    "loader": "Named in a `manifest` data set's `modalities.<name>.loader`: each reads one "
    "modality from one or more manifest columns.",
    "transform": "Named in `data.transforms.train.<modality>` (augmentation, training only) and "
    "`data.transforms.eval.<modality>` (preprocessing every sample gets). Sized from the modality.",
    "encoder": "Named in `model.encoders.<modality>`. Sized from the modality they are bound to.",
    "fusion": "Named in `model.fusion`. Sized from the encoders' declared outputs.",
    "head": "Named in `model.head`. Sized from the fusion (or single encoder) and the target.",
    "loss": "Named in `loss`.",
    "generator": "Named in `model.generator`, instead of fusion and head; `model.encoders` are "
    "then its condition encoders (e.g. a text encoder for prompts).",
    "reranker": "Named by `modalforge generate --reranker` (default `clip`): scores a generator's "
    "candidates against their prompts and keeps the best.",
    "adapter": "Domain adapters bundle a domain's readers, modalities and recommended components.",
    "metric": "Named in the `metrics` list.",
    "optimizer": "Named in `train.optimizer` (default `adamw`). `train.lr`, `train.weight_decay` "
    "and `train.param_groups` apply to every optimizer.",
    "scheduler": "Named in `train.scheduler` (default `warmup_cosine`): a multiplier of every "
    "parameter group's rate per optimizer step; `train.warmup_steps` applies to all.",
    "callback": "Named in the `train.callbacks` list; called through the run hooks on every "
    "process.",
    "logger": "Named in the `train.loggers` list; they receive every `metrics.jsonl` record, on "
    "process 0.",
}


# --------------------------------------------------------------------------- plugins and components


def builtin_host() -> PluginHost:
    """Load the plugins of the ``modalforge`` distribution only (ignores MODALFORGE_PLUGINS)."""
    eps = [ep for ep in discover() if ep.dist is not None and ep.dist.name == DISTRIBUTION]
    return load_plugins(eps, allowed={ep.name for ep in eps}, warn=False)


def _escape(text: str) -> str:
    """Escape ``<`` outside code spans, so ``runs/<name>`` is not read as an HTML tag."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("<", "&lt;")
    return "`".join(parts)


def _cell(text: str) -> str:
    return _escape(text).replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    return f"`{text}`" if text else ""


def _first_paragraph(doc: str | None) -> str:
    """The first paragraph of a docstring, on one line, with reST roles (``:class:``) removed."""
    paragraph = (doc or "").strip().split("\n\n")[0]
    return re.sub(r":\w+:`~?([^`]+)`", r"`\1`", " ".join(paragraph.split()))


def component_markdown(info: ComponentInfo) -> str:
    """One component: heading, provider, summary, parameters and what the pipeline injects."""
    lines = [f"### `{info.name}`", ""]
    meta = [f"{info.kind} from plugin `{info.provider}`"]
    accepts = getattr(info.factory, "accepts", ())
    if accepts:
        meta.append("reads " + ", ".join(f"`{k}`" for k in accepts))
    output_key = getattr(info.factory, "output_key", None)
    if info.kind == "head" and isinstance(output_key, str):
        meta.append(f"outputs `{output_key}`")
    if info.tags:
        meta.append("tags: " + ", ".join(info.tags))
    lines += [f"*{'; '.join(meta)}*", ""]
    description = info.description or _first_paragraph(inspect.getdoc(info.factory))
    if description:
        lines += [_escape(description), ""]
    rows = describe_params(info)
    if rows:
        lines += ["| parameter | type | default |", "|---|---|---|"]
        lines += [f"| `{n}` | {_code(_cell(t))} | {_code(_cell(d))} |" for n, t, d in rows]
    else:
        lines.append("No parameters.")
    lines.append("")
    if info.injected:
        injected = ", ".join(f"`{n}`" for n in info.injected)
        lines += [f"Set by the pipeline, not in specs: {injected}.", ""]
    return "\n".join(lines)


def components_markdown(registry: Registry, host: PluginHost | None = None) -> str:
    """All components of ``registry``, one section per kind in spec order."""
    out: list[str] = []
    if host is not None:
        out += ["| plugin | version | components |", "|---|---|---|"]
        for r in host.records:
            comps = ", ".join(f"{k} `{n}`" for k, n in r.components) or "none"
            out.append(f"| `{r.name}` | {r.version or '-'} | {comps} |")
        out.append("")
    for kind in KINDS:
        names = registry.names(kind)
        if not names:
            continue
        out += [f"## {KIND_TITLES.get(kind, kind)}", "", KIND_INTROS.get(kind, ""), ""]
        out += [component_markdown(registry.get(kind, name)) for name in names]
    return "\n".join(out).rstrip() + "\n"


# --------------------------------------------------------------------------------- spec fields


_BOUNDS = (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤"))


def _constraints(metadata: Iterable[Any]) -> list[str]:
    parts = []
    for meta in metadata:
        for attr, sym in _BOUNDS:
            value = getattr(meta, attr, None)
            if value is not None:
                parts.append(f"{sym} {value}")
        pattern = getattr(meta, "pattern", None)
        if pattern:
            parts.append(f"matches `{pattern}`")
    return parts


def type_text(annotation: Any) -> tuple[str, list[str]]:
    """A readable type (``int | None``, ``'fp32' | 'bf16'``) and its constraints (``> 0``)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is type(None) or annotation is None:
        return "None", []
    if annotation is Any:
        return "any", []
    if origin is typing.Annotated:
        inner, constraints = type_text(args[0])
        return inner, constraints + _constraints(args[1:])
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args), []
    if origin in (typing.Union, types.UnionType):
        parts = [type_text(a) for a in args]
        return " | ".join(p[0] for p in parts), [c for p in parts for c in p[1]]
    if origin is not None:
        parts = [type_text(a) for a in args]
        name = getattr(origin, "__name__", str(origin))
        inner = ", ".join(p[0] for p in parts)
        return f"{name}[{inner}]", [c for p in parts for c in p[1]]
    return getattr(annotation, "__name__", str(annotation)), []


def _default(field: Any) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        try:
            value = field.default_factory()
        except TypeError:
            return "(computed)"
        if isinstance(value, pydantic.BaseModel):
            name = getattr(value, "name", None)  # a ComponentRef: its component
            return f"`{name}`" if isinstance(name, str) else "(all defaults)"
        return f"`{value!r}`"
    return f"`{field.default!r}`"


def model_fields_markdown(model: type, title: str) -> str:
    """A table of a pydantic model's fields: name, type, default and description."""
    lines = [f"### {title}", "", _escape(_first_paragraph(inspect.getdoc(model))), ""]
    lines += ["| field | type | default | description |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        type_name, constraints = type_text(field.annotation)
        constraints += _constraints(field.metadata)
        if constraints:
            type_name += f" ({', '.join(constraints)})"
        cells = [f"`{name}`", type_name, _default(field), field.description or ""]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def spec_markdown() -> str:
    """Field tables for every section of a pipeline spec, top-level first."""
    from modalforge.engine.config import ParamGroup, TrainConfig
    from modalforge.spec.schema import ComponentRef, DataSpec, ModelSpec, PipelineSpec

    sections = [
        (PipelineSpec, "Top level"),
        (DataSpec, "`data`"),
        (ModelSpec, "`model`"),
        (ComponentRef, "Component references"),
        (TrainConfig, "`train`"),
        (ParamGroup, "`train.param_groups.<prefix>`"),
    ]
    return "\n".join(model_fields_markdown(model, title) for model, title in sections)


def train_config_markdown() -> str:
    """The ``train:`` section's fields (TrainConfig), with descriptions."""
    from modalforge.engine.config import TrainConfig

    return model_fields_markdown(TrainConfig, "`train`")


# ------------------------------------------------------------------------------------------ CLI


@contextmanager
def _columns(width: int) -> Iterable[None]:
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(width)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old


def cli_markdown() -> str:
    """``modalforge --help`` and each command's ``--help``, as rendered by the real parser."""
    from modalforge_apps.cli.main import build_parser

    parser = build_parser()
    out: list[str] = []
    with _columns(100):
        out += ["### `modalforge`", "", "```text", parser.format_help().rstrip(), "```", ""]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    out += [f"### `modalforge {name}`", "", "```text"]
                    out += [sub.format_help().rstrip(), "```", ""]
    return "\n".join(out)


# ------------------------------------------------------------------------------------- scaffold


def scaffold_files(name: str = SCAFFOLD_NAME) -> dict[str, str]:
    """The files ``modalforge new-plugin <name>`` writes, by relative path, rendered in memory."""
    from modalforge_apps.scaffold.render import RENAMES, SUFFIX, render, template_context
    from modalforge_apps.scaffold.render import template_files as raw_files

    context = template_context(name)
    files = {}
    for rel, text in raw_files():
        path = render(rel[: -len(SUFFIX)], context)
        files[RENAMES.get(path, path)] = render(text, context)
    return files


def _fenced(path: str, text: str) -> str:
    lang = {".py": "python", ".toml": "toml", ".md": "markdown"}.get(os.path.splitext(path)[1], "")
    fence = "````" if "```" in text else "```"
    return f"{fence}{lang}\n{text.rstrip()}\n{fence}"


# ---------------------------------------------------------------------------------- mkdocs hook


def render(markdown: str, host_factory: Callable[[], PluginHost] = builtin_host) -> str:
    """Replace every marker in ``markdown`` by its generated content."""
    if COMPONENTS_MARKER in markdown:
        host = host_factory()
        for failure in host.failures:
            log.warning("plugin %s failed to load: %s", failure.name, failure.error)
        markdown = markdown.replace(COMPONENTS_MARKER, components_markdown(host.registry, host))
    if SPEC_MARKER in markdown:
        markdown = markdown.replace(SPEC_MARKER, spec_markdown())
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, cli_markdown())
    if SCAFFOLD_MARKER.search(markdown):
        files = scaffold_files()

        def scaffold(match: re.Match[str]) -> str:
            path = match.group(1)
            if path not in files:
                raise KeyError(f"{path} is not a scaffold file: {', '.join(sorted(files))}")
            return _fenced(path, files[path])

        markdown = SCAFFOLD_MARKER.sub(scaffold, markdown)
    return markdown


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """mkdocs event: fill the markers of the page being rendered."""
    return render(markdown)
