"""The agent's cluster DNS: the names it answers (pure), then a real server on loopback asked
over UDP, forwarding what is not the cluster's to another real server."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from dnslib import QTYPE, RCODE, RR, A, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from agent.cluster_dns import Answer, ClusterDns, lookup, service_records, upstream_servers

SERVICES = [
    {"metadata": {"namespace": "default", "name": "web"}, "spec": {"clusterIP": "10.96.0.10"}},
    {"metadata": {"namespace": "shop", "name": "Cart"}, "spec": {"clusterIP": "10.96.0.11"}},  # not a label
    {"metadata": {"namespace": "shop", "name": "headless"}, "spec": {"clusterIP": "None"}},
]
RECORDS = service_records(SERVICES)


def test_records_are_the_services_with_an_address() -> None:
    assert RECORDS == {"web.default.svc.cluster.local.": "10.96.0.10"}


@pytest.mark.parametrize(("name", "qtype", "answer"), [
    ("web.default.svc.cluster.local.", "A", Answer("NOERROR", "10.96.0.10")),
    ("WEB.default.svc.cluster.local", "A", Answer("NOERROR", "10.96.0.10")),  # names are case-blind
    ("web.default.svc.cluster.local.", "AAAA", Answer("NOERROR")),  # it exists: no such record
    ("nope.default.svc.cluster.local.", "A", Answer("NXDOMAIN")),
    ("web.default.svc.cluster.local.default.svc.cluster.local.", "A", Answer("NXDOMAIN")),  # ndots:5 tries
    ("cluster.local.", "A", Answer("NXDOMAIN")),
    ("example.org.", "A", Answer("FORWARD")),
    ("web.", "A", Answer("FORWARD")),  # a search list completes short names before they get here
])
def test_lookup(name: str, qtype: str, answer: Answer) -> None:
    assert lookup(name, qtype, RECORDS) == answer


def test_upstreams_come_from_resolv_conf_and_never_itself() -> None:
    text = "# generated\nsearch lan\nnameserver 10.244.0.1\nnameserver 192.0.2.53\noptions ndots:1\n"
    assert upstream_servers(text, own="10.244.0.1") == [("192.0.2.53", 53)]


def ask(port: int, name: str, qtype: str = "A") -> DNSRecord:
    return DNSRecord.parse(DNSRecord.question(name, qtype).send("127.0.0.1", port, timeout=3))


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Elsewhere(BaseResolver):
    """An upstream resolver that knows every name outside the cluster as 192.0.2.1."""

    def resolve(self, request: DNSRecord, handler: object) -> DNSRecord:
        reply = request.reply()
        reply.add_answer(RR(request.q.qname, QTYPE.A, ttl=60, rdata=A("192.0.2.1")))
        return reply


def test_a_real_server_answers_and_forwards(tmp_path: Path) -> None:
    port, upstream_port = free_udp_port(), free_udp_port()
    upstream = DNSServer(Elsewhere(), address="127.0.0.1", port=upstream_port,
                         logger=DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data"))
    upstream.start_thread()
    upstreams = [("127.0.0.1", upstream_port)]
    cluster = ClusterDns(resolv_conf=str(tmp_path / "absent"), port=port, upstreams=upstreams)
    cluster.services_changed(SERVICES)
    cluster.serve("127.0.0.1")
    try:
        reply = ask(port, "web.default.svc.cluster.local")
        assert [(str(r.rdata), r.ttl) for r in reply.rr] == [("10.96.0.10", 5)]
        assert ask(port, "gone.default.svc.cluster.local").header.rcode == RCODE.NXDOMAIN  # never forwarded
        assert [str(r.rdata) for r in ask(port, "example.org").rr] == ["192.0.2.1"]  # the upstream's answer
        cluster.services_changed([])  # a service deleted: its name goes at once
        assert ask(port, "web.default.svc.cluster.local").header.rcode == RCODE.NXDOMAIN
    finally:
        cluster.stop()
        upstream.stop()
        upstream.server.server_close()
    down = ClusterDns(resolv_conf=str(tmp_path / "absent"), port=port, upstreams=upstreams)
    down.serve("127.0.0.1")
    try:  # the upstream gone: the pod is told at once (SERVFAIL), not left to time out
        assert ask(port, "example.org").header.rcode == RCODE.SERVFAIL
    finally:
        down.stop()
