"""Which pods a Service sends traffic to, and on which port: its Endpoints' subsets, pure.

As Kubernetes' endpoints controller decides. A pod counts when the Service's selector matches
it, it has an address (IPv4: Services are), it is not terminating (a deleted pod leaves at once,
before its containers stop) and it has not finished (Succeeded or Failed). It is among
`addresses` when its Ready condition is True and its node is Ready, otherwise among
`notReadyAddresses`: a pod on a node that went NotReady leaves `addresses` at once, without
waiting for the node lifecycle to mark the pod. Each service port's targetPort is a number,
taken as it is, or a name, looked up among the pod's containers' ports of the same protocol; a
pod without that name is left out for that port only, and out altogether when it has none of
the ports. Pods whose ports come out the same share one subset (Kubernetes' repacking), so the
pods of one template make one subset and a rollout that renames a port makes two for a while.
Everything is sorted: the same pods give the same subsets, and a controller that compares them
with the stored ones writes nothing when nothing changed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Container
from typing import Any

from berth.objects import Obj
from master.objects.conditions import condition

FINISHED = ("Succeeded", "Failed")
PortKey = tuple[str, int, str]  # a service port's name, the pod's port number, the protocol


def _list(value: Any) -> list[Obj]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _address(pod: Obj) -> str | None:
    """The pod's IPv4 address, or None (none yet, or not an IPv4 one)."""
    value = (pod.get("status") or {}).get("podIP")
    try:
        return str(ipaddress.IPv4Address(value)) if isinstance(value, str) and value else None
    except ValueError:
        return None


def serving(pod: Obj) -> bool:
    """Not terminating and not finished: it may get traffic once Ready."""
    if pod["metadata"].get("deletionTimestamp"):
        return False
    return (pod.get("status") or {}).get("phase") not in FINISHED


def ready(pod: Obj, ready_nodes: Container[str]) -> bool:
    found = condition(pod, "Ready")
    return found is not None and found.get("status") == "True" and (pod.get("spec") or {}).get(
        "nodeName") in ready_nodes


def target_port(pod: Obj, service_port: Obj) -> int | None:
    """The pod's port a service port sends to (None: the pod has no port of that name)."""
    target = service_port.get("targetPort")
    if target is None:
        target = service_port.get("port")
    if isinstance(target, int) and not isinstance(target, bool):
        return target
    protocol = service_port.get("protocol") or "TCP"
    for container in _list((pod.get("spec") or {}).get("containers")):
        for port in _list(container.get("ports")):
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                number = port.get("containerPort")
                return number if isinstance(number, int) else None
    return None


def _selected(pod: Obj, selector: dict[str, str]) -> bool:
    labels = pod["metadata"].get("labels") or {}
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def _entry(pod: Obj, address: str) -> Obj:
    meta = pod["metadata"]
    target = {"kind": "Pod", "name": meta["name"],
              **{key: meta[key] for key in ("namespace", "uid") if meta.get(key)}}
    entry: Obj = {"ip": address}
    if (pod.get("spec") or {}).get("nodeName"):
        entry["nodeName"] = pod["spec"]["nodeName"]
    return {**entry, "targetRef": target}


def _sorted(entries: list[Obj]) -> list[Obj]:
    return sorted(entries, key=lambda e: (int(ipaddress.IPv4Address(e["ip"])), e["targetRef"]["name"]))


def endpoint_subsets(service: Obj, pods: list[Obj], ready_nodes: Container[str]) -> list[Obj]:
    """The subsets of `service`'s Endpoints from the pods of its namespace (any of them: the
    selector is applied here) and the names of the Ready nodes."""
    spec = service.get("spec") or {}
    selector = spec.get("selector") if isinstance(spec.get("selector"), dict) else {}
    service_ports = _list(spec.get("ports"))
    groups: dict[tuple[PortKey, ...], tuple[list[Obj], list[Obj]]] = {}
    for pod in pods:
        address = _address(pod)
        if address is None or not _selected(pod, selector) or not serving(pod):
            continue
        ports = tuple((str(p.get("name") or ""), number, str(p.get("protocol") or "TCP"))
                      for p in service_ports if (number := target_port(pod, p)) is not None)
        if not ports:
            continue
        ready_ones, not_ready_ones = groups.setdefault(ports, ([], []))
        (ready_ones if ready(pod, ready_nodes) else not_ready_ones).append(_entry(pod, address))
    subsets = []
    for ports in sorted(groups):
        ready_ones, not_ready_ones = groups[ports]
        subset: Obj = {}
        if ready_ones:
            subset["addresses"] = _sorted(ready_ones)
        if not_ready_ones:
            subset["notReadyAddresses"] = _sorted(not_ready_ones)
        subset["ports"] = [{**({"name": name} if name else {}), "port": number, "protocol": protocol}
                           for name, number, protocol in ports]
        subsets.append(subset)
    return subsets
