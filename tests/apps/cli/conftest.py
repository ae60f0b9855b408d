"""Fixtures of the CLI tests: the toy registry as the process's plugins, a toy spec file."""

import pytest
import yaml

from modalforge.plugin import PluginHost, set_host
from tests.core.toy import toy_registry, toy_spec


@pytest.fixture
def toy_host():
    set_host(PluginHost(toy_registry(), []))
    yield
    set_host(None)


@pytest.fixture
def toy_spec_file(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(toy_spec(), sort_keys=False))
    return path
