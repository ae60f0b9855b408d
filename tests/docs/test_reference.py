"""The mkdocs hook (docs/hooks/reference.py) documents every registered component and spec field."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from typing import Annotated, Literal

import pytest
import yaml
from annotated_types import Gt
from torch import Tensor, nn

from modalforge.contracts import Head, Target
from modalforge.engine.config import TrainConfig
from modalforge.registry import Registrar, Registry
from modalforge.spec.params import describe_params
from modalforge.spec.schema import ComponentRef, DataSpec, ModelSpec, PipelineSpec

ROOT = Path(__file__).parents[2]
DOCS = ROOT / "docs"


def _load_hook():
    spec = importlib.util.spec_from_file_location(
        "modalforge_docs_hook", DOCS / "hooks" / "reference.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


hook = _load_hook()


@pytest.fixture(scope="module")
def host():
    return hook.builtin_host()


def kind_sections(markdown: str) -> dict[str, dict[str, str]]:
    """``{kind title: {component name: its markdown}}`` from the generated page."""
    out: dict[str, dict[str, str]] = {}
    for kind_block in re.split(r"^## ", markdown, flags=re.M)[1:]:
        title, _, body = kind_block.partition("\n")
        comps = {}
        for comp in re.split(r"^### ", body, flags=re.M)[1:]:
            heading, _, text = comp.partition("\n")
            comps[heading.strip("`")] = text
        out[title] = comps
    return out


def test_builtin_plugins_all_load(host):
    assert host.records, "no built-in plugins found"
    assert not host.failures, [f.error for f in host.failures]
    assert all(r.distribution == "modalforge" for r in host.records)


def test_every_registered_component_is_listed_with_its_parameters(host):
    sections = kind_sections(hook.components_markdown(host.registry, host))
    listed = 0
    for info in host.registry:
        text = sections[hook.KIND_TITLES[info.kind]][info.name]
        assert f"{info.kind} from plugin `{info.provider}`" in text
        for name, type_name, default in describe_params(info):
            row = f"| `{name}` | `{hook._cell(type_name)}` | `{hook._cell(default)}` |"
            assert row in text, f"{info.kind} {info.name}: missing row {row}"
        for name in info.injected:
            assert f"`{name}`" in text.split("Set by the pipeline")[1]
        listed += 1
    assert listed == len(host.registry) > 0
    assert sum(len(c) for c in sections.values()) == len(host.registry)  # nothing extra


class DemoHead(Head):
    """Scores things. See :class:`modalforge.contracts.Head`; writes runs/<name>.

    Second paragraph, not shown.
    """

    def __init__(
        self,
        in_dim: int,
        target: Target,
        width: int,
        act: Literal["relu", "gelu"] = "relu",
        hidden: list[int] | None = None,
    ) -> None:
        super().__init__(in_dim)
        self.linear = nn.Linear(in_dim, target.num_outputs)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x)


def test_component_section_format():
    registry = Registry()
    Registrar(registry, "demo_plugin").head("demo", DemoHead, tags=("toy",))
    text = hook.component_markdown(registry.get("head", "demo"))
    assert text.splitlines()[:5] == [
        "### `demo`",
        "",
        "*head from plugin `demo_plugin`; outputs `logits`; tags: toy*",
        "",
        "Scores things. See `modalforge.contracts.Head`; writes runs/&lt;name>.",
    ]
    assert "| `width` | `int` | `required` |" in text
    assert "| `act` | `Literal['relu', 'gelu']` | `'relu'` |" in text
    assert "| `hidden` | `list[int] \\| None` | `None` |" in text
    assert "Set by the pipeline, not in specs: `in_dim`, `target`." in text
    assert "Second paragraph" not in text
    assert "| `in_dim` |" not in text  # injected, so not a spec parameter


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        (int, ("int", [])),
        (Annotated[int, Gt(0)] | None, ("int | None", ["> 0"])),
        (Literal["fp32", "bf16"], ("'fp32' | 'bf16'", [])),
        (dict[str, ComponentRef], ("dict[str, ComponentRef]", [])),
        (tuple[float, float], ("tuple[float, float]", [])),
    ],
)
def test_type_text(annotation, expected):
    assert hook.type_text(annotation) == expected


def test_spec_reference_lists_every_field_with_its_description():
    text = hook.spec_markdown()
    for model in (PipelineSpec, DataSpec, ModelSpec, ComponentRef, TrainConfig):
        for name, field in model.model_fields.items():
            rows = [line for line in text.splitlines() if line.startswith(f"| `{name}` |")]
            assert rows, f"{model.__name__}.{name} is not documented"
            if field.description:
                assert any(hook._cell(field.description) in row for row in rows)
    train = hook.train_config_markdown()
    assert "| `precision` | 'fp32' \\| 'bf16' \\| 'fp16' | `'fp32'` |" in train
    assert "| `epochs` | int (> 0) | `10` | passes over the training split |" in train


def test_cli_reference_covers_every_command():
    text = hook.cli_markdown()
    for command in ("plugins", "components", "check", "train", "eval", "demo", "new-plugin"):
        assert f"### `modalforge {command}`" in text
        assert f"usage: modalforge {command}" in text


def test_every_marker_in_the_docs_is_filled(host):
    pages = sorted(DOCS.rglob("*.md"))
    assert pages
    for page in pages:
        rendered = hook.render(page.read_text(), host_factory=lambda: host)
        assert "<!-- modalforge:" not in rendered, page


def test_tutorial_shows_every_generated_source_file():
    files = hook.scaffold_files()
    tutorial = (DOCS / "tutorials" / "first-plugin.md").read_text()
    shown = set(re.findall(r"<!-- modalforge:scaffold (\S+) -->", tutorial))
    assert shown == {p for p in files if p.endswith((".py", ".toml"))}
    rendered = hook.render(tutorial)
    assert files["acme_vitals/encoder.py"].rstrip() in rendered
    with pytest.raises(KeyError, match="not a scaffold file"):
        hook.render("<!-- modalforge:scaffold nope.py -->")


def test_every_page_is_in_the_nav():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())

    def paths(nav):
        for item in nav:
            value = next(iter(item.values())) if isinstance(item, dict) else item
            yield from paths(value) if isinstance(value, list) else [value]

    assert set(paths(config["nav"])) == {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert config["hooks"] == ["docs/hooks/reference.py"]
