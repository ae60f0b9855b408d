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


# ------------------------------------------------------------------ pathological YAML
def _spec(tmp_path, text: str | bytes, name: str = "s.yaml"):
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def _laughs(levels: int = 9) -> str:
    """The 'billion laughs' alias bomb: 9 levels of 9 aliases expand to 9**9 values."""
    items = ['&a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    items += [f"&a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "[" + ", ".join(items) + "]"


@pytest.mark.parametrize(
    "text",
    [
        "name: t\nx: " + "[" * 3000 + "]" * 3000 + "\n",  # flow lists
        "name: t\nx: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n",  # flow mappings
        "name: t\n" + "".join("  " * i + f"k{i}:\n" for i in range(300)) + "  " * 300 + "v: 1\n",
    ],
    ids=["lists", "mappings", "block"],
)
def test_very_deep_nesting_is_a_spec_error_not_a_recursion_error(tmp_path, text):
    with pytest.raises(SpecError, match=r"s\.yaml: line \d+: nesting is deeper than 50 levels"):
        load_spec(_spec(tmp_path, text))


def test_an_alias_chain_that_nests_deeply_once_expanded_is_refused(tmp_path):
    items = ["x0: &x0 [1]"] + [f"x{i}: &x{i} [*x{i - 1}]" for i in range(1, 3000)]
    with pytest.raises(SpecError, match="deeper than 50 levels once aliases are expanded"):
        load_spec(_spec(tmp_path, "name: t\n" + "\n".join(items) + "\n"))


def test_an_alias_bomb_is_refused_quickly_and_in_little_memory(tmp_path):
    import tracemalloc

    path = _spec(tmp_path, yaml_text := f"name: t\nmetrics: {_laughs()}\n")
    assert len(yaml_text) < 1000
    tracemalloc.start()
    try:
        with pytest.raises(SpecError, match=r"expands to more than 100,000 values through alias"):
            load_spec(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20  # expanding it would take gigabytes (9**9 values)
    with pytest.raises(SpecError, match=r"^override metrics: expands to more than"):
        apply_overrides(toy_spec(), [f"metrics={_laughs()}"])


def test_aliases_and_merge_keys_that_stay_small_still_work(tmp_path):
    text = "x: &base {epochs: 3, lr: 0.1}\ntrain:\n  <<: *base\n  lr: 0.2\ny: [*base, *base]\n"
    from modalforge.spec.loader import read_yaml

    data = read_yaml(_spec(tmp_path, text))
    assert data["train"] == {"epochs": 3, "lr": 0.2} and data["y"] == [data["x"]] * 2


def test_a_recursive_alias_is_refused(tmp_path):
    with pytest.raises(SpecError, match="line 2: an alias refers to the value that contains it"):
        load_spec(_spec(tmp_path, "name: t\na: &a [1, *a]\n"))


def test_duplicate_keys_name_the_key_and_both_lines(tmp_path):
    text = "name: t\ndata:\n  batch_size: 8\n  batch_size: 16\n"
    with pytest.raises(SpecError) as exc:
        load_spec(_spec(tmp_path, text))
    msg = str(exc.value)
    assert "s.yaml: line 4: duplicate key 'batch_size' (first at line 3)" in msg
    assert "keep only the last" in msg
    with pytest.raises(SpecError, match=r"^override train\.betas: duplicate key 'a'"):
        apply_overrides(toy_spec(), ["train.betas={a: 1, a: 2}"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: t\n1: x\n", "line 2: key 1 is an int, not a string"),
        ("name: t\non: 3\n", "line 2: key True is a bool, not a string"),
        ("name: t\n? [a, b]\n: c\n", r"line 2: key \['a', 'b'\] is a list, not a string"),
    ],
)
def test_non_string_keys_are_refused_with_the_line(tmp_path, text, expected):
    with pytest.raises(SpecError, match=expected):
        load_spec(_spec(tmp_path, text))


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "s.yaml: is empty"),
        (b"# only a comment\n", "holds no YAML value"),
        (bytes(range(256)) * 4, "is a binary file, not YAML text"),
        ("name: t\n".encode("utf-16"), "is UTF-16 text"),
        (b"name: caf\xe9\n", r"is not UTF-8 text \(byte 9"),
    ],
)
def test_empty_binary_and_undecodable_files(tmp_path, content, expected):
    with pytest.raises(SpecError, match=expected):
        load_spec(_spec(tmp_path, content))


def test_a_huge_file_is_refused_before_it_is_parsed(tmp_path):
    text = "name: t\nx:\n" + "".join(f"  k{i}: {i}\n" for i in range(100_000))
    assert len(text) > 2**20
    with pytest.raises(SpecError, match=r"s\.yaml: is 1\.\d MiB; a spec file may be at most 1 MiB"):
        load_spec(_spec(tmp_path, text))


def test_a_folder_given_as_the_spec(tmp_path):
    with pytest.raises(SpecError, match="is a folder, not a spec file"):
        load_spec(tmp_path)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("a..b=1", "field path 'a..b' has an empty part"),
        (".train.lr=1", "has an empty part"),
        ("train.lr.=1", "has an empty part"),
        ("metrics.-1=x", r"'-1' is not an index of a list of 1\n  fix: indices: 0 … 0"),
        ("data.batch_size.x=1", r"data\.batch_size is 8 \(type int\), which has no fields"),
        ("train.epochs=" + "[" * 200 + "]" * 200, "nesting is deeper than 50 levels"),
    ],
)
def test_pathological_overrides(override, expected):
    with pytest.raises(SpecError, match=expected):
        apply_overrides(toy_spec(), [override])


def test_a_huge_input_is_shown_shortened_in_the_error():
    data = toy_spec(train={"epochs": list(range(100_000))})
    with pytest.raises(SpecError) as exc:
        parse_spec(data)
    assert "train.epochs: Input should be a valid integer (got [0, 1, 2, 3, 4, 5, ...])" in str(
        exc.value
    )
