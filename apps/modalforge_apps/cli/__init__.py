"""The ``modalforge`` command line. Heavy modules are imported by each command, not here."""

from modalforge_apps.cli.main import main

__all__ = ["main"]
