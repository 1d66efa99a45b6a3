"""The cluster's DNS, served by each agent to its own host's pods, with dnslib.

Why in the agent, with a library, rather than a daemon (dnsmasq) fed a hosts file: the agent
already holds every Service through its informer (informer.py), so names follow a change as
soon as the data path does, with no file written, no reload signalled and no second process
to supervise and keep within the agent's footprint; and dnslib is a complete wire-format
implementation (parsing, compression, truncation), so no packet is built by hand here.

Each host's pods are given this host's bridge address as their resolver, with Kubernetes'
search list (berth/podnet.py): a Service answers as `NAME.NAMESPACE.svc.cluster.local`, an A
record of its cluster IP; any other name under the cluster domain is NXDOMAIN; everything
else goes on to the host's own resolvers (/etc/resolv.conf), as CoreDNS forwards it.

The server binds the bridge address before the engine has made the bridge (IP_FREEBIND):
the engine brings it up only with the first pod, and the address must answer from then on.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
from dataclasses import dataclass
from typing import Any

from dnslib import QTYPE, RCODE, RR, A, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer, UDPServer

from berth.objects import Obj
from berth.podnet import CLUSTER_DOMAIN, ipv4_address

log = logging.getLogger(__name__)
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
IP_FREEBIND = 15  # linux/in.h; not in Python's socket module
TTL = 5  # seconds: a changed service is seen soon, as CoreDNS's default of 5
FORWARD_TIMEOUT = 2.0


def service_records(services: list[Obj], domain: str = CLUSTER_DOMAIN) -> dict[str, str]:
    """Full name (lower case, with the root's dot) to cluster IP, for each Service that has one."""
    records = {}
    for service in services:
        meta = service.get("metadata") or {}
        namespace, name = meta.get("namespace"), meta.get("name")
        address = ipv4_address((service.get("spec") or {}).get("clusterIP"))
        if address and all(isinstance(part, str) and _LABEL.match(part) for part in (namespace, name)):
            records[f"{name}.{namespace}.svc.{domain}."] = address
    return records


@dataclass(frozen=True)
class Answer:
    rcode: str  # "NOERROR", "NXDOMAIN", or "FORWARD" (not a cluster name: the host's resolvers say)
    address: str | None = None  # an A record's, when there is one


def lookup(name: str, qtype: str, records: dict[str, str], domain: str = CLUSTER_DOMAIN) -> Answer:
    """What the cluster says of one question. A service's name asked for another type than A
    (AAAA, say) exists but has no such record: NOERROR without an answer, so a resolver goes on
    to the A record instead of giving up."""
    asked = name.lower() if name.endswith(".") else f"{name.lower()}."
    if asked in records:
        return Answer("NOERROR", records[asked] if qtype in ("A", "ANY") else None)
    if asked == f"{domain}." or asked.endswith(f".{domain}."):
        return Answer("NXDOMAIN")
    return Answer("FORWARD")


def upstream_servers(resolv_conf: str, own: str) -> list[tuple[str, int]]:
    """The host's resolvers, from resolv.conf's text (never this server itself)."""
    found = []
    for line in resolv_conf.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver" and parts[1] != own:
            found.append((parts[1], 53))
    return found


class _Resolver(BaseResolver):
    def __init__(self, upstreams: list[tuple[str, int]]) -> None:
        self.upstreams = upstreams
        self.records: dict[str, str] = {}  # replaced whole on each change: readers never see half

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        reply = request.reply()
        question = request.q
        answer = lookup(str(question.qname), QTYPE[question.qtype], self.records)
        if answer.rcode == "FORWARD":
            return self._forward(request, reply)
        if answer.rcode == "NXDOMAIN":
            reply.header.rcode = RCODE.NXDOMAIN
        elif answer.address:
            reply.add_answer(RR(question.qname, QTYPE.A, ttl=TTL, rdata=A(answer.address)))
        return reply

    def _forward(self, request: DNSRecord, reply: DNSRecord) -> DNSRecord:
        for host, port in self.upstreams:
            try:
                return DNSRecord.parse(request.send(host, port, timeout=FORWARD_TIMEOUT))
            except Exception as err:  # OSError, a timeout, or dnslib's own DNSError on a bad answer
                log.debug("cluster DNS: forwarding to %s:%d failed: %s", host, port, err)
        reply.header.rcode = RCODE.SERVFAIL
        return reply


class _FreeBindUDPServer(UDPServer):
    def server_bind(self) -> None:
        self.socket.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
        super().server_bind()


class ClusterDns:
    def __init__(self, resolv_conf: str = "/etc/resolv.conf", port: int = 53,
                 upstreams: list[tuple[str, int]] | None = None) -> None:
        """`upstreams`: where other names go (default: resolv_conf's nameservers)."""
        self.resolv_conf = resolv_conf
        self.port = port
        self.upstreams = upstreams
        self.address: str | None = None
        self._resolver = _Resolver([])
        self._server: DNSServer | None = None
        self._lock = threading.Lock()

    def services_changed(self, services: list[Obj]) -> None:
        self._resolver.records = service_records(services)

    def serve(self, address: str) -> None:
        """Answer on `address` (this host's bridge address) from now on; a new address (the node
        was given another pod CIDR) moves the server."""
        with self._lock:
            if address == self.address:
                return
            self.stop()
            try:
                with open(self.resolv_conf) as resolv:
                    found = upstream_servers(resolv.read(), address)
            except OSError:
                found = []
            self._resolver.upstreams = found if self.upstreams is None else self.upstreams
            server = DNSServer(self._resolver, address=address, port=self.port, server=_FreeBindUDPServer,
                               logger=DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data",
                                                logf=lambda line: log.debug("%s", line)))
            server.start_thread()
            self._server, self.address = server, address
            log.info("cluster DNS answering on %s:%d (forwarding to %s)", address, self.port,
                     ", ".join(f"{h}:{p}" for h, p in self._resolver.upstreams) or "nothing")

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server.server.server_close()
            self._server, self.address = None, None
