import sys
import types
from importlib import metadata

import pytest

from modalforge.plugin import hookimpl, load_plugins
from tests.builtins import BUILTIN_PLUGINS
from tests.core.toy import LinearHead


def _plugin(name: str, register) -> types.ModuleType:  # noqa: ANN001
    mod = types.ModuleType(name)
    mod.register_components = hookimpl(register)
    return mod


def _good(registry):  # noqa: ANN001, ANN202
    registry.head("good_head", LinearHead)


def _raises(registry):  # noqa: ANN001, ANN202
    registry.head("half_registered", LinearHead)
    raise RuntimeError("boom during registration")


def test_failing_registration_is_isolated_and_rolled_back():
    host = load_plugins(
        [], extra=[("good", _plugin("good", _good)), ("bad", _plugin("bad", _raises))], warn=False
    )
    good, bad = host.records
    assert good.ok and good.components == [("head", "good_head")]
    assert not bad.ok
    assert "register_components raised: RuntimeError: boom during registration" == bad.error
    assert "half_registered" not in host.registry.names("head")


def test_duplicate_across_plugins_names_both(tmp_path):
    host = load_plugins(
        [], extra=[("one", _plugin("one", _good)), ("two", _plugin("two", _good))], warn=False
    )
    assert host.records[0].ok
    two = host.records[1]
    assert not two.ok
    assert "'one'" in two.error and "'two'" in two.error
    assert host.registry.get("head", "good_head").provider == "one"


def test_import_failure_reported_with_real_error(tmp_path, monkeypatch):
    (tmp_path / "broken_plugin_mod.py").write_text("raise ImportError('needs libfoo 9')\n")
    (tmp_path / "ok_plugin_mod.py").write_text(
        "from modalforge.plugin import hookimpl\n"
        "from tests.core.toy import LinearHead\n"
        "@hookimpl\n"
        "def register_components(registry):\n"
        "    registry.head('ok_head', LinearHead)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    eps = [
        metadata.EntryPoint("broken", "broken_plugin_mod", "modalforge"),
        metadata.EntryPoint("ok", "ok_plugin_mod", "modalforge"),
    ]
    with pytest.warns(RuntimeWarning, match=r"1 plugin\(s\) failed.*broken"):
        host = load_plugins(eps)
    broken = next(r for r in host.records if r.name == "broken")
    assert broken.error == "import failed: ImportError: needs libfoo 9"
    assert "Traceback" in broken.error_detail
    assert host.registry.get("head", "ok_head").provider == "ok"


def test_env_var_restricts_loading(tmp_path, monkeypatch):
    (tmp_path / "never_imported_mod.py").write_text("raise SystemExit('must not be imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    eps = [metadata.EntryPoint("never", "never_imported_mod", "modalforge")]
    monkeypatch.setenv("MODALFORGE_PLUGINS", "")
    host = load_plugins(eps, warn=False)
    assert host.records == []
    assert "never_imported_mod" not in sys.modules
    monkeypatch.setenv("MODALFORGE_PLUGINS", "other, never")
    (record,) = load_plugins(eps, warn=False).records  # selected by entry-point name
    assert record.error == "import failed: SystemExit: must not be imported"


def test_builtin_plugins_load_through_entry_points():
    host = load_plugins(warn=False)
    names = {r.name for r in host.records}
    assert BUILTIN_PLUGINS <= names and len(BUILTIN_PLUGINS) >= 14
    assert all(r.distribution == "modalforge" for r in host.records if r.name in names)


def test_misspelt_or_missing_hook_is_reported():
    misspelt = types.ModuleType("misspelt")
    misspelt.register_component = hookimpl(_good)  # missing trailing "s"
    empty = types.ModuleType("empty")
    host = load_plugins([], extra=[("misspelt", misspelt), ("empty", empty)], warn=False)
    bad_name, no_hook = host.records
    assert bad_name.error.startswith("not a valid plugin: PluginValidationError")
    assert "register_component" in bad_name.error
    assert no_hook.error.startswith(
        "register_components raised: PluginError: it implements none of the registration hooks"
    )
    assert len(host.registry) == 0


def test_builtins_sort_before_third_party(monkeypatch):
    from modalforge.plugin import manager

    class Dist:
        def __init__(self, name: str) -> None:
            self.metadata = {"Name": name}

    def ep(name: str, dist: str) -> metadata.EntryPoint:
        e = metadata.EntryPoint(name, f"{name}_mod", "modalforge")
        return e._for(Dist(dist)) if hasattr(e, "_for") else e

    eps = [ep("aaa", "third-party"), ep("zzz", "modalforge")]
    monkeypatch.setattr(manager.metadata, "entry_points", lambda group: eps)
    assert [e.name for e in manager.discover()] == ["zzz", "aaa"]
