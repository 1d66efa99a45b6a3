"""A Service's rules beyond its schema: across its fields, and the address and node ports it holds.

The schema (kinds.ServiceSpec) checks each field alone. Here, with the field at fault named, as
Kubernetes' 422s name it: what Berth does not implement (LoadBalancer, ExternalName, headless),
the rules across fields (names on several ports, node ports only for NodePort, affinity settings
only for ClientIP), what an update keeps (the address never changes once given; a write that
leaves out an address or a node port keeps the stored one, as Kubernetes' registry does), and
what a write asks for or is given from the cluster's ranges (master/network/service_ips.py).

An address or a node port is held by one Service in the whole cluster: `held` lists what a
stored Service holds, for the store's index (master/store/indexes.py) and the check its apply
makes, so two masters that give the same one at once cannot both store it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Container, Hashable
from dataclasses import dataclass, field
from typing import Any

from berth.objects import Obj
from master.errors import ApiError
from master.network.service_ips import (
    RangeFull,
    address_problem,
    next_free_address,
    next_free_port,
    port_problem,
)
from master.objects.kinds import HEADLESS

CLUSTER_IP, NODE_PORT = "clusterIP", "nodePort"  # the store's index names
NOT_IMPLEMENTED = {
    "LoadBalancer": "LoadBalancer services are not implemented in Berth (no load balancer is made): "
                    "use NodePort",
    "ExternalName": "ExternalName services are not implemented in Berth (no cluster DNS yet)",
}
Key = tuple[str, str]  # a Service's namespace and name
Holder = Callable[[str, Hashable], Key | None]  # (index, value) -> the Service holding it


def invalid(field_path: str, message: str, reason: str = "Invalid") -> ApiError:
    return ApiError(422, reason, f"{field_path}: {message}", field_path)


def already_allocated(where: str, index: str, value: Hashable, owner: Key | None,
                      status: int = 422) -> ApiError:
    """Kubernetes' words: a 422 when the write asked for it, the store's 409 when another master
    gave it meanwhile (the API then picks again)."""
    what = "IP" if index == CLUSTER_IP else "port"
    held_by = f" (by Service {owner[0]}/{owner[1]})" if owner is not None else ""
    message = f"{where}: provided {what} {value} is already allocated{held_by}"
    return ApiError(status, "Invalid" if status == 422 else "Conflict", message, where)


def lost_race(err: ApiError) -> bool:
    """The store's refusal of an address or node port another Service took first (already_allocated)."""
    field_path = err.field or ""
    return err.status == 409 and (field_path == "spec.clusterIP" or field_path.endswith("].nodePort"))


def _ports(spec: Any) -> list[Obj]:
    listed = spec.get("ports") if isinstance(spec, dict) else None
    return [p for p in listed if isinstance(p, dict)] if isinstance(listed, list) else []


def held(obj: Obj | None) -> list[tuple[str, str, Hashable]]:
    """What a stored Service holds, as (field, index, value): its address, its node ports. Read
    defensively: a stored object is not validated again, and garbage holds nothing."""
    if obj is None or obj.get("kind") != "Service" or not isinstance(obj.get("spec"), dict):
        return []
    spec = obj["spec"]
    found: list[tuple[str, str, Hashable]] = []
    if isinstance(spec.get("clusterIP"), str) and spec["clusterIP"] not in ("", HEADLESS):
        found.append(("spec.clusterIP", CLUSTER_IP, spec["clusterIP"]))
    for index, port in enumerate(_ports(spec)):
        value = port.get("nodePort")
        if isinstance(value, int) and not isinstance(value, bool):
            found.append((f"spec.ports[{index}].nodePort", NODE_PORT, value))
    return found


def check_service_spec(spec: Obj) -> None:
    """The 422 Kubernetes gives a Service (as validated by its schema) whose fields disagree."""
    if spec["type"] in NOT_IMPLEMENTED:
        raise invalid("spec.type", NOT_IMPLEMENTED[spec["type"]], "FieldValueNotSupported")
    if spec.get("clusterIP") == HEADLESS:
        raise invalid("spec.clusterIP", "headless services (clusterIP None) are not implemented in Berth "
                      "(no cluster DNS yet): leave clusterIP out", "FieldValueNotSupported")
    ports = spec["ports"]
    names: set[str] = set()
    served: set[tuple[int, str]] = set()
    node_ports: set[tuple[int, str]] = set()
    for index, port in enumerate(ports):
        where = f"spec.ports[{index}]"
        if len(ports) > 1 and not port.get("name"):
            raise invalid(f"{where}.name", "required when a Service has more than one port")
        if port.get("name") in names:
            raise invalid(f"{where}.name", f"duplicate port name {port['name']!r}")
        if (port["port"], port["protocol"]) in served:
            raise invalid(f"{where}.port", f"duplicate port {port['port']}/{port['protocol']}")
        names.add(port.get("name") or "")
        served.add((port["port"], port["protocol"]))
        if port.get("nodePort") is None:
            continue
        if spec["type"] == "ClusterIP":
            raise invalid(f"{where}.nodePort", "may not be used when type is 'ClusterIP'")
        if (port["nodePort"], port["protocol"]) in node_ports:
            raise invalid(f"{where}.nodePort", f"duplicate node port {port['nodePort']}/{port['protocol']}")
        node_ports.add((port["nodePort"], port["protocol"]))
    if spec.get("sessionAffinityConfig") and spec["sessionAffinity"] == "None":
        raise invalid("spec.sessionAffinityConfig", "must not be set when sessionAffinity is None")


