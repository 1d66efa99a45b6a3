"""Status conditions (Ready, PodScheduled, ...): read one, or set one keeping the others."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def condition(obj: Obj, kind: str) -> Obj | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == kind),
                None)


def with_condition(status: Obj, new: Obj) -> Obj:
    """`status` with `new` in place of the condition of its type."""
    others = [c for c in status.get("conditions") or [] if c.get("type") != new["type"]]
    return {**status, "conditions": [*others, new]}
