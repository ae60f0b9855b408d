"""train.optimizer / scheduler / callbacks / loggers are component refs, checked before building."""

import pytest
import yaml

from modalforge.errors import SpecError, UnknownComponentError
from modalforge.spec import (
    ComponentRef,
    apply_overrides,
    load_spec,
    parse_spec,
    validate_components,
)
from modalforge.spec.schema import ComponentRef as SchemaComponentRef
from tests.core.engine.helpers import GAN_SECTIONS, spec_dict
from tests.core.engine.helpers import registry as engine_registry
from tests.core.toy import toy_registry, toy_spec


def _check(train: dict, **sections):
    data = toy_spec(**sections)
    data["train"].update(train)
    return validate_components(parse_spec(data), toy_registry())


def test_defaults_and_refs_are_validated_with_their_paths():
    assert SchemaComponentRef is ComponentRef  # old import path keeps working
    spec = parse_spec(toy_spec())
    paths = {p: (k, r.name) for k, p, r in spec.component_refs()}
    assert paths["train.optimizer"] == ("optimizer", "adamw")
    assert paths["train.scheduler"] == ("scheduler", "warmup_cosine")
    params = _check(
        {
            "optimizer": {"name": "sgd", "params": {"momentum": 0.8}},
            "scheduler": {"name": "step", "params": {"step_size": 5}},
            "callbacks": ["early_stopping"],
            "loggers": [{"name": "csv"}],
        }
    )
    assert params["train.optimizer"] == {"momentum": 0.8, "dampening": 0.0, "nesterov": False}
    assert params["train.scheduler"] == {"step_size": 5, "gamma": 0.1}
    assert params["train.callbacks.0"]["patience"] == 3
    assert params["train.loggers.0"] == {"filename": "metrics_{split}.csv"}


def test_unknown_names_and_bad_params_are_reported_together():
    with pytest.raises(SpecError) as exc:
        _check(
            {
                "optimizer": "sdg",
                "scheduler": {"name": "step", "params": {"gamma": 0.5}},
                "callbacks": [{"name": "early_stopping", "params": {"patience": "x"}}],
                "loggers": ["tensorbord"],
            }
        )
    msg = str(exc.value)
    assert "4 problems" in msg
    assert "train.optimizer.name: no optimizer named 'sdg'; did you mean 'sgd'?" in msg
    assert "train.scheduler.params.step_size" in msg
    assert "train.callbacks.0.params.patience" in msg
    assert "train.loggers.0.name: no logger named 'tensorbord'" in msg
    with pytest.raises(UnknownComponentError, match="train.optimizer.name"):
        _check({"optimizer": "lion"})


@pytest.mark.parametrize(
    ("train", "field", "fragment"),
    [
        ({"optimizer": "sgd", "betas": [0.8, 0.99]}, "train.betas", "'sgd'"),
        ({"optimizer": "sgd", "eps": 1e-6}, "train.eps", "'sgd'"),
        ({"scheduler": "constant", "min_lr_ratio": 0.1}, "train.min_lr_ratio", "'constant'"),
        ({"scheduler": {"name": "step", "params": {"step_size": 3}}, "min_lr_ratio": 0.1},
         "train.min_lr_ratio", "'step'"),
        ({"optimizer": {"name": "adamw", "params": {"betas": [0.5, 0.9]}}, "betas": [0.8, 0.9]},
         "train.optimizer.params.betas", "in one place"),
    ],
)  # fmt: skip
def test_train_fields_the_choice_does_not_use_are_errors(train, field, fragment):
    with pytest.raises(SpecError) as exc:
        _check(train)
    assert exc.value.path == field and fragment in str(exc.value)


def test_fields_the_choice_uses_and_defaults_repeated_by_a_spec_yaml_are_fine():
    _check({"optimizer": "adam", "betas": [0.8, 0.9], "eps": 1e-6})
    _check({"scheduler": "linear", "min_lr_ratio": 0.1, "warmup_steps": 5})
    _check({"scheduler": "constant", "warmup_steps": 5})
    # A run's spec.yaml writes every default: betas/eps/min_lr_ratio at defaults with sgd/constant.
    spec = parse_spec(toy_spec(train={"optimizer": "sgd", "scheduler": "constant"}))
    again = parse_spec(yaml.safe_load(yaml.safe_dump(spec.model_dump(mode="json"))))
    validate_components(again, toy_registry())
    # Both places set to the same value is not a conflict.
    _check({"optimizer": {"name": "adamw", "params": {"betas": [0.8, 0.9]}}, "betas": [0.8, 0.9]})


def test_a_model_with_its_own_training_step_refuses_engine_optimizer_settings():
    def check(train):
        return validate_components(parse_spec(spec_dict(train, **GAN_SECTIONS)), engine_registry())

    for train, field in [
        ({"optimizer": "sgd"}, "train.optimizer"),
        ({"optimizer": {"name": "adamw", "params": {"amsgrad": True}}}, "train.optimizer"),
        ({"param_groups": {"gen": {"lr_mult": 0.1}}}, "train.param_groups"),
        ({"betas": [0.5, 0.9]}, "train.betas"),
    ]:
        with pytest.raises(SpecError) as exc:
            check(train)
        assert exc.value.path == field
        assert "generator 'toy_gan' builds its own optimizers" in str(exc.value)
    check({"scheduler": "constant", "warmup_steps": 3})  # schedules apply to its optimizers


def test_overrides_reach_the_refs_and_param_groups(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(toy_spec()))
    spec = load_spec(
        path,
        [
            "train.optimizer.params.amsgrad=true",  # keeps the default name
            "train.scheduler=constant",
            "train.param_groups.encoders.image.lr_mult=0.1",
            "train.callbacks=[early_stopping]",
        ],
    )
    assert spec.train.optimizer == ComponentRef(name="adamw", params={"amsgrad": True})
    assert spec.train.scheduler.name == "constant"
    assert spec.train.param_groups["encoders.image"].lr_mult == 0.1
    assert [c.name for c in spec.train.callbacks] == ["early_stopping"]
    data = apply_overrides(toy_spec(), ["train.loggers=[csv]", "train.loggers.0.params.x=1"])
    with pytest.raises(SpecError, match="train.loggers.0.params.x"):
        validate_components(parse_spec(data), toy_registry())
