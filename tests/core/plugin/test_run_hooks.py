"""The run's plugin manager: undecorated Callback methods, decorated plugin functions, loggers."""

import types

from modalforge.contracts import Callback, RunLogger
from modalforge.engine.run import RunHooks
from modalforge.plugin import hookimpl, load_plugins
from modalforge.plugin.run_hooks import RunPluginManager


class OnlyEval(Callback):
    def __init__(self) -> None:
        self.seen = []

    def after_evaluation(self, split, metrics):  # a subset of the arguments, no decorator
        self.seen.append((split, dict(metrics)))


class Lines(RunLogger):
    def __init__(self) -> None:
        self.lines = []

    def log_metrics(self, step, split, values):  # noqa: ANN001
        self.lines.append((step, split, dict(values)))


class NotACallback:
    def after_step(self, run, step):  # noqa: ANN001 - undecorated, not a Callback: ignored
        raise AssertionError("called")


def _impl_names(pm, name):
    return [i.plugin_name for i in getattr(pm.hook, name).get_hookimpls()]


def test_only_overridden_callback_methods_are_hook_implementations():
    pm = RunPluginManager()
    pm.register(OnlyEval(), name="cb")
    pm.register(NotACallback(), name="other")
    assert _impl_names(pm, "after_evaluation") == ["cb"]
    assert _impl_names(pm, "after_step") == []  # Callback's no-op and the plain object's
    assert _impl_names(pm, "on_train_start") == []


def test_run_hooks_call_plugins_then_callbacks_and_loggers_only_on_process_0():
    order = []
    mine = types.ModuleType("mine")
    mine.register_components = hookimpl(lambda registry: None)
    mine.after_evaluation = hookimpl(lambda split: order.append(("plugin", split)))
    mine.log_metrics = hookimpl(lambda step: order.append(("plugin log", step)))
    no_hooks = types.ModuleType("plain")
    no_hooks.register_components = hookimpl(lambda registry: None)
    cb, logger = OnlyEval(), Lines()
    record = {"step": 3, "epoch": 0, "split": "train", "loss": 0.5, "lr": 0.1}

    hooks = RunHooks(
        {"mine": mine, "plain": no_hooks},
        [("train.callbacks.0", cb)],
        [("train.loggers.0", logger)],
        is_main=True,
    )
    assert [n for n, _ in hooks.pm.list_name_plugin()] == [
        "plugin mine",
        "train.callbacks.0",
        "train.loggers.0",
    ]
    hooks.after_evaluation(None, "test", {"loss": 1.0})
    hooks.log_metrics(None, record)
    assert logger.lines == [(3, "train", {"loss": 0.5, "lr": 0.1})]
    assert cb.seen == [("test", {"loss": 1.0})]
    assert ("plugin", "test") in order and ("plugin log", 3) in order

    other = RunHooks(
        {"mine": mine}, [("train.callbacks.0", OnlyEval())], [("l", Lines())], is_main=False
    )
    other.log_metrics(None, record)  # process 1: no logger, no log_metrics at all
    assert [n for n, _ in other.pm.list_name_plugin()] == ["plugin mine", "train.callbacks.0"]
    assert order.count(("plugin log", 3)) == 1


def test_a_plugin_with_run_hooks_loads_and_a_misspelt_hook_is_refused():
    good = types.ModuleType("good")
    good.register_components = hookimpl(lambda registry: None)
    good.after_step = hookimpl(lambda run, step: None)
    bad = types.ModuleType("bad")
    bad.register_components = hookimpl(lambda registry: None)
    bad.after_stepp = hookimpl(lambda run, step: None)
    host = load_plugins([], extra=[("good", good), ("bad", bad)], warn=False)
    assert host.records[0].ok and not host.records[1].ok
    assert "after_stepp" in host.records[1].error
    assert host.plugins == {"good": good}  # only plugins that loaded
