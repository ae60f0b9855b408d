"""``modalforge new-plugin``."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_new_plugin(args: argparse.Namespace) -> int:
    from modalforge_apps.scaffold import create_plugin

    folder = create_plugin(args.name, Path(args.dest))
    print(f"created plugin project {folder}")
    print(f"next: cd {folder} && pip install -e . && pytest")
    return 0
