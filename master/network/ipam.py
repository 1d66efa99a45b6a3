"""Per-node pod subnets, as Kubernetes' node IPAM cuts `--cluster-cidr`: pure, no store.

Each Node gets one subnet of `node_cidr_mask_size` bits from `cluster_cidr`, the lowest one
no node holds. Subnets are worked out as integers, not `ipaddress` objects: a /8 cut in /24s
is 65,536 candidates, and a round that places 10,000 new nodes must not build or parse them
all for each one. What nodes hold is read once a round; the free subnets are then yielded
lowest first and taken one node after another.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator

from berth.objects import Obj


class CidrExhausted(Exception):
    """Every subnet of the cluster's range is held: a new node waits for one to be freed."""

    def __init__(self, cluster_cidr: str, mask_size: int, holders: int) -> None:
        super().__init__(f"no free /{mask_size} left in {cluster_cidr}: {holders} nodes hold all of them")


def cluster_network(cluster_cidr: str, mask_size: int) -> ipaddress.IPv4Network:
    """The range, checked: strict (no host bits), cut in subnets no larger than itself."""
    network = ipaddress.IPv4Network(cluster_cidr)
    if not network.prefixlen <= mask_size <= 32:
        raise ValueError(f"a /{mask_size} subnet does not fit in {cluster_cidr}")
    return network


def _held(network: ipaddress.IPv4Network, mask_size: int, used: Iterable[object]) -> list[tuple[int, int]]:
    """The candidate indexes each used value overlaps, as [first, end) ranges. A value of
    another size (stored before the mask size changed) takes every candidate it overlaps; a
    value that is not an IPv4 network, or lies outside the range, takes none."""
    base, step = int(network.network_address), 1 << (32 - mask_size)
    count = network.num_addresses // step
    held = []
    for value in used:
        if not isinstance(value, str):
            continue
        try:
            subnet = ipaddress.IPv4Network(value, strict=False)
        except ValueError:
            continue
        first = (int(subnet.network_address) - base) // step
        end = -(-(int(subnet.broadcast_address) + 1 - base) // step)  # rounded up
        first, end = max(first, 0), min(end, count)
        if first < end:
            held.append((first, end))
    return held


def free_subnets(cluster_cidr: str, mask_size: int, used: Iterable[object]) -> Iterator[str]:
    """Every subnet of the range no used value overlaps, lowest first, made only as asked for."""
    network = cluster_network(cluster_cidr, mask_size)
    base, step = int(network.network_address), 1 << (32 - mask_size)
    count = network.num_addresses // step
    index = 0
    for first, end in sorted(_held(network, mask_size, used)):
        for free in range(index, min(first, count)):
            yield f"{ipaddress.IPv4Address(base + free * step)}/{mask_size}"
        index = max(index, end)
    for free in range(index, count):
        yield f"{ipaddress.IPv4Address(base + free * step)}/{mask_size}"


def holders(cluster_cidr: str, mask_size: int, used: Iterable[object]) -> int:
    """How many used values take part of the range (for the exhaustion message)."""
    return len(_held(cluster_network(cluster_cidr, mask_size), mask_size, used))


def next_free_subnet(cluster_cidr: str, mask_size: int, used: Iterable[object]) -> str:
    """The lowest subnet of that size in the range that no used value overlaps."""
    used = list(used)
    found = next(free_subnets(cluster_cidr, mask_size, used), None)
    if found is None:
        raise CidrExhausted(cluster_cidr, mask_size, holders(cluster_cidr, mask_size, used))
    return found


def pod_cidr(node: Obj) -> str | None:
    """The subnet a stored node holds: garbage holds none, and must not stop the others' round."""
    spec = node.get("spec")
    value = spec.get("podCIDR") if isinstance(spec, dict) else None
    return value if isinstance(value, str) and value else None


def assignments(nodes: list[Obj], cluster_cidr: str,
                mask_size: int) -> list[tuple[Obj, str | CidrExhausted]]:
    """Each node without a subnet, oldest first (by creationTimestamp, then name), with the one it
    gets, or why it gets none: the range is used up. A subnet is never taken from a node that
    holds one, so none is reused while its node exists (a deleted node's may be)."""
    used = [cidr for node in nodes if (cidr := pod_cidr(node))]
    waiting = sorted((n for n in nodes if pod_cidr(n) is None),
                     key=lambda n: (str(n["metadata"].get("creationTimestamp") or ""), n["metadata"]["name"]))
    if not waiting:
        return []
    free = free_subnets(cluster_cidr, mask_size, used)
    planned: list[tuple[Obj, str | CidrExhausted]] = []
    for node in waiting:
        cidr = next(free, None)
        if cidr is None:
            held = holders(cluster_cidr, mask_size, [*used, *(c for _, c in planned)])
            exhausted = CidrExhausted(cluster_cidr, mask_size, held)
            return planned + [(n, exhausted) for n in waiting[len(planned):]]
        planned.append((node, cidr))
    return planned
