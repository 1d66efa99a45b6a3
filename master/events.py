"""Events: what happened to an object and why, as `berth describe` shows them.

One Event per (object, reason): a repeat raises its count and last time instead of
adding another object, as Kubernetes aggregates them, so a pod that stays
unschedulable does not fill the store.
"""

from __future__ import annotations

import hashlib

from berth.objects import Obj
from master.store.commands import Put


def event_name(involved: Obj, reason: str, distinct: str = "") -> str:
    """A DNS label, stable for this object (by uid) and reason; `distinct` (a message) keeps events
    of one reason apart that tell different things (each ReplicaSet a Deployment scaled)."""
    meta = involved["metadata"]
    key = f"{involved['kind']}/{meta.get('namespace', '')}/{meta['name']}/{meta.get('uid', '')}/{reason}"
    key += f"/{distinct}" if distinct else ""
    return f"{meta['name'][:40]}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def record_event(existing: Obj | None, involved: Obj, reason: str, message: str, *, warning: bool,
                 component: str, uid: str, now: str, distinct: str = "") -> Put:
    """The write that records it: a new Event, or `existing` (same name) counted once more."""
    meta = involved["metadata"]
    namespace = meta.get("namespace") or "default"
    event: Obj = {
        "apiVersion": "berth/v1", "kind": "Event",
        "metadata": {"name": event_name(involved, reason, distinct), "namespace": namespace},
        "involvedObject": {"kind": involved["kind"], "name": meta["name"], "namespace": namespace,
                           "uid": meta.get("uid")},
        "reason": reason, "message": message[:4096], "type": "Warning" if warning else "Normal",
        "count": 1, "firstTimestamp": now, "lastTimestamp": now,
        "source": {"component": component, "host": ""},
    }
    if existing is not None:
        event["count"] = int(existing.get("count") or 1) + 1
        event["firstTimestamp"] = existing.get("firstTimestamp") or now
    return Put(event, uid, now)
