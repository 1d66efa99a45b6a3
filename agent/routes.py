"""Routes to the other hosts' pods: pure, no I/O.

Every node's pods live in its `spec.podCIDR`. A host reaches another host's pods through
that host's own address when the two share a link (host-gw, as flannel's backend of that
name: no encapsulation, the fastest path); otherwise, or always with the `vxlan` backend,
through a VXLAN device (as flannel's vxlan backend): each host's device has a MAC derived
from its pod CIDR, so every host knows every other's without asking, and the forwarding
entries (which host's address a MAC is behind) and neighbour entries are written for each
peer, with no flooding or learning. Every host makes the device whatever its backend, so it
can take VXLAN from a peer that sends it.

The agent marks the routes it adds with its own protocol number (berth/podnet.py
ROUTE_PROTOCOL), so it can tell them from the operator's and replace exactly its own when
nodes come and go.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass

from berth.objects import Obj
from berth.podnet import ROUTE_PROTOCOL, ipv4_address, ipv4_network

BACKENDS = ("host-gw", "vxlan")
VXLAN_DEVICE = "berth.vxlan"
VXLAN_ID = "1"
VXLAN_PORT = "8472"  # flannel's, the Linux default's IANA neighbour
VXLAN_MTU = 1450  # 1500 less the 50 bytes of the outer headers


@dataclass(frozen=True, order=True)
class Peer:
    name: str
    address: str
    pod_cidr: str


@dataclass(frozen=True, order=True)
class Route:
    destination: str  # a peer's pod CIDR
    via: str  # the peer's address, or (over VXLAN) its device's
    device: str | None = None  # set: over that device, the gateway taken as on it (onlink)

    def add(self) -> list[str]:
        over = ["dev", self.device, "onlink"] if self.device else []
        return ["ip", "route", "replace", self.destination, "via", self.via, *over, "proto", ROUTE_PROTOCOL]

    def delete(self) -> list[str]:
        return ["ip", "route", "del", self.destination, "proto", ROUTE_PROTOCOL]


def vtep_address(pod_cidr: str) -> str:
    """A host's address on its VXLAN device: its pod CIDR's network address (as flannel's)."""
    return str(ipaddress.IPv4Network(pod_cidr).network_address)


def vtep_mac(pod_cidr: str) -> str:
    """Locally administered (0a:58, as Kubernetes' pod MACs), then the network address's bytes."""
    return ":".join(f"{b:02x}" for b in (0x0A, 0x58, *ipaddress.IPv4Network(pod_cidr).network_address.packed))


def peers(nodes: list[Obj], me: str) -> list[Peer]:
    """Every other node with a pod CIDR and an IPv4 address."""
    found = []
    for node in nodes:
        spec = node.get("spec") or {}
        name = (node.get("metadata") or {}).get("name")
        cidr, address = ipv4_network(spec.get("podCIDR")), ipv4_address(spec.get("address"))
        if name != me and cidr and address:
            found.append(Peer(str(name), address, cidr))
    return sorted(found)


def local_networks(ip_addr_json: str) -> list[str]:
    """The networks this host's interfaces are on, from `ip -json addr`'s answer."""
    found = []
    for interface in json.loads(ip_addr_json or "[]"):
        for info in interface.get("addr_info") or []:
            if info.get("family") == "inet" and info.get("local") and info.get("prefixlen") not in (None, 32):
                found.append(str(ipaddress.IPv4Network(f"{info['local']}/{info['prefixlen']}", strict=False)))
    return found


def over_vxlan(peer: Peer, backend: str, networks: list[str]) -> bool:
    return backend == "vxlan" or not any(ipaddress.IPv4Address(peer.address) in ipaddress.IPv4Network(n)
                                         for n in networks)


def wanted_routes(all_peers: list[Peer], backend: str, networks: list[str]) -> set[Route]:
    return {Route(p.pod_cidr, vtep_address(p.pod_cidr), VXLAN_DEVICE) if over_vxlan(p, backend, networks)
            else Route(p.pod_cidr, p.address) for p in all_peers}


def installed_routes(ip_json: str) -> set[Route]:
    """Ours among `ip -json route show proto ROUTE_PROTOCOL`'s answer."""
    found = set()
    for entry in json.loads(ip_json or "[]"):
        cidr, via = ipv4_network(entry.get("dst")), ipv4_address(entry.get("gateway"))
        if cidr and via:
            found.add(Route(cidr, via, VXLAN_DEVICE if entry.get("dev") == VXLAN_DEVICE else None))
    return found


def route_changes(installed: set[Route], wanted: set[Route]) -> list[list[str]]:
    """The commands that make `installed` into `wanted`: stale destinations deleted, the rest
    replaced (a node whose address or path changed gets its route moved in one command)."""
    destinations = {r.destination for r in wanted}
    stale = sorted(r for r in installed if r.destination not in destinations)
    return [r.delete() for r in stale] + [r.add() for r in sorted(wanted - installed)]


def vxlan_device(address: str, pod_cidr: str) -> list[list[str]]:
    """The commands that make this host's VXLAN device (run when it is missing)."""
    return [["ip", "link", "add", VXLAN_DEVICE, "type", "vxlan", "id", VXLAN_ID, "local", address,
             "dstport", VXLAN_PORT, "nolearning"],
            ["ip", "link", "set", VXLAN_DEVICE, "address", vtep_mac(pod_cidr), "mtu", str(VXLAN_MTU), "up"],
            ["ip", "addr", "replace", f"{vtep_address(pod_cidr)}/32", "dev", VXLAN_DEVICE]]


def vxlan_peers(all_peers: list[Peer]) -> list[list[str]]:
    """Each peer's device: its MAC behind its host's address, its address at that MAC.
    `replace`: the same entries written again change nothing."""
    commands = []
    for peer in all_peers:
        mac = vtep_mac(peer.pod_cidr)
        commands += [["bridge", "fdb", "replace", mac, "dev", VXLAN_DEVICE, "dst", peer.address, "self",
                      "permanent"],
                     ["ip", "neigh", "replace", vtep_address(peer.pod_cidr), "lladdr", mac,
                      "dev", VXLAN_DEVICE, "nud", "permanent"]]
    return commands
