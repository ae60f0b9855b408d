"""Every packaged recipe and example benchmark file is valid against the installed plugins."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from modalforge.plugin import get_registry
from modalforge.spec import load_spec
from modalforge.spec.loader import validate_components
from modalforge_apps import recipes
from modalforge_apps.generation.config import load_config, resolve_spec

RECIPES = sorted(
    p.name for p in resources.files("modalforge_apps.recipes").iterdir() if p.name.endswith(".yaml")
)
EXAMPLES = Path(__file__).parents[2] / "examples" / "generation"


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_validates(name):
    with resources.as_file(resources.files("modalforge_apps.recipes").joinpath(name)) as path:
        spec = load_spec(path)
    validate_components(spec, get_registry())  # names and every parameter, nothing built
    assert spec.name


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_generation_benchmark_examples_validate(path):
    config = load_config(path)
    for stage in config.stages.values():
        spec = load_spec(resolve_spec(stage.spec, path.parent), [])
        validate_components(spec, get_registry())
    assert set(config.generators) <= set(config.stages)


def test_recipe_names_resolve_to_the_packaged_files():
    assert recipes.names() == RECIPES
    path = recipes.recipe_path("digits_gan")  # ".yaml" may be left out
    assert path == recipes.recipe_path("digits_gan.yaml") and path.is_file()
    assert recipes.resolve("recipe:shapes_clip.yaml") == str(recipes.recipe_path("shapes_clip"))
    assert recipes.resolve("my/spec.yaml") == "my/spec.yaml"
    with pytest.raises(LookupError, match="no built-in recipe 'nope'; there are: digits_"):
        recipes.recipe_path("nope")


@pytest.mark.parametrize(
    "path", sorted((EXAMPLES.parent / "bench").glob("*.yaml")), ids=lambda p: p.name
)
def test_bench_examples_validate(path):
    from modalforge_apps.bench import check_cells, load_grid

    loaded = load_grid(path)
    specs = check_cells(loaded, get_registry())  # every cell's names and parameters
    assert len(specs) == len(loaded.cells)
