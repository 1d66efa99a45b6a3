"""Routes to the other hosts' pods (host-gw, as flannel's backend of that name): pure, no I/O.

Every node's pods live in its `spec.podCIDR`; a host reaches another host's pods through that
host's own address, which must share a link with it. The agent marks the routes it adds with
its own protocol number (berth/podnet.py ROUTE_PROTOCOL), so it can tell them from the
operator's and replace exactly its own when nodes come and go.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass

from berth.objects import Obj
from berth.podnet import ROUTE_PROTOCOL


@dataclass(frozen=True, order=True)
class Route:
    destination: str  # a peer's pod CIDR
    via: str  # the peer's address

    def add(self) -> list[str]:
        return ["ip", "route", "replace", self.destination, "via", self.via, "proto", ROUTE_PROTOCOL]

    def delete(self) -> list[str]:
        return ["ip", "route", "del", self.destination, "proto", ROUTE_PROTOCOL]


def _network(value: object) -> str | None:
    try:
        return str(ipaddress.IPv4Network(str(value)))
    except ValueError:
        return None


def _address(value: object) -> str | None:
    try:
        return str(ipaddress.IPv4Address(str(value)))
    except ValueError:
        return None  # a host name: host-gw needs the address itself


def wanted_routes(nodes: list[Obj], me: str) -> set[Route]:
    """A route for each other node that has a pod CIDR and an IPv4 address."""
    routes = set()
    for node in nodes:
        spec = node.get("spec") or {}
        if (node.get("metadata") or {}).get("name") == me:
            continue
        cidr, via = _network(spec.get("podCIDR")), _address(spec.get("address"))
        if cidr and via:
            routes.add(Route(cidr, via))
    return routes


def installed_routes(ip_json: str) -> set[Route]:
    """Ours among `ip -json route show proto ROUTE_PROTOCOL`'s answer."""
    found = set()
    for entry in json.loads(ip_json or "[]"):
        cidr, via = _network(entry.get("dst")), _address(entry.get("gateway"))
        if cidr and via:
            found.add(Route(cidr, via))
    return found


def route_changes(installed: set[Route], wanted: set[Route]) -> list[list[str]]:
    """The commands that make `installed` into `wanted`: stale destinations deleted, the rest
    replaced (a node whose address changed gets its route moved in one command)."""
    destinations = {r.destination for r in wanted}
    stale = sorted(r for r in installed if r.destination not in destinations)
    return [r.delete() for r in stale] + [r.add() for r in sorted(wanted - installed)]
