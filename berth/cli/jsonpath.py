"""The part of kubectl's JSONPath that `-o jsonpath=`, `-o custom-columns=` and `--sort-by` use.

A template is text with `{...}` expressions; an expression is a path of `.field`,
`['field']`, `[N]` and `[*]` steps from the object (`$` or `@` may start it). `[*]` (and
`.items` of a list followed by more steps) yields every element, so
`{.items[*].metadata.name}` lists every name, separated by spaces, as kubectl prints them.
"""

from __future__ import annotations

import json
import re
from typing import Any

from berth.errors import BerthError

_STEP = re.compile(r"\.([A-Za-z0-9_-]+)|\[\*\]|\[(-?\d+)\]|\['([^']*)'\]")


def steps(path: str) -> list[str | int | None]:
    """`.a.b[0][*]` as ["a", "b", 0, None] (None: every element)."""
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):  # kubectl takes --sort-by both ways
        text = text[1:-1].strip()
    if text[:1] in ("$", "@"):
        text = text[1:]
    if text and text[0] not in ".[":
        text = "." + text
    found: list[str | int | None] = []
    position = 0
    while position < len(text):
        match = _STEP.match(text, position)
        if match is None:
            raise BerthError(f"cannot read the JSONPath {path!r} at {text[position:]!r}")
        field, index, quoted = match.groups()
        found.append(field if field is not None else quoted if quoted is not None
                     else None if index is None else int(index))
        position = match.end()
    return found


def values(obj: Any, path: str) -> list[Any]:
    """Every value `path` reaches in `obj` (none where a step is missing)."""
    current = [obj]
    for step in steps(path):
        following: list[Any] = []
        for value in current:
            if step is None:
                following.extend(value if isinstance(value, list) else
                                 list(value.values()) if isinstance(value, dict) else [])
            elif isinstance(step, int):
                if isinstance(value, list) and -len(value) <= step < len(value):
                    following.append(value[step])
            elif isinstance(value, dict) and step in value:
                following.append(value[step])
        current = following
    return current


def text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def render(template: str, obj: Any) -> str:
    """A `-o jsonpath=` template, with `obj` (the List, or one object) as its root."""
    out, position = [], 0
    for match in re.finditer(r"\{([^{}]*)\}", template):
        out.append(template[position:match.start()])
        out.append(" ".join(text(v) for v in values(obj, match.group(1))))
        position = match.end()
    out.append(template[position:])
    return "".join(out).replace("\\n", "\n").replace("\\t", "\t")


def column_spec(spec: str) -> list[tuple[str, str]]:
    """`NAME:.metadata.name,NODE:.spec.nodeName` as [(header, path)]."""
    columns = []
    for part in spec.split(","):
        header, sep, path = part.partition(":")
        if not sep or not header or not path:
            raise BerthError(f"custom-columns: {part!r} should be HEADER:.json.path")
        steps(path.strip("{}"))  # refused now, not row by row
        columns.append((header, path.strip("{}")))
    return columns


def sort_key(path: str) -> Any:
    """--sort-by: objects in the order of the value `path` reaches (numbers as numbers)."""
    def key(obj: Any) -> tuple[int, Any]:
        found = values(obj, path)
        value = found[0] if found else None
        if isinstance(value, bool) or value is None:
            return (2, str(value))
        return (0, value) if isinstance(value, int | float) else (1, text(value))
    return key
