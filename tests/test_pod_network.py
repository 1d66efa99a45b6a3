"""The agent's part of the pod network, without a kernel: routes, the host's table, the engine's
network and the informer's bookkeeping, each decided by pure functions or run against a fake."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from agent.informer import apply_event
from agent.pod_network import PodNetwork, create_network, inspect_network
from agent.routes import (
    Peer,
    Route,
    installed_routes,
    local_networks,
    peers,
    route_changes,
    vtep_mac,
    vxlan_peers,
    wanted_routes,
)
from agent.ruleset import render
from agent.services import Backend, ServicePort, service_ports

GOLDEN = Path(__file__).parent / "golden"


def node(name: str, address: str, cidr: str | None = None) -> dict:
    spec = {"address": address, **({"podCIDR": cidr} if cidr else {})}
    return {"metadata": {"name": name}, "spec": spec}


NODES = [node("h1", "10.250.0.11", "10.244.0.0/24"), node("h2", "10.250.0.12", "10.244.1.0/24"),
         node("h3", "10.250.0.13", "10.244.2.0/24"), node("new", "10.250.0.14"),  # no CIDR yet
         node("named", "host.example", "10.244.3.0/24")]  # not an address: host-gw cannot route it


LINK = ["10.250.0.0/24"]  # the network h1's interface is on


def test_routes_go_to_every_other_node_with_a_cidr_and_an_address() -> None:
    assert peers(NODES, "h1") == [Peer("h2", "10.250.0.12", "10.244.1.0/24"),
                                  Peer("h3", "10.250.0.13", "10.244.2.0/24")]
    assert wanted_routes(peers(NODES, "h1"), "host-gw", LINK) == {Route("10.244.1.0/24", "10.250.0.12"),
                                                                  Route("10.244.2.0/24", "10.250.0.13")}


def test_a_peer_off_the_link_or_every_peer_with_vxlan_goes_over_the_device() -> None:
    far = Peer("far", "192.0.2.7", "10.244.5.0/24")
    near = Peer("h2", "10.250.0.12", "10.244.1.0/24")
    assert wanted_routes([near, far], "host-gw", LINK) == {
        Route("10.244.1.0/24", "10.250.0.12"), Route("10.244.5.0/24", "10.244.5.0", "berth.vxlan")}
    assert wanted_routes([near], "vxlan", LINK) == {Route("10.244.1.0/24", "10.244.1.0", "berth.vxlan")}
    assert Route("10.244.5.0/24", "10.244.5.0", "berth.vxlan").add() == [
        "ip", "route", "replace", "10.244.5.0/24", "via", "10.244.5.0", "dev", "berth.vxlan", "onlink",
        "proto", "177"]
    assert vtep_mac("10.244.5.0/24") == "0a:58:0a:f4:05:00"
    assert vxlan_peers([far]) == [
        ["bridge", "fdb", "replace", "0a:58:0a:f4:05:00", "dev", "berth.vxlan", "dst", "192.0.2.7", "self",
         "permanent"],
        ["ip", "neigh", "replace", "10.244.5.0", "lladdr", "0a:58:0a:f4:05:00", "dev", "berth.vxlan", "nud",
         "permanent"]]


def test_local_networks_are_read_from_ip_json() -> None:
    def interface(name: str, *addresses: tuple[str, str, int]) -> dict:
        return {"ifname": name,
                "addr_info": [{"family": f, "local": a, "prefixlen": n} for f, a, n in addresses]}

    shown = json.dumps([interface("lo", ("inet", "127.0.0.1", 8)),
                        interface("eth0", ("inet", "10.250.0.11", 24), ("inet6", "fe80::1", 64)),
                        interface("berth.vxlan", ("inet", "10.244.0.0", 32))])
    assert local_networks(shown) == ["127.0.0.0/8", "10.250.0.0/24"]


@pytest.mark.parametrize(("installed", "wanted", "commands"), [
    (set(), {Route("10.244.1.0/24", "10.250.0.12")},
     [["ip", "route", "replace", "10.244.1.0/24", "via", "10.250.0.12", "proto", "177"]]),
    ({Route("10.244.1.0/24", "10.250.0.12")}, {Route("10.244.1.0/24", "10.250.0.12")}, []),
    ({Route("10.244.1.0/24", "10.250.0.12"), Route("10.244.9.0/24", "10.250.0.19")},  # a node left
     {Route("10.244.1.0/24", "10.250.0.12")},
     [["ip", "route", "del", "10.244.9.0/24", "proto", "177"]]),
    ({Route("10.244.1.0/24", "10.250.0.12")}, {Route("10.244.1.0/24", "10.250.0.22")},  # it moved
     [["ip", "route", "replace", "10.244.1.0/24", "via", "10.250.0.22", "proto", "177"]]),
])
def test_route_changes(installed: set, wanted: set, commands: list) -> None:
    assert route_changes(installed, wanted) == commands


def test_installed_routes_are_read_from_ip_json() -> None:
    shown = json.dumps([{"dst": "10.244.1.0/24", "gateway": "10.250.0.12", "dev": "eth0", "protocol": "177"},
                        {"dst": "10.244.5.0/24", "gateway": "10.244.5.0", "dev": "berth.vxlan"},
                        {"dst": "default", "gateway": "10.250.0.1"}])
    assert installed_routes(shown) == {Route("10.244.1.0/24", "10.250.0.12"),
                                       Route("10.244.5.0/24", "10.244.5.0", "berth.vxlan")}


def test_the_hosts_table_matches_its_golden_file() -> None:
    rendered = render("10.244.0.0/24", ["10.244.2.0/24", "10.244.1.0/24", "10.244.0.0/24"])
    assert rendered == (GOLDEN / "ruleset-pod-network.nft").read_text()


def test_the_engines_network_commands() -> None:
    assert create_network("podman", "10.244.1.0/24") == [
        "podman", "network", "create", "--driver", "bridge", "--subnet", "10.244.1.0/24",
        "--gateway", "10.244.1.1", "--disable-dns", "--", "berth"]
    assert create_network("docker", "10.244.1.0/24")[-4:] == [
        "--opt", "com.docker.network.bridge.enable_ip_masquerade=false", "--", "berth"]
    assert inspect_network("docker")[-2:] == ["--", "berth"]


class FakeHost:
    """The engine and the kernel as commands: which were run, and what each answers."""

    def __init__(self, subnets: str | None = None) -> None:
        self.subnets, self.routes, self.commands, self.loaded = subnets, [], [], []
        self.device = False

    def __call__(self, argv: list[str], stdin: str | None = None) -> str:
        self.commands.append(argv)
        if argv[1:3] == ["network", "inspect"]:
            if self.subnets is None:
                raise subprocess.CalledProcessError(125, argv, "", "network not found")
            return self.subnets
        if argv[1:3] == ["network", "create"]:
            self.subnets = argv[argv.index("--subnet") + 1]
        if argv[1:3] == ["network", "rm"]:
            self.subnets = None
        if argv[:3] == ["ip", "-json", "route"]:
            return json.dumps(self.routes)
        if argv[:3] == ["ip", "-json", "link"] and not self.device:
            raise subprocess.CalledProcessError(1, argv, "", 'Device "berth.vxlan" does not exist.')
        if argv[:3] == ["ip", "link", "add"]:
            self.device = True
        if argv[:3] == ["ip", "-json", "addr"]:
            return json.dumps([{"ifname": "eth0", "addr_info": [{"family": "inet", "local": "10.250.0.11",
                                                                 "prefixlen": 24}]}])
        if argv[:2] == ["nft", "-f"]:
            self.loaded.append(stdin)
        return ""


def test_a_sync_makes_the_network_routes_and_table_once(tmp_path: Path) -> None:
    host = FakeHost()
    network = PodNetwork("h1", "podman", run=host, forwarding=tmp_path / "ip_forward")
    network.sync([node("h1", "10.250.0.11")])
    assert network.problem is not None and "no pod CIDR" in network.problem and host.commands == []
    network.sync(NODES)
    assert network.problem is None
    assert (tmp_path / "ip_forward").read_text() == "1\n"
    assert ["podman", "network", "create", "--driver", "bridge", "--subnet", "10.244.0.0/24", "--gateway",
            "10.244.0.1", "--disable-dns", "--", "berth"] in host.commands
    assert len([c for c in host.commands if c[:3] == ["ip", "route", "replace"]]) == 2
    assert ["ip", "link", "add", "berth.vxlan", "type", "vxlan", "id", "1", "local", "10.250.0.11", "dstport",
            "8472", "nolearning"] in host.commands  # made whatever the backend: peers may send over it
    assert len(host.loaded) == 1
    host.commands.clear()
    host.routes = [{"dst": "10.244.1.0/24", "gateway": "10.250.0.12"},
                   {"dst": "10.244.2.0/24", "gateway": "10.250.0.13"}]
    network.sync(NODES)  # nothing changed: only looked
    assert host.commands == [["ip", "-json", "link", "show", "dev", "berth.vxlan"], ["ip", "-json", "addr"],
                             ["ip", "-json", "route", "show", "proto", "177"]] and len(host.loaded) == 1


def test_a_network_on_another_subnet_is_replaced_and_a_failure_is_the_problem(tmp_path: Path) -> None:
    host = FakeHost(subnets="10.88.0.0/16")
    network = PodNetwork("h1", "docker", run=host, forwarding=tmp_path / "ip_forward")
    network.sync(NODES)
    assert ["docker", "network", "rm", "--", "berth"] in host.commands and host.subnets == "10.244.0.0/24"

    def refusing(argv: list[str], stdin: str | None = None) -> str:
        if argv[0] == "nft":
            raise subprocess.CalledProcessError(1, argv, "", "Error: Could not process rule")
        return host(argv, stdin)

    broken = PodNetwork("h1", "docker", run=refusing, forwarding=tmp_path / "ip_forward")
    broken.sync(NODES)
    assert broken.problem == "setting up the pod network failed: exit status 1: Error: Could not process rule"


def test_the_informer_keeps_the_set_by_events() -> None:
    objects: dict = {}
    h1 = {"metadata": {"name": "h1", "resourceVersion": 3}}
    assert apply_event(objects, {"type": "ADDED", "object": h1}) and objects == {("", "h1"): h1}
    assert not apply_event(objects, {"type": "BOOKMARK", "revision": 9})
    assert apply_event(objects, {"type": "DELETED", "object": {"metadata": {"name": "h1"}}}) and not objects
    assert not apply_event(objects, {"type": "DELETED", "object": {"metadata": {"name": "h1"}}})


SERVICE = {"metadata": {"namespace": "default", "name": "web"},
           "spec": {"type": "NodePort", "clusterIP": "10.96.0.10", "selector": {"app": "web"},
                    "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP",
                               "nodePort": 30080},
                              {"name": "dns", "port": 53, "targetPort": 53, "protocol": "UDP",
                               "nodePort": 30053}]}}
ENDPOINTS = {"metadata": {"namespace": "default", "name": "web"}, "subsets": [
    {"addresses": [{"ip": "10.244.1.5"}, {"ip": "10.244.0.5"}], "notReadyAddresses": [{"ip": "10.244.2.9"}],
     "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]},
    {"addresses": [{"ip": "10.244.2.7"}], "ports": [{"name": "http", "port": 8081, "protocol": "TCP"}]}]}


def test_service_ports_join_services_to_their_ready_backends() -> None:
    sticky = {"metadata": {"namespace": "shop", "name": "cart"},
              "spec": {"clusterIP": "10.96.0.11", "sessionAffinity": "ClientIP",
                       "ports": [{"port": 80, "protocol": "TCP"}]}}
    headless = {"metadata": {"namespace": "shop", "name": "odd"}, "spec": {"clusterIP": "None", "ports": []}}
    ports = service_ports([SERVICE, sticky, headless], [ENDPOINTS])
    assert [(p.service, p.port_name, p.protocol, p.node_port, p.affinity_seconds) for p in ports] == [
        ("web", "dns", "udp", 30053, None), ("web", "http", "tcp", 30080, None),
        ("cart", "", "tcp", None, 10800)]
    http = ports[1]
    assert http.backends == (Backend("10.244.0.5", 8080), Backend("10.244.1.5", 8080),
                             Backend("10.244.2.7", 8081))  # not the not-ready one; two subsets' numbers
    assert ports[0].backends == () and ports[2].backends == ()


def test_names_that_are_not_labels_never_reach_the_ruleset() -> None:
    evil = {"metadata": {"namespace": "default", "name": "x; flush ruleset"},
            "spec": {"clusterIP": "10.96.0.12", "ports": [{"port": 80}]}}
    bad_ip = {"metadata": {"namespace": "default", "name": "y"},
              "spec": {"clusterIP": "10.96.0.12 } ; flush", "ports": [{"port": 80}]}}
    assert service_ports([evil, bad_ip], []) == []


def test_the_services_table_matches_its_golden_file() -> None:
    sticky = ServicePort("default", "sticky", "", "tcp", "10.96.0.11", 80, None, 600,
                         (Backend("10.244.0.6", 80),))
    resolver = ServicePort("default", "resolver", "", "udp", "10.96.0.12", 53, 30054, None,
                           (Backend("10.244.1.8", 5353), Backend("10.244.2.8", 5353)))  # UDP, with backends
    rendered = render("10.244.0.0/24", ["10.244.1.0/24"],
                      [*service_ports([SERVICE], [ENDPOINTS]), sticky, resolver])
    assert rendered == (GOLDEN / "ruleset-services.nft").read_text()


@pytest.mark.skipif(os.geteuid() != 0, reason="a network namespace of its own needs root")
@pytest.mark.parametrize("golden", ["ruleset-pod-network.nft", "ruleset-services.nft"])
def test_the_kernel_takes_the_rendered_tables(golden: str) -> None:
    """Checked by nft itself (`-c`: parsed and validated by the kernel, not committed), in a
    network namespace made for the command alone."""
    checked = subprocess.run(["unshare", "--net", "nft", "-c", "-f", str(GOLDEN / golden)],
                             capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
