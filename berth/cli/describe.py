"""`berth describe`: one object as a person reads it, with the events that explain it.

The layout follows kubectl's: aligned `Key:  value` lines, nested sections
indented by two, schema field names in Title Case. Keys chosen by users (labels,
selectors, data) are printed as written, since renaming them would mislead.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from typing import Any

from berth.cli.columns import bytes_text, cpu_text, event_last_seen, event_source
from berth.cli.output import render_table
from berth.objects import Obj

NONE = "<none>"
WIDTH = 22  # where values start: past the longest label
# Maps whose keys are user data, not schema fields.
FREE_FORM = frozenset({
    "labels", "annotations", "matchLabels", "nodeSelector", "selector", "data", "capacity",
    "allocatable",
})
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
_SKIP_TOP = frozenset({"apiVersion", "kind", "metadata"})
_TIMES = frozenset({"startedAt", "finishedAt", "lastTransitionTime", "creationTimestamp",
                    "deletionTimestamp", "firstTimestamp", "lastTimestamp"})


def time_text(value: Any) -> Any:
    """A time as kubectl describe prints it (`Mon, 30 Nov 2026 05:10:01 +0000`), from Unix seconds
    (the engines' start and exit times) or an RFC 3339 string; anything else as it is."""
    try:
        if isinstance(value, int | float) or (isinstance(value, str) and value.replace(".", "", 1).isdigit()):
            seconds = float(value)
            if seconds <= 0:
                return value
            moment = datetime.fromtimestamp(seconds, UTC)
        elif isinstance(value, str) and value:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        else:
            return value
    except (ValueError, OverflowError, OSError):
        return value
    return moment.strftime("%a, %d %b %Y %H:%M:%S %z")


def shown(key: str, value: Any) -> Any:
    """A field's value as a person reads it: times as times, bytes and millicores as quantities."""
    if key in _TIMES:
        return time_text(value)
    if key in ("memory", "memoryUsed") and isinstance(value, int) and not isinstance(value, bool):
        return bytes_text(value)
    if key == "cpu" and isinstance(value, int) and not isinstance(value, bool):
        return cpu_text(value)
    return value


def title(key: str) -> str:
    """`containerPort` → `Container Port`, `podIP` → `Pod IP`, as kubectl describe shows fields."""
    words = _WORD.findall(key)
    if not words:
        return key
    return " ".join(w[:1].upper() + w[1:] for w in words)


def _scalar(value: Any) -> str:
    if value is None:
        return NONE
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value else '""'
    return str(value)


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, dict | list) or not value


def _inline(value: Any) -> str:
    if isinstance(value, dict | list) and not value:
        return NONE
    if isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
        return ", ".join(_scalar(v) for v in value)
    return _scalar(value)


def render_value(value: Any, indent: int, free_form: bool = False) -> list[str]:
    """Nested mappings and lists as indented lines; sibling scalars share one alignment."""
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        labels = {k: (str(k) if free_form else title(str(k))) + ":" for k in value}
        scalar_keys = [k for k, v in value.items() if _is_scalar(v) or _flat_list(v)]
        width = max((len(labels[k]) for k in scalar_keys), default=0) + 2
        for key, item in value.items():
            label = labels[key]
            if _is_scalar(item) or _flat_list(item):
                lines.append(f"{pad}{label.ljust(width)}{_inline(shown(str(key), item))}".rstrip())
            else:
                lines.append(f"{pad}{label}")
                lines.extend(render_value(item, indent + 2, str(key) in FREE_FORM))
        return lines
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and item:
                inner = render_value(item, indent + 2)
                lines.append(f"{pad}- {inner[0].lstrip()}")
                lines.extend(inner[1:])
            else:
                lines.append(f"{pad}- {_inline(item)}")
        return lines
    return [f"{pad}{_scalar(value)}"]


def _flat_list(value: Any) -> bool:
    return isinstance(value, list) and all(not isinstance(v, dict | list) for v in value)


def pairs(mapping: Any) -> list[str]:
    if not isinstance(mapping, dict) or not mapping:
        return [NONE]
    return [f"{k}={v}" for k, v in mapping.items()]


def section(lines: list[str], label: str, values: list[str], width: int) -> None:
    head = f"{label}:".ljust(width)
    lines.append(f"{head}{values[0]}".rstrip())
    lines.extend(" " * width + v for v in values[1:])


