"""domain: / preset: defaults under a spec (the spec wins), and recipe:NAME from plugins."""

from __future__ import annotations

import types

import pytest
import yaml

from modalforge.contracts import DomainAdapter
from modalforge.engine import train
from modalforge.errors import SpecError, UnknownComponentError
from modalforge.pipeline import build_pipeline, load_trained
from modalforge.plugin import hookimpl, load_plugins, set_host
from modalforge.spec import load_spec, parse_spec
from modalforge.spec.presets import merge
from tests.core.toy import toy_registry, toy_spec


class Toys(DomainAdapter):
    """The toy domain: its defaults are a complete model and objective."""

    def __init__(self, dim: int = 4) -> None:
        self.dim = dim

    def describe(self) -> str:
        return "toy domain"

    def preset(self) -> dict:
        return {
            "model": {
                "encoders": {
                    "image": {"name": "flatten", "params": {"dim": self.dim}},
                    "ct": {"name": "flatten", "params": {"dim": 6}},
                    "state": "flatten",
                },
                "fusion": "concat",
                "head": "linear",
            },
            "loss": "ce",
            "train": {"epochs": 3, "lr": 0.5, "progress": False},
        }


@pytest.fixture
def host(tmp_path):
    recipe = tmp_path / "toy_recipe.yaml"
    recipe.write_text(yaml.safe_dump({**toy_spec(), "name": "from-recipe"}))
    plugin = types.ModuleType("toyplug")

    def components(registry):  # noqa: ANN001, ANN202
        for info in toy_registry():
            registry.add(info.kind, info.name, info.factory)
        registry.adapter("toys", Toys)

    def presets(presets):  # noqa: ANN001, ANN202
        presets.add("fast", {"train": {"epochs": 1, "max_steps": 2}, "metrics": ["accuracy"]})
        presets.add("slow", {"train": {"epochs": 9}})

    plugin.register_components = hookimpl(components)
    plugin.register_presets = hookimpl(presets)
    plugin.register_recipes = hookimpl(lambda recipes: recipes.add("toy_recipe.yaml", recipe))
    loaded = load_plugins([], extra=[("toyplug", plugin)], warn=False)
    assert loaded.records[0].ok, loaded.records[0].error
    set_host(loaded)
    yield loaded
    set_host(None)


def test_merge_rules():
    base = {"head": {"name": "mlp", "params": {"dropout": 0.1}}, "metrics": ["a", "b"], "x": 1}
    assert merge(base, {"head": "mlp"})["head"] == base["head"]  # same component: keeps params
    assert merge(base, {"head": {"name": "mlp", "params": {"width": 8}}})["head"] == {
        "name": "mlp",
        "params": {"dropout": 0.1, "width": 8},
    }
    assert merge(base, {"head": {"name": "linear"}})["head"] == {"name": "linear"}
    assert merge(base, {"head": "linear"})["head"] == "linear"
    assert merge(base, {"metrics": ["c"]})["metrics"] == ["c"]  # lists are replaced
    assert merge(base, {"x": None})["x"] is None
    assert base["head"]["params"] == {"dropout": 0.1}  # inputs are not modified


def test_domain_then_presets_then_the_spec(host):
    spec = parse_spec(
        {
            "name": "mine",
            "domain": {"name": "toys", "params": {"dim": 5}},
            "preset": ["slow", "fast"],  # later presets win over earlier ones
            "data": {"dataset": "toy"},
            "train": {"lr": 0.1},
        }
    )
    assert spec.model.encoders["image"].params == {"dim": 5}
    assert spec.loss.name == "ce" and [m.name for m in spec.metrics] == ["accuracy"]
    assert (spec.train.epochs, spec.train.max_steps, spec.train.lr) == (1, 2, 0.1)
    assert build_pipeline(spec).model.encoders["image"].proj.out_features == 5
    again = parse_spec(spec.model_dump(mode="json"))  # a written spec.yaml parses the same
    assert again == spec


def test_unknown_preset_and_domain_name_the_field(host):
    with pytest.raises(SpecError, match="preset: no preset named 'fsat'; did you mean 'fast'"):
        parse_spec({"name": "x", "preset": "fsat", "data": {"dataset": "toy"}})
    with pytest.raises(UnknownComponentError, match="domain: no adapter named 'toy'"):
        parse_spec({"name": "x", "domain": "toy", "data": {"dataset": "toy"}})
    with pytest.raises(SpecError, match=r"domain.params.dimm: unknown field"):
        parse_spec(
            {
                "name": "x",
                "domain": {"name": "toys", "params": {"dimm": 1}},
                "data": {"dataset": "toy"},
            }
        )


def test_recipes_from_plugins_load_and_reload_trained(host, tmp_path):
    spec = load_spec("recipe:toy_recipe", ["train.max_steps=1"])
    assert spec.name == "from-recipe" and spec.train.max_steps == 1
    train(build_pipeline(spec), tmp_path / "run")
    trained = load_trained("recipe:toy_recipe.yaml", tmp_path / "run", ["train.max_steps=1"])
    assert trained.spec.name == "from-recipe"
    with pytest.raises(SpecError, match="no recipe named 'toy_recipie'; did you mean"):
        load_spec("recipe:toy_recipie")
