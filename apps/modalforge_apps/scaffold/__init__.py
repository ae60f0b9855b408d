"""``modalforge new-plugin``: render an installable plugin project from the packaged template."""

from modalforge_apps.scaffold.render import create_plugin, validate_name

__all__ = ["create_plugin", "validate_name"]
