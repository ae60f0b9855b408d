"""The MONAI encoders are registered with their tags, and their params validate from a spec."""

from __future__ import annotations

import pytest

from modalforge.errors import SpecError
from modalforge.plugin import load_plugins
from modalforge.spec.params import validate_params


@pytest.fixture(scope="module")
def registry():
    return load_plugins(warn=False).registry


@pytest.mark.parametrize(
    ("name", "tokens"), [("monai_net", False), ("monai_vit", True), ("monai_swin", False)]
)
def test_registered_with_medical_tags(registry, name, tokens):
    info = registry.get("encoder", name)
    assert {"volume3d", "image2d", "medical"} <= set(info.tags)
    assert ("tokens" in info.tags) is tokens


def test_yaml_lists_become_tuples_and_bad_choices_name_the_field(registry):
    swin = registry.get("encoder", "monai_swin")
    values = validate_params(swin, {"stages": [3, 4], "depths": [1, 1, 1, 1]}, "model.encoders.ct")
    assert values["stages"] == (3, 4) and values["depths"] == (1, 1, 1, 1)
    vit = registry.get("encoder", "monai_vit")
    assert validate_params(vit, {"patch_size": [4, 4, 8]}, "x")["patch_size"] == (4, 4, 8)
    with pytest.raises(SpecError, match=r"model\.encoders\.ct\.params\.output"):
        validate_params(vit, {"output": "sequence"}, "model.encoders.ct")
    net = registry.get("encoder", "monai_net")
    with pytest.raises(SpecError, match=r"model\.encoders\.ct\.params\.network"):
        validate_params(net, {"network": "densenet999"}, "model.encoders.ct")
