"""Services and their Endpoints, as the host's data path needs them: pure, no I/O.

The masters give each Service its virtual address (and node ports) and keep its Endpoints,
the ready pods behind each port; what a host needs of both is one list of `ServicePort`s,
each a virtual address, port and protocol with the pod addresses and ports it spreads
over. Everything read here came through the API, which validated it; it is checked again
(addresses parsed, names matched against DNS labels) because it becomes nftables text.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from berth.objects import Obj
from berth.podnet import ipv4_address

_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
PROTOCOLS = {"TCP": "tcp", "UDP": "udp"}


@dataclass(frozen=True, order=True)
class Backend:
    ip: str
    port: int


@dataclass(frozen=True, order=True)
class ServicePort:
    namespace: str
    service: str
    port_name: str  # "" for a service's only, unnamed port
    protocol: str  # nft's: "tcp" or "udp"
    cluster_ip: str
    port: int
    node_port: int | None
    affinity_seconds: int | None  # ClientIP affinity's timeout; None: every connection spread anew
    backends: tuple[Backend, ...]

    @property
    def chain(self) -> str:
        """A chain name of its own: readable, and unique by a hash of what it names."""
        key = f"{self.namespace}/{self.service}/{self.port_name}/{self.protocol}"
        digest = hashlib.sha256(key.encode()).hexdigest()[:8]
        named = f"-{self.port_name}" if self.port_name else ""
        return f"svc-{digest}-{self.namespace}-{self.service}{named}"


def _port(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536 else None


def _backends(endpoints: Obj | None, port_name: str, protocol: str) -> tuple[Backend, ...]:
    """The ready addresses with the port of this name, from every subset of the Endpoints."""
    found = set()
    for subset in (endpoints or {}).get("subsets") or []:
        if not isinstance(subset, dict):
            continue
        ports = [p for p in subset.get("ports") or [] if isinstance(p, dict)
                 and (p.get("name") or "") == port_name
                 and PROTOCOLS.get(p.get("protocol", "TCP")) == protocol]
        for port in ports:
            for address in subset.get("addresses") or []:
                ip, number = ipv4_address((address or {}).get("ip")), _port(port.get("port"))
                if ip and number:
                    found.add(Backend(ip, number))
    return tuple(sorted(found))


def _affinity(spec: Obj) -> int | None:
    if spec.get("sessionAffinity") != "ClientIP":
        return None
    timeout = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}).get("timeoutSeconds")
    return timeout if isinstance(timeout, int) and 0 < timeout <= 86400 else 10800  # Kubernetes' default


def _ports_of(service: Obj, endpoints: Obj | None) -> list[ServicePort]:
    meta, spec = service.get("metadata") or {}, service.get("spec") or {}
    namespace, name, cluster_ip = meta.get("namespace"), meta.get("name"), ipv4_address(spec.get("clusterIP"))
    if not (isinstance(namespace, str) and _LABEL.match(namespace) and isinstance(name, str)
            and _LABEL.match(name) and cluster_ip):
        return []
    found = []
    for port in spec.get("ports") or []:
        port = port if isinstance(port, dict) else {}
        port_name, protocol = port.get("name") or "", PROTOCOLS.get(port.get("protocol", "TCP"))
        number = _port(port.get("port"))
        if not (protocol and number and (not port_name or _LABEL.match(port_name))):
            continue
        node_port = _port(port.get("nodePort")) if spec.get("type") == "NodePort" else None
        found.append(ServicePort(namespace, name, port_name, protocol, cluster_ip, number, node_port,
                                 _affinity(spec), _backends(endpoints, port_name, protocol)))
    return found


def service_ports(services: list[Obj], endpoints: list[Obj]) -> list[ServicePort]:
    """Each port of each Service with a virtual address, with its ready backends (sorted, so an
    unchanged cluster renders an unchanged table)."""
    by_key = {((e.get("metadata") or {}).get("namespace"), (e.get("metadata") or {}).get("name")): e
              for e in endpoints}
    return sorted(p for service in services for p in _ports_of(
        service, by_key.get(((service.get("metadata") or {}).get("namespace"),
                             (service.get("metadata") or {}).get("name")))))
