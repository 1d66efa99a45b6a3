"""The pod network's names and numbers that the runtime (which puts pods on it) and the agent
(which makes it, and routes between hosts) must agree on.

Each node's pods take addresses from its `spec.podCIDR` (given by the masters' node-ipam
from `cluster_cidr`), on a bridge network of the host's container engine named NETWORK;
hosts route each other's pod CIDRs, so a pod's address is its own across the cluster.
"""

from __future__ import annotations

import ipaddress

NETWORK = "berth"  # the engine's network every pod's sandbox joins
ROUTE_PROTOCOL = "177"  # marks the routes the agent adds (`ip route ... proto 177`): its own to replace


def gateway(pod_cidr: str) -> str:
    """The host's address on its pods' bridge: the subnet's first address, as engines default to."""
    return str(next(ipaddress.IPv4Network(pod_cidr).hosts()))
