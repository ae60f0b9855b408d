import pytest

from modalforge.errors import DuplicateComponentError, UnknownComponentError
from modalforge.registry import Registrar, Registry
from tests.core.toy import FlattenEncoder, LinearHead, toy_registry


def test_lookup_and_listing():
    reg = toy_registry()
    info = reg.get("encoder", "flatten")
    assert info.factory is FlattenEncoder
    assert info.provider == "toy"
    assert reg.names("fusion") == ["concat", "sum"]
    assert ("head", "linear") in reg
    assert len(reg) == 8 + 9  # the toy components and the built-in training choices
    assert reg.names("optimizer") == ["adam", "adamw", "sgd"]
    assert reg.names("scheduler") == ["constant", "linear", "step", "warmup_cosine"]


def test_injected_params_are_not_user_params():
    info = toy_registry().get("head", "linear")
    assert info.injected == ("in_dim", "target")
    assert list(info.params_model.model_fields) == ["bias"]


def test_unknown_name_lists_close_matches():
    with pytest.raises(UnknownComponentError) as exc:
        toy_registry().get("encoder", "flaten", path="model.encoders.image.name")
    msg = str(exc.value)
    assert msg.startswith("model.encoders.image.name: no encoder named 'flaten'")
    assert "did you mean 'flatten'" in msg
    assert "modalforge components encoder" in msg


def test_unknown_name_without_close_match_lists_all():
    with pytest.raises(UnknownComponentError, match="available: concat, sum"):
        toy_registry().get("fusion", "zzzzzz")


def test_duplicate_names_both_providers():
    reg = Registry()
    Registrar(reg, "first_plugin").head("linear", LinearHead)
    with pytest.raises(DuplicateComponentError) as exc:
        Registrar(reg, "second_plugin").head("linear", LinearHead)
    assert "'first_plugin'" in str(exc.value) and "'second_plugin'" in str(exc.value)


def test_untyped_parameter_is_rejected():
    def untyped(modality, size=3):  # noqa: ANN001, ANN202
        return None

    reg = Registry()
    Registrar(reg, "p").encoder("untyped", untyped)
    with pytest.raises(TypeError, match="parameter 'size' has no type hint"):
        _ = reg.get("encoder", "untyped").params_model


def test_unknown_kind_is_rejected():
    with pytest.raises(ValueError, match="unknown component kind 'encoders'"):
        Registrar(Registry(), "p").add("encoders", "x", FlattenEncoder)


def test_annotated_constraints_are_part_of_the_schema():
    from pydantic import PositiveInt

    from modalforge.modality import Modality
    from modalforge.spec.params import validate_params

    class Positive(FlattenEncoder):
        def __init__(self, modality: Modality, dim: PositiveInt = 8) -> None:
            super().__init__(modality, dim)

    reg = Registry()
    Registrar(reg, "p").encoder("positive", Positive)
    info = reg.get("encoder", "positive")
    assert validate_params(info, {"dim": 3}, "x") == {"dim": 3}
    with pytest.raises(Exception, match=r"x.params.dim: Input should be greater than 0"):
        validate_params(info, {"dim": 0}, "x")
