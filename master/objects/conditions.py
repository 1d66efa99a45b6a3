"""Status conditions (Ready, PodScheduled, ...): read one, or set one keeping the others."""

from __future__ import annotations

from typing import Any

from berth.objects import Obj


def _conditions(status: Any) -> list[Obj]:
    """The well-formed conditions of a status. Every reader of a stored object's conditions comes
    here, and a status stored before it had a schema may hold anything (conditions: ["x"])."""
    listed = status.get("conditions") if isinstance(status, dict) else None
    return [c for c in listed if isinstance(c, dict)] if isinstance(listed, list) else []


def condition(obj: Obj, kind: str) -> Obj | None:
    return next((c for c in _conditions(obj.get("status")) if c.get("type") == kind), None)


def with_condition(status: Obj, new: Obj) -> Obj:
    """`status` with `new` in place of the condition of its type (ill-formed ones dropped, and a
    status that is not even a mapping replaced)."""
    others = [c for c in _conditions(status) if c.get("type") != new["type"]]
    return {**(status if isinstance(status, dict) else {}), "conditions": [*others, new]}


def ready_condition(node: Obj) -> bool | None:
    """The node's stored Ready condition: True, False, or None if never set."""
    ready = condition(node, "Ready")
    return None if ready is None else ready.get("status") == "True"


def ready_status(node: Obj) -> str | None:
    """The status of the node's stored Ready condition ("True", "False", "Unknown"), None if never set."""
    ready = condition(node, "Ready")
    return None if ready is None else str(ready.get("status"))


def transition_time(previous: Obj | None, status: str, stamp: str) -> str:
    """A condition's lastTransitionTime: the previous one's while the status stays, else `stamp`."""
    kept = previous.get("lastTransitionTime") if previous and previous.get("status") == status else None
    return str(kept or stamp)


def set_condition(status: Obj, new: Obj, stamp: str) -> Obj:
    """`status` with `new` where the condition of its type stood (last if none did), as Kubernetes'
    setCondition: its lastTransitionTime stays while its status does and becomes `stamp` when it
    changes, so a status written again each round is the same status."""
    listed = _conditions(status)
    previous = next((c for c in listed if c.get("type") == new["type"]), None)
    placed = {**new, "lastTransitionTime": transition_time(previous, new["status"], stamp)}
    conditions = [placed if c is previous else c for c in listed] if previous else [*listed, placed]
    return {**(status if isinstance(status, dict) else {}), "conditions": conditions}
