"""``python -m modalforge`` (and ``torchrun -m modalforge``) runs the CLI."""

from modalforge_apps.cli import main

raise SystemExit(main())