def _decoded_size(value: Any) -> int:
    """A Secret value's size as kubectl shows it: of what its base64 encodes."""
    try:
        return len(base64.b64decode(str(value), validate=True))
    except (binascii.Error, ValueError):
        return len(str(value).encode())


def _data_lines(obj: Obj) -> list[str]:
    """Secret values are never printed, only their size, even to a reader allowed to see them."""
    data = obj.get("data")
    if not isinstance(data, dict) or not data:
        return ["  " + NONE]
    secret = obj.get("kind") == "Secret"
    lines: list[str] = []
    for key, value in data.items():
        if secret:
            shown = "<hidden>" if value is None else f"{_decoded_size(value)} bytes"
            lines.append(f"  {key}:  {shown}")
        else:
            lines.append(f"{key}:")
            lines.append("----")
            lines.extend(str(value).splitlines() or [""])
            lines.append("")
    return lines


def event_table(events: list[Obj], now: datetime) -> list[str]:
    if not events:
        return ["  " + NONE]
    body = [
        [
            str(e.get("type") or "Normal"),
            str(e.get("reason") or ""),
            event_last_seen(e, now),
            event_source(e, now),
            " ".join(str(e.get("message") or "").split()),
        ]
        for e in events
    ]
    headers = ["Type", "Reason", "Age", "From", "Message"]
    underline = ["-" * len(h) for h in headers]
    table = render_table(headers, [underline, *body])
    return ["  " + line for line in table.splitlines()]


def related_events(obj: Obj, events: list[Obj]) -> list[Obj]:
    """Events about this object, oldest first, matched on kind, name and namespace."""
    meta = obj.get("metadata") or {}
    kind, name, ns = obj.get("kind"), meta.get("name"), meta.get("namespace")
    uid = meta.get("uid")
    matched = []
    for event in events:
        ref = event.get("involvedObject") or {}
        if ref.get("kind") != kind or ref.get("name") != name:
            continue
        if ns and ref.get("namespace") not in (None, ns):
            continue
        if uid and ref.get("uid") and ref.get("uid") != uid:
            continue  # an earlier object of the same name
        matched.append(event)

    def when(event: Obj) -> str:
        return str(
            event.get("lastTimestamp")
            or event.get("firstTimestamp")
            or (event.get("metadata") or {}).get("creationTimestamp")
            or ""
        )

    return sorted(matched, key=when)


def header(obj: Obj, width: int) -> list[str]:
    """The lines every kind's page starts with: who the object is, its labels and annotations."""
    meta = obj.get("metadata") or {}
    lines: list[str] = []
    section(lines, "Name", [_scalar(meta.get("name"))], width)
    if meta.get("namespace"):
        section(lines, "Namespace", [str(meta["namespace"])], width)
    section(lines, "Kind", [_scalar(obj.get("kind"))], width)
    section(lines, "Labels", pairs(meta.get("labels")), width)
    section(lines, "Annotations", pairs(meta.get("annotations")), width)
    for key, label in (
        ("uid", "UID"),
        ("resourceVersion", "Resource Version"),
        ("generation", "Generation"),
        ("creationTimestamp", "Creation Timestamp"),
        ("deletionTimestamp", "Deletion Timestamp"),
    ):
        if meta.get(key) is not None:
            section(lines, label, [_scalar(shown(key, meta[key]))], width)
    return lines


def events_lines(obj: Obj, events: list[Obj] | None, now: datetime, events_error: str | None) -> list[str]:
    """The closing Events section; `events=None` with `events_error` says why they could not be listed."""
    if events_error is not None:
        return [f"Events:  <{events_error}>"]
    return ["Events:", *event_table(related_events(obj, events or []), now)]


def describe(obj: Obj, events: list[Obj] | None, now: datetime, events_error: str | None = None) -> str:
    """`events=None` with `events_error` says why they could not be listed."""
    width = WIDTH
    lines = header(obj, width)
    for key, value in obj.items():
        if key in _SKIP_TOP:
            continue
        if key == "data":
            lines.append("Data:")
            lines.extend(_data_lines(obj))
        elif _is_scalar(value) or _flat_list(value):
            section(lines, title(key), [_inline(value)], width)
        else:
            lines.append(f"{title(key)}:")
            lines.extend(render_value(value, 2, key in FREE_FORM))

    lines.extend(events_lines(obj, events, now, events_error))
    return "\n".join(lines) + "\n"
