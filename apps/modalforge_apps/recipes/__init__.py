"""Packaged example specs (recipes) the CLI runs, e.g. the demo."""
