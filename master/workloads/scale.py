"""The `/scale` view of Deployments and ReplicaSets, and the object a new scale makes: shared by the
API's scale subresource (master/api/scale.py) and the autoscaler, so both read and write the same way."""

from __future__ import annotations

from berth.objects import Obj

_SHOWN = ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")


def scale_of(obj: Obj) -> Obj:
    """A Scale as Kubernetes serves it: `spec.replicas`, `status.replicas`, `status.selector` as a
    label selector string."""
    meta = obj["metadata"]
    selector = ",".join(f"{k}={v}" for k, v in sorted(obj["spec"]["selector"]["matchLabels"].items()))
    return {"apiVersion": "berth/v1", "kind": "Scale",
            "metadata": {k: meta[k] for k in _SHOWN if k in meta},
            "spec": {"replicas": obj["spec"]["replicas"]},
            "status": {"replicas": int((obj.get("status") or {}).get("replicas") or 0), "selector": selector}}


def with_replicas(obj: Obj, replicas: int) -> Obj:
    """The object to Replace, at the resourceVersion it was read at, to set its replicas alone (its
    status is the store's to keep)."""
    spec_side = {k: v for k, v in obj.items() if k != "status"}
    return {**spec_side, "spec": {**spec_side["spec"], "replicas": replicas}}
