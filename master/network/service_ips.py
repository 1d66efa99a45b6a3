"""Services' cluster addresses and node ports, as Kubernetes' allocators give them: pure, no store.

A Service gets the lowest free address of `service_cidr` and, for type NodePort, each port the
lowest free number of `service_node_port_range`; what is free is what the caller says is not
taken (under the store's lock, from its index of what Services hold). The store's apply refuses
a Service whose address or port another already holds, so two masters picking the same one at
once cost the loser a retry, never a duplicate; a retry may `skip` a few free ones, so that
requests racing for the lowest do not meet again on the next.

Three addresses of the range are never given: its network address, its broadcast address and
its first usable one, which Kubernetes gives to the API's own Service (`kubernetes.default`):
kept free for it, so that manifests written for Kubernetes can count on it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Container, Iterator
from typing import TypeVar

T = TypeVar("T")
MIN_PREFIX, MAX_PREFIX = 12, 30  # Kubernetes caps the range at /12; a /30 leaves one address


class RangeFull(Exception):
    """Every address (or port) is held: the Service cannot be made until one is freed."""


def service_network(service_cidr: str) -> ipaddress.IPv4Network:
    """The range, checked: an IPv4 network without host bits, from /12 to /30."""
    network = ipaddress.IPv4Network(service_cidr)
    if not MIN_PREFIX <= network.prefixlen <= MAX_PREFIX:
        raise ValueError(f"{service_cidr} must be from /{MIN_PREFIX} to /{MAX_PREFIX}")
    return network


def address_problem(address: str, service_cidr: str) -> str | None:
    """Why a Service may not ask for this address (None: it may, if no other holds it)."""
    network = service_network(service_cidr)
    ip = ipaddress.IPv4Address(address)
    if ip not in network:
        return f"{address} is not in service_cidr {service_cidr}"
    if ip == network.network_address:
        return f"{address} is the network address of service_cidr {service_cidr}"
    if ip == network.broadcast_address:
        return f"{address} is the broadcast address of service_cidr {service_cidr}"
    if ip == network.network_address + 1:
        return (f"{address} is reserved: the first address of service_cidr is kept for the API's own "
                "Service, as Kubernetes gives it to kubernetes.default")
    return None


def free_addresses(service_cidr: str, taken: Container[str]) -> Iterator[str]:
    """Every address a Service may get, lowest first, made only as asked for (a /12 holds a
    million: never built whole)."""
    network = service_network(service_cidr)
    first, last = int(network.network_address) + 2, int(network.broadcast_address) - 1
    for value in range(first, last + 1):  # written out: 4 times as fast as str(IPv4Address(value))
        address = f"{value >> 24}.{value >> 16 & 255}.{value >> 8 & 255}.{value & 255}"
        if address not in taken:
            yield address


def next_free_address(service_cidr: str, taken: Container[str], skip: int = 0) -> str:
    """The lowest free address, or with `skip` the one `skip` free addresses above it (the
    highest free one when fewer are left)."""
    found = _nth(free_addresses(service_cidr, taken), skip)
    if found is None:
        raise RangeFull(f"no free address left in service_cidr {service_cidr}")
    return found


def port_range(text: str) -> tuple[int, int]:
    """`LOW-HIGH` (Kubernetes' --service-node-port-range), both from 1 to 65535, LOW <= HIGH."""
    low, sep, high = text.partition("-")
    if not sep or not low.isdigit() or not high.isdigit():
        raise ValueError(f"{text!r} is not a range of ports such as 30000-32767")
    first, last = int(low), int(high)
    if not 1 <= first <= last <= 65535:
        raise ValueError(f"{text!r}: the ports must be from 1 to 65535, the first not above the last")
    return first, last


def port_problem(port: int, node_port_range: str) -> str | None:
    """Why a Service may not ask for this node port (None: it may, if no other holds it)."""
    first, last = port_range(node_port_range)
    if not first <= port <= last:
        return f"{port} is not in service_node_port_range {node_port_range}"
    return None


def next_free_port(node_port_range: str, taken: Container[int], skip: int = 0) -> int:
    """The lowest free node port, or with `skip` one further up, as next_free_address."""
    first, last = port_range(node_port_range)
    found = _nth((port for port in range(first, last + 1) if port not in taken), skip)
    if found is None:
        raise RangeFull(f"no free node port left in service_node_port_range {node_port_range}")
    return found


def _nth(free: Iterator[T], skip: int) -> T | None:
    """The free value `skip` places up, or the last one there is (None: there is none)."""
    found = None
    for index, value in enumerate(free):
        found = value
        if index >= skip:
            break
    return found