def dropped_by_type(stored: Obj | None, obj: Obj) -> Obj:
    """`obj` without what its new type or affinity does not take and the write did not change: a
    NodePort service patched to ClusterIP loses its node ports, one patched to sessionAffinity
    None its affinity settings, as Kubernetes' registry clears them."""
    before, spec = (stored or {}).get("spec"), obj["spec"]
    if not isinstance(before, dict):
        return obj
    if spec["type"] == "ClusterIP" and before.get("type") == "NodePort":
        given = {port.get("nodePort") for port in _ports(before)}
        spec = {**spec, "ports": [{k: v for k, v in port.items() if k != "nodePort" or v not in given}
                                  for port in spec["ports"]]}
    if spec["sessionAffinity"] == "None" and spec.get("sessionAffinityConfig") == \
            before.get("sessionAffinityConfig"):
        spec = {k: v for k, v in spec.items() if k != "sessionAffinityConfig"}
    return {**obj, "spec": spec}


def kept_allocations(old: Obj, new: Obj) -> Obj:
    """`new` as stored over `old`: the address stays, and a node port left out of a NodePort
    service's port keeps the one its port of that name had (Kubernetes' registry matches them by
    name), unless another of its ports now asks for it. An address that changes is a 422."""
    before, spec = old.get("spec"), new.get("spec")
    if not isinstance(before, dict) or not isinstance(spec, dict):
        return new
    address = before.get("clusterIP")
    if isinstance(address, str) and address:
        if spec.get("clusterIP") is None:
            spec = {**spec, "clusterIP": address}
        elif spec["clusterIP"] != address:
            raise invalid("spec.clusterIP", f"field is immutable (it is {address}); delete the Service to "
                          "give it another")
    if spec.get("type") == "NodePort" and before.get("type") == "NodePort":
        given = {port.get("name") or "": port.get("nodePort") for port in _ports(before)}
        asked = {port.get("nodePort") for port in _ports(spec)}
        ports = []
        for port in _ports(spec):
            kept = given.get(port.get("name") or "")
            if port.get("nodePort") is None and kept is not None and kept not in asked:
                port = {**port, "nodePort": kept}
            ports.append(port)
        spec = {**spec, "ports": ports}
    return {**new, "spec": spec}


@dataclass
class Picks:
    """What one request gives: the documents of an apply must not be given the same address or
    port, and a retry after the store refused one (another master gave it meanwhile) may start a
    little further up the range, so that writes racing for the lowest do not meet again."""

    attempt: int = 0
    given: set[tuple[str, Hashable]] = field(default_factory=set)
    rng: random.Random | None = None  # made at the first retry: seeding one costs every create ~12 µs

    def retry(self) -> None:
        self.attempt += 1
        self.given.clear()

    def skip(self) -> int:
        if not self.attempt:
            return 0
        if self.rng is None:
            self.rng = random.Random()
        return self.rng.randrange(min(4 ** self.attempt, 1024))


@dataclass(frozen=True)
class Ranges:
    """The master's settings the addresses and node ports come from (master/config.py)."""

    service_cidr: str
    node_port_range: str


class _Taken(Container[Any]):
    """An index's values held by a Service or given earlier in this request."""

    def __init__(self, index: str, holder: Holder, picks: Picks) -> None:
        self.index, self.holder, self.picks = index, holder, picks

    def __contains__(self, value: object) -> bool:
        return (self.index, value) in self.picks.given or self.holder(self.index, value) is not None


def allocated(obj: Obj, holder: Holder, ranges: Ranges, picks: Picks) -> Obj:
    """`obj` with an address and, for NodePort, a node port for each port: what it asks for (in
    range, held by no other Service), what it already holds, or the lowest free. Raises the 422
    naming the field when what it asks for is taken or outside the range, or nothing is left."""
    meta = obj["metadata"]
    key: Key = (meta.get("namespace") or "", meta["name"])
    spec = obj["spec"]
    address = spec.get("clusterIP")
    if address is None:
        address = _pick(CLUSTER_IP, "spec.clusterIP", holder, picks,
                        lambda taken: next_free_address(ranges.service_cidr, taken, picks.skip()))
    else:
        _asked(CLUSTER_IP, address, "spec.clusterIP", key, holder, picks,
               address_problem(address, ranges.service_cidr))
    ports = []
    for index, port in enumerate(spec["ports"]):
        where, number = f"spec.ports[{index}].nodePort", port.get("nodePort")
        if number is not None:
            _asked(NODE_PORT, number, where, key, holder, picks, port_problem(number, ranges.node_port_range))
        elif spec["type"] == "NodePort":
            number = _pick(NODE_PORT, where, holder, picks,
                           lambda taken: next_free_port(ranges.node_port_range, taken, picks.skip()))
            port = {**port, "nodePort": number}
        ports.append(port)
    return {**obj, "spec": {**spec, "clusterIP": address, "ports": ports}}


def _pick(index: str, where: str, holder: Holder, picks: Picks,
          choose: Callable[[Container[Any]], Any]) -> Any:
    try:
        value = choose(_Taken(index, holder, picks))
    except RangeFull as err:
        raise invalid(where, str(err)) from None
    picks.given.add((index, value))
    return value


def _asked(index: str, value: Hashable, where: str, key: Key, holder: Holder, picks: Picks,
           problem: str | None) -> None:
    """A value the write names: its own already (kept, or sent back) is fine even if the range has
    changed since; another's, or one outside the range, is refused, as Kubernetes refuses it."""
    owner = holder(index, value)
    if owner == key:
        picks.given.add((index, value))
        return
    if owner is not None or (index, value) in picks.given:
        raise already_allocated(where, index, value, owner)
    if problem is not None:
        raise invalid(where, problem)
    picks.given.add((index, value))
