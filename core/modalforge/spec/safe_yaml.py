"""A YAML reader for specs that refuses what ``yaml.safe_load`` lets through silently or badly.

``yaml.safe_load`` keeps the last of two equal keys, turns ``yes:`` / ``1:`` into non-string keys,
raises ``RecursionError`` on very deep nesting, and expands an alias bomb ("billion laughs") into
exponentially many values once anything walks the result. Specs need none of that: here nesting
depth and the number of values (counting every alias use) are bounded, keys must be unique
strings and aliases may not refer to themselves. Each refusal is a :class:`SpecError` naming the
source and the line.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from modalforge.errors import SpecError

#: deepest nesting of mappings and lists (a spec needs about 6; bench grids a few more)
MAX_DEPTH = 50
#: values in the document with every alias expanded (a spec has hundreds)
MAX_VALUES = 100_000
MERGE_TAG = "tag:yaml.org,2002:merge"


class _Refused(Exception):
    """Raised inside the loader; turned into a SpecError naming the source."""

    def __init__(self, line: int | None, message: str, hint: str) -> None:
        super().__init__(message)
        self.line, self.message, self.hint = line, message, hint


def _line(node_or_mark: Any) -> int | None:
    mark = getattr(node_or_mark, "start_mark", node_or_mark)
    return None if mark is None else int(mark.line) + 1


class SpecLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with bounded depth and unique string keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:  # noqa: ANN401
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(
                    _line(self.peek_event()),
                    f"nesting is deeper than {MAX_DEPTH} levels",
                    "a spec nests a few levels (model.encoders.<name>.params); flatten the value",
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int | None] = {}
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG:  # `<<: *base` merges; explicit keys override it
                continue
            key = self.construct_object(key_node, deep=True)
            line = _line(key_node)
            if not isinstance(key, str):
                quoted = "" if key_node.tag.endswith((":map", ":seq")) else f"'{key_node.value}'"
                raise _Refused(
                    line,
                    f"key {key!r} is {_article(type(key).__name__)}, not a string",
                    f"quote it ({quoted or 'a string'}); YAML reads yes/no/on/off as booleans "
                    "and bare numbers as numbers",
                )
            if key in seen:
                raise _Refused(
                    line,
                    f"duplicate key {key!r} (first at line {seen[key]})",
                    "remove one of them: YAML would silently keep only the last",
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _check_size(root: Node) -> None:
    """Refuse self-referencing aliases, and documents whose values, with every alias expanded,
    nest deeper than MAX_DEPTH or number over MAX_VALUES (an alias chain nests without indenting).
    """
    seen: dict[int, tuple[int, int]] = {}  # id(node) → (values, height) of its expansion
    active: set[int] = set()

    def walk(node: Node, depth: int) -> tuple[int, int]:
        key = id(node)
        if key in active:
            raise _Refused(
                _line(node),
                "an alias refers to the value that contains it (a recursive structure)",
                "a spec must be a tree: copy the value instead of aliasing its parent",
            )
        if key not in seen:
            if depth > MAX_DEPTH:
                raise _Refused(
                    _line(node),
                    f"nesting is deeper than {MAX_DEPTH} levels once aliases are expanded",
                    "a spec nests a few levels; do not chain aliases inside aliases",
                )
            active.add(key)
            children: list[Node] = []
            if isinstance(node, SequenceNode):
                children = list(node.value)
            elif isinstance(node, MappingNode):
                children = [n for pair in node.value for n in pair]
            values, height = 1, 0
            for child in children:
                v, h = walk(child, depth + 1)
                values, height = values + v, max(height, h + 1)
                if values > MAX_VALUES:
                    raise _Refused(
                        _line(node),
                        f"expands to more than {MAX_VALUES:,} values through aliases (*name)",
                        "a spec needs far fewer values; an alias bomb ('billion laughs') is "
                        "not a spec",
                    )
            active.discard(key)
            seen[key] = (values, height)
        values, height = seen[key]
        if depth + height > MAX_DEPTH:
            raise _Refused(
                _line(node),
                f"nesting is deeper than {MAX_DEPTH} levels once aliases are expanded",
                "a spec nests a few levels; do not chain aliases inside aliases",
            )
        return values, height

    walk(root, 1)


def parse_yaml(text: str, source: str, *, lenient: bool = False) -> Any:  # noqa: ANN401
    """The YAML value in ``text``; a :class:`SpecError` naming ``source`` (and the line) for a
    syntax error or any of the refusals above. ``lenient``: a syntax error gives ``text`` back as
    a plain string (command-line override values), the refusals still raise."""
    loader = SpecLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_size(node)
        return loader.construct_document(node)
    except _Refused as exc:
        one_line = "\n" not in text.strip()
        where = f"line {exc.line}: " if exc.line and not one_line else ""
        raise SpecError(source, f"{where}{exc.message}", hint=exc.hint) from None
    except yaml.YAMLError as exc:
        if lenient:
            return text
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        if context and "anchor" in context:  # `found duplicate anchor ...; second occurrence`
            problem = f"{context.split(';')[0]} ({problem})"
        raise SpecError(
            source,
            f"invalid YAML at {where}{problem}",
            hint="fix the YAML syntax (indentation, quotes, colons)",
        ) from None
    finally:
        loader.dispose()


def _article(word: str) -> str:
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"
