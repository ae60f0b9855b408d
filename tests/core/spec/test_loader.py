import pytest

from modalforge.errors import SizeMismatchError, SpecError, UnknownComponentError
from modalforge.spec import apply_overrides, load_spec, parse_spec, validate_components
from tests.core.toy import toy_registry, toy_spec


def test_valid_spec_round_trip(tmp_path):
    import yaml

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(toy_spec()))
    spec = load_spec(path, ["train.lr=1e-4", "model.encoders.image.params.dim=7"])
    assert spec.train.lr == pytest.approx(1e-4)
    assert spec.model.encoders["image"].params == {"dim": 7}
    assert spec.model.fusion.name == "concat" and spec.model.fusion.params == {}
    params = validate_components(spec, toy_registry())
    assert params["model.encoders.state"] == {"dim": 8}  # default filled in
    assert params["model.head"] == {"bias": True}


def test_malformed_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nmodel:\n  encoders: [a\n  head: b\n")
    with pytest.raises(SpecError) as exc:
        load_spec(path)
    msg = str(exc.value)
    assert str(path) in msg and "invalid YAML at line" in msg and "fix:" in msg


def test_not_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(SpecError, match="must be a YAML mapping, got list"):
        load_spec(path)


def test_structure_errors_name_the_field():
    data = toy_spec(train={"epochs": "many", "lr": -1})
    with pytest.raises(SpecError) as exc:
        parse_spec(data)
    msg = str(exc.value)
    assert "train.epochs: Input should be a valid integer" in msg
    assert "train.lr: Input should be greater than 0" in msg


def test_typo_in_section_is_reported():
    data = toy_spec()
    data["trian"] = {"epochs": 2}
    with pytest.raises(SpecError, match="trian: unknown field; did you mean 'train'"):
        parse_spec(data)
    data = toy_spec()
    data["data"]["batchsize"] = 3
    with pytest.raises(SpecError, match="data.batchsize: unknown field; did you mean 'batch_size'"):
        parse_spec(data)
    data = toy_spec()
    data["model"]["head"] = {"name": "linear", "parms": {}}
    with pytest.raises(SpecError, match="model.head.parms: unknown field; did you mean 'params'"):
        parse_spec(data)


def test_missing_head_and_loss():
    data = toy_spec()
    del data["model"]["head"]
    with pytest.raises(SpecError, match="needs a `head`"):
        parse_spec(data)


def test_unknown_component_with_close_match():
    data = toy_spec()
    data["model"]["fusion"] = "concatt"
    with pytest.raises(UnknownComponentError) as exc:
        validate_components(parse_spec(data), toy_registry())
    assert "model.fusion.name: no fusion named 'concatt'; did you mean 'concat'?" in str(exc.value)


def test_wrong_param_type_names_path_and_component():
    data = toy_spec()
    data["model"]["encoders"]["image"]["params"]["dim"] = "wide"
    with pytest.raises(SpecError) as exc:
        validate_components(parse_spec(data), toy_registry())
    msg = str(exc.value)
    assert msg.startswith("model.encoders.image.params.dim: Input should be a valid integer")
    assert "modalforge components encoder flatten" in msg


def test_unknown_param_lists_accepted_ones():
    data = toy_spec()
    data["model"]["head"] = {"name": "linear", "params": {"biass": False}}
    with pytest.raises(
        SpecError,
        match=r"model.head.params.biass: unknown field; head 'linear' "
        r"accepts: bias",
    ):
        validate_components(parse_spec(data), toy_registry())


def test_several_problems_reported_together():
    data = toy_spec(loss="cee")
    data["model"]["head"] = "lineer"
    with pytest.raises(SpecError, match="2 problems in the spec") as exc:
        validate_components(parse_spec(data), toy_registry())
    assert "model.head.name" in str(exc.value) and "loss.name" in str(exc.value)


def test_import_paths_are_not_component_names():
    data = toy_spec()
    data["model"]["head"] = {"name": "os.system", "params": {}}
    with pytest.raises(UnknownComponentError):
        validate_components(parse_spec(data), toy_registry())
    data["model"]["head"] = {"_target_": "os.system"}
    with pytest.raises(SpecError, match="model.head"):
        parse_spec(data)


@pytest.mark.parametrize(
    ("override", "fragment"),
    [("train", "a.b.c=value"), ("=3", "a.b.c=value"), ("metrics.5.name=x", "not an index")],
)
def test_bad_overrides(override, fragment):
    with pytest.raises(SpecError, match=fragment):
        apply_overrides(toy_spec(), [override])


def test_override_parses_yaml_values_and_lists():
    out = apply_overrides(
        toy_spec(), ["train.betas=[0.8, 0.9]", "metrics.0.name=acc", "model.fusion.params.x=1"]
    )
    assert out["train"]["betas"] == [0.8, 0.9]
    assert out["metrics"][0] == {"name": "acc"}
    assert out["model"]["fusion"] == {"name": "concat", "params": {"x": 1}}


def test_injected_param_mismatch_is_explained():
    from modalforge.pipeline import build_pipeline

    data = toy_spec()
    data["model"]["head"] = {"name": "linear", "params": {"in_dim": 99}}
    with pytest.raises(SizeMismatchError) as exc:
        build_pipeline(parse_spec(data), toy_registry())
    msg = str(exc.value)
    assert msg.startswith("model.head.params.in_dim: set to 99, but the pipeline gives 18")
    assert "remove `in_dim`" in msg


def test_override_into_null_component():
    data = toy_spec()
    data["model"]["fusion"] = None
    out = apply_overrides(data, ["model.fusion.name=sum"])
    assert out["model"]["fusion"] == {"name": "sum"}
