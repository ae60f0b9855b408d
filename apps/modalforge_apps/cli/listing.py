"""``modalforge plugins`` and ``modalforge components``."""

from __future__ import annotations

import argparse

from modalforge.errors import SpecError
from modalforge.plugin import get_host
from modalforge.registry import kinds
from modalforge.spec.params import describe_params


def cmd_plugins(args: argparse.Namespace) -> int:
    host = get_host()
    rows = [("PLUGIN", "VERSION", "DISTRIBUTION", "STATUS", "COMPONENTS")]
    for r in host.records:
        comps = ", ".join(f"{k}:{n}" for k, n in r.components) or "-"
        rows.append(
            (r.name, r.version or "-", r.distribution or "-", "ok" if r.ok else "FAILED", comps)
        )
    _print_table(rows)
    for r in host.failures:
        print(f"\n{r.name} ({r.module}) failed:\n  error: {r.error}")
        if args.verbose and r.error_detail:
            print("  " + r.error_detail.rstrip().replace("\n", "\n  "))
    if not host.records:
        print("no plugins loaded (MODALFORGE_PLUGINS may exclude all)")
    return 0


def cmd_components(args: argparse.Namespace) -> int:
    registry = get_host().registry
    selected = list(kinds())
    if args.kind:
        kind = args.kind.rstrip("s") if args.kind.rstrip("s") in selected else args.kind
        if kind not in selected:
            raise SpecError(
                "KIND",
                f"unknown component kind {args.kind!r}",
                hint=f"use one of: {', '.join(selected)}",
            )
        selected = [kind]
        if args.name:
            _show_one(registry.get(kind, args.name))
            return 0
    for kind in selected:
        infos = [registry.get(kind, n) for n in registry.names(kind)]
        print(f"{kind}s ({len(infos)}):")
        for info in infos:
            params = ", ".join(
                f"{n}: {t}" + ("" if d == "required" else f" = {d}")
                for n, t, d in describe_params(info)
            )
            print(f"  {info.name:<18} [{info.provider}] {info.summary}")
            if params:
                print(f"  {'':<18} ({params})")
        print()
    return 0


def _show_one(info) -> None:  # noqa: ANN001
    print(f"{info.kind} {info.name!r} from plugin {info.provider!r}")
    if info.summary:
        print(f"  {info.summary}")
    rows = [("PARAMETER", "TYPE", "DEFAULT")] + describe_params(info)
    print()
    _print_table(rows, indent="  ")
    if info.injected:
        print(f"\n  sized by the pipeline (not set in specs): {', '.join(info.injected)}")
    if info.kind == "adapter":
        _show_adapter(info)


def _show_adapter(info) -> None:  # noqa: ANN001
    """A domain's catalogue, from the adapter built with its default parameters."""
    import yaml

    from modalforge.pipeline import instantiate
    from modalforge.plugin import get_registry
    from modalforge.spec.params import validate_params

    adapter = instantiate(info, validate_params(info, {}, "domain"), "domain")
    print(f"\n  {adapter.describe()}")
    sections = [
        ("modalities", [m.describe() for m in adapter.modalities.values()]),
        ("readers", list(adapter.readers)),
        ("transforms", list(adapter.transforms)),
        ("recommended", [f"{role}: {name}" for role, name in adapter.recommended.items()]),
        ("metrics", list(adapter.metrics)),
    ]
    for title, items in sections:
        if items:
            print(f"  {title}: {', '.join(items)}")
    missing = adapter.missing(get_registry())
    if missing:
        print(f"  not installed: {', '.join(missing)}")
    preset = adapter.preset()
    if preset:
        text = yaml.safe_dump(preset, sort_keys=False).rstrip()
        print(f"\n  `domain: {info.name}` starts a spec from:\n    " + text.replace("\n", "\n    "))


def _print_table(rows: list[tuple[str, ...]], indent: str = "") -> None:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [str(c).ljust(w) for c, w in zip(row, widths, strict=True)]
        print(indent + "  ".join(cells).rstrip())
