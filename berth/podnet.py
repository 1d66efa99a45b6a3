"""The pod network's names and numbers that the runtime (which puts pods on it) and the agent
(which makes it, routes between hosts, and answers the pods' DNS) must agree on.

Each node's pods take addresses from its `spec.podCIDR` (given by the masters' node-ipam
from `cluster_cidr`), on a bridge network of the host's container engine named NETWORK;
hosts route each other's pod CIDRs, so a pod's address is its own across the cluster.
"""

from __future__ import annotations

import ipaddress

NETWORK = "berth"  # the engine's network every pod's sandbox joins
ROUTE_PROTOCOL = "177"  # marks the routes the agent adds (`ip route ... proto 177`): its own to replace
CLUSTER_DOMAIN = "cluster.local"  # Kubernetes' default; a Service is NAME.NAMESPACE.svc.CLUSTER_DOMAIN


def ipv4_address(value: object) -> str | None:
    """The address in its usual form, or None: what the agent reads from the API becomes ip and
    nft arguments, so it is parsed again rather than trusted (a host name is None too)."""
    try:
        return str(ipaddress.IPv4Address(str(value)))
    except ValueError:
        return None


def ipv4_network(value: object) -> str | None:
    try:
        return str(ipaddress.IPv4Network(str(value)))
    except ValueError:
        return None


def search_domains(namespace: str) -> list[str]:
    """A pod's DNS search list, as Kubernetes writes it: `NAME`, `NAME.NAMESPACE` and
    `NAME.NAMESPACE.svc` all complete to the service's full name."""
    return [f"{namespace}.svc.{CLUSTER_DOMAIN}", f"svc.{CLUSTER_DOMAIN}", CLUSTER_DOMAIN]


def gateway(pod_cidr: str) -> str:
    """The host's address on its pods' bridge: the subnet's first address, as engines default to."""
    return str(next(ipaddress.IPv4Network(pod_cidr).hosts()))
