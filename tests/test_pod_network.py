"""The agent's part of the pod network, without a kernel: routes, the host's table, the engine's
network and the informer's bookkeeping, each decided by pure functions or run against a fake."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from agent.informer import apply_event
from agent.pod_network import PodNetwork, create_network, inspect_network
from agent.routes import Route, installed_routes, route_changes, wanted_routes
from agent.ruleset import render

GOLDEN = Path(__file__).parent / "golden"


def node(name: str, address: str, cidr: str | None = None) -> dict:
    spec = {"address": address, **({"podCIDR": cidr} if cidr else {})}
    return {"metadata": {"name": name}, "spec": spec}


NODES = [node("h1", "10.250.0.11", "10.244.0.0/24"), node("h2", "10.250.0.12", "10.244.1.0/24"),
         node("h3", "10.250.0.13", "10.244.2.0/24"), node("new", "10.250.0.14"),  # no CIDR yet
         node("named", "host.example", "10.244.3.0/24")]  # not an address: host-gw cannot route it


def test_routes_go_to_every_other_node_with_a_cidr_and_an_address() -> None:
    assert wanted_routes(NODES, "h1") == {Route("10.244.1.0/24", "10.250.0.12"),
                                          Route("10.244.2.0/24", "10.250.0.13")}


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
                        {"dst": "default", "gateway": "10.250.0.1"}])
    assert installed_routes(shown) == {Route("10.244.1.0/24", "10.250.0.12")}


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
    assert len(host.loaded) == 1
    host.commands.clear()
    host.routes = [{"dst": "10.244.1.0/24", "gateway": "10.250.0.12"},
                   {"dst": "10.244.2.0/24", "gateway": "10.250.0.13"}]
    network.sync(NODES)  # nothing changed: only looked
    assert host.commands == [["ip", "-json", "route", "show", "proto", "177"]] and len(host.loaded) == 1


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
