"""`apply` as Kubernetes' client-side apply does it, done once on the server: a three-way merge.

An apply sends the whole object as the user wants it. Taken as a replacement, it would
wipe what the system set since (a pod's `spec.nodeName`): re-applying an unchanged
manifest once moved a running pod to another host. So the store remembers what each
apply sent (the annotation `LAST_APPLIED`, as kubectl's
`kubectl.kubernetes.io/last-applied-configuration`) and merges three ways: a field this
apply sets wins; a field the last apply set and this one dropped is removed; a field
neither set (the system's) stays as it is. An apply that changes nothing is left alone.
"""

from __future__ import annotations

import json
from typing import Any

from berth.objects import Obj

LAST_APPLIED = "berth.io/last-applied-configuration"
_SYSTEM_META = ("uid", "creationTimestamp", "generation", "resourceVersion", "deletionTimestamp",
                "deletionGracePeriodSeconds")


def three_way(last: Any, live: Any, new: Any) -> Any:
    """Maps merge key by key; anything else (lists, scalars) is `new`'s, whole, as in JSON merge
    patch."""
    if not isinstance(new, dict) or not isinstance(live, dict):
        return new
    last = last if isinstance(last, dict) else {}
    merged = {k: v for k, v in live.items() if not (k in last and k not in new)}
    for key, value in new.items():
        merged[key] = three_way(last.get(key), live.get(key), value)
    return merged


def applied_view(obj: Obj) -> Obj:
    """What an apply is remembered by: the object as sent, without status, what the system sets
    in metadata, or the remembered configuration itself; of a Secret's data, the keys alone
    (enough to know which keys a later apply drops)."""
    meta = {k: v for k, v in obj["metadata"].items() if k not in _SYSTEM_META}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != LAST_APPLIED}
    meta = {k: v for k, v in meta.items() if k != "annotations"}
    if annotations:
        meta["annotations"] = annotations
    view = {**{k: v for k, v in obj.items() if k not in ("metadata", "status")}, "metadata": meta}
    if obj.get("kind") == "Secret":  # annotations are shown to every reader: a Secret's keys only
        view["data"] = dict.fromkeys(obj.get("data") or {})
    return view


def last_applied(obj: Obj) -> Obj:
    """The configuration the last apply sent ({} for an object never applied, or garbage)."""
    text = ((obj.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    try:
        remembered = json.loads(text) if text else {}
    except ValueError:
        return {}
    return remembered if isinstance(remembered, dict) else {}


def merge_apply(live: Obj | None, sent: Obj) -> Obj:
    """The object an apply of `sent` (validated, defaults filled in) makes of `live`, with the
    configuration it sent remembered."""
    view = applied_view(sent)
    if live is None:
        merged = {**sent}
    else:
        last = last_applied(live)
        merged = three_way({k: v for k, v in last.items() if k != "metadata"},
                           {k: v for k, v in live.items() if k not in ("metadata", "status")},
                           {k: v for k, v in sent.items() if k not in ("metadata", "status")})
        last_meta, live_meta = last.get("metadata") or {}, live["metadata"]
        meta = {**sent["metadata"]}
        for field in ("labels", "annotations"):
            meta[field] = three_way(last_meta.get(field) or {}, live_meta.get(field) or {},
                                    sent["metadata"].get(field) or {})
        merged["metadata"] = meta
    annotations = {**(merged["metadata"].get("annotations") or {}),
                   LAST_APPLIED: json.dumps(view, sort_keys=True, separators=(",", ":"))}
    return {**merged, "metadata": {**merged["metadata"], "annotations": annotations}}
