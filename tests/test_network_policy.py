"""NetworkPolicies without a kernel: the schema (4xx naming the field), Kubernetes' selection and
peer semantics resolved per pod (table tests), the rendered rules (a golden file the kernel takes),
and the CLI's column."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.informer import spread
from agent.network_policy import Allow, PodRules, Ports, resolve, selects
from agent.pod_network import LIST_WAIT_SECONDS, PodNetwork
from agent.ruleset import render
from berth.cli.columns import label_selector_text
from berth.cli.describe_policies import describe_policy
from berth.cli.output import render_objects
from master.errors import ApiError
from master.objects.validate import validate_object
from tests.harness import MasterCluster
from tests.test_pod_network import NODES, FakeHost

GOLDEN = Path(__file__).parent / "golden"


def policy(spec: dict, name: str = "p", namespace: str = "default") -> dict:
    return {"apiVersion": "berth/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


# --- the schema ------------------------------------------------------------------------

def test_a_policy_is_stored_with_kubernetes_defaults() -> None:
    stored = validate_object(policy({"podSelector": {"matchLabels": {"app": "db"}},
                                     "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8",
                                                                        "except": ["10.1.0.0/16"]}}],
                                                  "ports": [{"port": "http"},
                                                            {"port": "80", "endPort": 90}]}]}))
    spec = stored["spec"]
    assert spec["policyTypes"] == ["Ingress"]  # no egress rules: Ingress alone
    assert spec["ingress"][0]["from"][0]["ipBlock"]["except"] == ["10.1.0.0/16"]  # the wire's names
    assert spec["ingress"][0]["ports"] == [{"protocol": "TCP", "port": "http"},
                                           {"protocol": "TCP", "port": 80, "endPort": 90}]
    with_egress = validate_object(policy({"podSelector": {}, "egress": [{"ports": [{"port": 53,
                                                                                    "protocol": "UDP"}]}]}))
    assert with_egress["spec"]["policyTypes"] == ["Ingress", "Egress"]


@pytest.mark.parametrize(("spec", "field", "says"), [
    ({}, "spec.podSelector", "required"),
    ({"podSelector": {}, "ingress": [{"from": [{}]}]}, "spec.ingress[0].from[0]", "needs podSelector"),
    ({"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}]},
     "spec.ingress[0].from[0]", "may not be combined"),
    ({"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8",
                                                         "except": ["11.0.0.0/16"]}}]}]},
     "spec.egress[0].to[0].ipBlock", "strictly within"),
    ({"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.1/8"}}]}]},
     "spec.egress[0].to[0].ipBlock.cidr", "host bits set"),
    ({"podSelector": {}, "ingress": [{"ports": [{"port": "http", "endPort": 90}]}]},
     "spec.ingress[0].ports[0]", "endPort needs port to be a number"),
    ({"podSelector": {}, "ingress": [{"ports": [{"port": 90, "endPort": 80}]}]},
     "spec.ingress[0].ports[0]", "must not be less"),
    ({"podSelector": {}, "ingress": [{"ports": [{"port": 80, "protocol": "SCTP"}]}]},
     "spec.ingress[0].ports[0].protocol", ""),
    ({"podSelector": {}, "ingress": [{"ports": [{"port": 70000}]}]}, "spec.ingress[0].ports[0].port", ""),
    ({"podSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}},
     "spec.podSelector.matchExpressions[0]", "values must not be empty"),
    ({"podSelector": {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}},
     "spec.podSelector.matchExpressions[0]", "values must be empty"),
    ({"podSelector": {}, "policyTypes": ["Ingress", "Ingress"]}, "spec", "must not repeat"),
    ({"podSelector": {}, "policyTypes": ["Sideways"]}, "spec.policyTypes[0]", ""),
    ({"podSelector": {}, "ingress": [{"from_": []}]}, "spec.ingress[0].from_", "Extra inputs"),
])
def test_a_policy_that_cannot_hold_is_a_400_naming_the_field(spec: dict, field: str, says: str) -> None:
    with pytest.raises(ApiError) as refused:
        validate_object(policy(spec))
    assert refused.value.status == 400 and refused.value.field == field, refused.value.message
    assert says in refused.value.message


# --- selection ---------------------------------------------------------------------------

@pytest.mark.parametrize(("selector", "labels", "expected"), [
    ({}, {}, True),
    ({"matchLabels": {"app": "a"}}, {"app": "a", "x": "y"}, True),
    ({"matchLabels": {"app": "a"}}, {"app": "b"}, False),
    ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]}]}, {"tier": "api"},
     True),
    ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]}, {}, False),
    ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["web"]}]}, {}, True),
    ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["web"]}]}, {"tier": "web"}, False),
    ({"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}, {"gpu": ""}, True),
    ({"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]}, {"gpu": ""}, False),
    ({"matchExpressions": [{"key": "gpu", "operator": "Sometimes"}]}, {"gpu": ""}, False),
    (None, {}, False),  # unreadable: selects nothing, never everything
])
def test_selectors(selector: Any, labels: dict, expected: bool) -> None:
    assert selects(selector, labels) is expected


def pod(name: str, ip: str | None, node: str, labels: dict | None = None, namespace: str = "default",
        ports: tuple[dict, ...] = (), phase: str = "Running") -> dict:
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
            "spec": {"nodeName": node, "containers": [{"ports": list(ports)}]},
            "status": {"phase": phase, **({"podIP": ip} if ip else {})}}


HTTP = {"name": "http", "containerPort": 8080, "protocol": "TCP"}
PODS = [pod("server", "10.244.0.5", "h1", {"app": "server"}, ports=(HTTP,)),
        pod("server-2", "10.244.0.6", "h1", {"app": "server"}, ports=({**HTTP, "containerPort": 8081},)),
        pod("far-server", "10.244.1.6", "h2", {"app": "server"}, ports=(HTTP,)),
        pod("client", "10.244.1.5", "h2", {"role": "client"}),
        pod("near", "10.244.0.7", "h1", {"role": "other"}),
        pod("ops", "10.244.2.9", "h3", {"role": "client"}, namespace="monitoring"),
        pod("done", "10.244.2.10", "h3", {"role": "client"}, phase="Succeeded"),  # no peer: gone
        pod("pending", None, "h1", {"app": "server"})]  # no address yet: nothing to filter
NAMESPACES = [{"metadata": {"name": "monitoring", "labels": {"team": "ops"}}}]


def server_policy(ingress: list) -> dict:
    return policy({"podSelector": {"matchLabels": {"app": "server"}}, "policyTypes": ["Ingress"],
                   "ingress": ingress})


def rules_of(policies: list[dict], node: str = "h1") -> dict[str, PodRules]:
    return {r.name: r for r in resolve(policies, PODS, NAMESPACES, node)}


def test_without_policies_every_pod_is_open() -> None:
    assert resolve([], PODS, NAMESPACES, "h1") == []


@pytest.mark.parametrize(("ingress", "expected"), [
    ([], ()),  # isolated, nothing allowed
    ([{}], (Allow(None, None),)),  # everyone, every port
    ([{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}]}],
     (Allow(("10.244.1.5",), None),)),  # the policy's namespace only: not ops
    ([{"from": [{"namespaceSelector": {"matchLabels": {"team": "ops"}}}]}], (Allow(("10.244.2.9",), None),)),
    ([{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "default"}},
                 "podSelector": {"matchLabels": {"role": "client"}}}]}], (Allow(("10.244.1.5",), None),)),
    ([{"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"role": "client"}}}]}],
     (Allow(("10.244.1.5", "10.244.2.9"), None),)),
    ([{"from": [{"podSelector": {"matchLabels": {"role": "nobody"}}}]}], ()),  # no peer: nothing
    ([{"from": [{"ipBlock": {"cidr": "192.168.0.0/16", "except": ["192.168.1.0/24"]}}]}],
     (Allow(("192.168.0.0/24", "192.168.2.0/23", "192.168.4.0/22", "192.168.8.0/21", "192.168.16.0/20",
             "192.168.32.0/19", "192.168.64.0/18", "192.168.128.0/17"), None),)),
    ([{"ports": [{"port": 80}, {"port": 9000, "endPort": 9100}, {"port": 53, "protocol": "UDP"}]}],
     (Allow(None, (Ports("tcp", ((80, 80), (9000, 9100))), Ports("udp", ((53, 53),)))),)),
    ([{"ports": [{"protocol": "UDP"}, {"port": 53, "protocol": "UDP"}]}], (Allow(None, (Ports("udp"),)),)),
    ([{"ports": [{"port": "http"}]}], (Allow(None, (Ports("tcp", ((8080, 8080),)),)),)),  # the server's
    ([{"ports": [{"port": "http", "protocol": "UDP"}]}], ()),  # no such named port: nothing
])
def test_ingress_rules_resolve_as_kubernetes_reads_them(ingress: list, expected: tuple) -> None:
    assert rules_of([server_policy(ingress)])["server"] == PodRules("10.244.0.5", "default", "server",
                                                                   expected, None)


def test_only_this_nodes_selected_pods_with_an_address_get_rules_and_named_ports_are_each_pods() -> None:
    found = rules_of([server_policy([{"ports": [{"port": "http"}]}])])
    assert sorted(found) == ["server", "server-2"]  # not near (not selected), far-server (h2), pending
    assert found["server-2"].ingress == (Allow(None, (Ports("tcp", ((8081, 8081),)),)),)
    assert rules_of([server_policy([])], node="h2")["far-server"].ingress == ()


def test_several_policies_add_up_and_directions_are_apart() -> None:
    clients = server_policy([{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}]}])
    ops = {**server_policy([{"from": [{"namespaceSelector": {"matchLabels": {"team": "ops"}}}]}]),
           "metadata": {"name": "ops", "namespace": "default"}}
    out = policy({"podSelector": {"matchLabels": {"app": "server"}}, "policyTypes": ["Egress"]}, name="out")
    server = rules_of([clients, ops, out])["server"]
    assert set(server.ingress or ()) == {Allow(("10.244.1.5",), None), Allow(("10.244.2.9",), None)}
    assert server.egress == ()  # egress isolated by `out`, which allows nothing
    elsewhere = policy({"podSelector": {}}, namespace="monitoring")  # isolates monitoring's pods only
    assert rules_of([elsewhere]) == {}


def test_egress_named_ports_are_each_peers_and_an_ip_block_is_a_peer() -> None:
    out = policy({"podSelector": {"matchLabels": {"role": "other"}}, "policyTypes": ["Egress"], "egress": [
        {"to": [{"podSelector": {"matchLabels": {"app": "server"}}}], "ports": [{"port": "http"}]},
        {"to": [{"ipBlock": {"cidr": "10.250.0.0/24"}}], "ports": [{"port": 22}]},
        {"ports": [{"port": 53, "protocol": "UDP"}]}]})
    near = rules_of([out])["near"]
    assert near.ingress is None
    assert set(near.egress or ()) == {
        Allow(endpoints=(("10.244.0.5", "tcp", 8080), ("10.244.0.6", "tcp", 8081),
                         ("10.244.1.6", "tcp", 8080))),
        Allow(("10.250.0.0/24",), (Ports("tcp", ((22, 22),)),)),
        Allow(None, (Ports("udp", ((53, 53),)),))}


# --- the table ---------------------------------------------------------------------------

def golden_policies() -> list[PodRules]:
    clients = server_policy([{"from": [{"podSelector": {"matchLabels": {"role": "client"}}},
                                       {"namespaceSelector": {"matchLabels": {"team": "ops"}}}],
                              "ports": [{"port": "http"}, {"port": 9000, "endPort": 9100}]}])
    out = policy({"podSelector": {"matchLabels": {"role": "other"}}, "policyTypes": ["Ingress", "Egress"],
                  "ingress": [{}], "egress": [
                      {"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.244.0.0/16"]}}]},
                      {"to": [{"podSelector": {"matchLabels": {"app": "server"}}}],
                       "ports": [{"port": "http"}]},
                      {"ports": [{"port": 53, "protocol": "UDP"}, {"protocol": "TCP"}]}]}, name="out")
    return resolve([clients, out], PODS, NAMESPACES, "h1")


def test_the_policies_table_matches_its_golden_file() -> None:
    rendered = render("10.244.0.0/24", ["10.244.1.0/24"], [], golden_policies())
    assert rendered == (GOLDEN / "ruleset-policies.nft").read_text()
    assert "policy-forward" not in render("10.244.0.0/24", ["10.244.1.0/24"], [], [])  # none: no hook at all


def test_pods_with_the_same_rules_share_a_chain_and_peers_a_set() -> None:
    replicas = [pod(f"web-{i}", f"10.244.0.{10 + i}", "h1", {"app": "server"}, ports=(HTTP,))
                for i in range(5)]
    clients = {"from": [{"podSelector": {"matchLabels": {"role": "client"}}}]}
    both = [server_policy([clients]), {**server_policy([{**clients, "ports": [{"port": "http"}]}]),
                                       "metadata": {"name": "two", "namespace": "default"}}]
    rendered = render("10.244.0.0/24", [], [], resolve(both, [*PODS, *replicas], NAMESPACES, "h1"))
    assert rendered.count("chain np-ingress-") == 2  # server and web-*: one chain; server-2 its own port
    assert rendered.count("set np-peers-") == 1  # the clients, once


@pytest.mark.skipif(os.geteuid() != 0, reason="a network namespace of its own needs root")
def test_the_kernel_takes_the_policies_table() -> None:
    checked = subprocess.run(["unshare", "--net", "nft", "-c", "-f", str(GOLDEN / "ruleset-policies.nft")],
                             capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr


def test_a_sync_with_policies_turns_bridge_netfilter_on_and_loads_them(tmp_path: Path) -> None:
    host, bridge = FakeHost(), tmp_path / "bridge-nf-call-iptables"
    bridge.write_text("0\n")
    network = PodNetwork("h1", "podman", run=host, forwarding=tmp_path / "ip_forward", bridge_filter=bridge)
    network.sync(NODES, [], golden_policies())
    assert network.problem is None and bridge.read_text() == "1\n"
    assert "chain policy-forward" in host.loaded[-1]
    missing = PodNetwork("h1", "podman", run=FakeHost(), forwarding=tmp_path / "ip_forward",
                         bridge_filter=tmp_path / "absent")
    missing.sync(NODES, [], golden_policies())
    assert missing.problem is None  # said in the log: only same-host traffic would pass unfiltered


# --- the CLI -----------------------------------------------------------------------------

@pytest.mark.parametrize(("selector", "text"), [
    ({}, "<none>"),
    ({"matchLabels": {"app": "db"}}, "app=db"),
    ({"matchLabels": {"app": "db"}, "matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["a", "b"]}, {"key": "gpu", "operator": "Exists"},
        {"key": "spot", "operator": "DoesNotExist"}, {"key": "x", "operator": "NotIn", "values": ["y"]}]},
     "app=db,tier in (a,b),gpu,!spot,x notin (y)"),
])
def test_the_pod_selector_column_is_kubectls(selector: dict, text: str) -> None:
    assert label_selector_text(selector) == text


def test_the_describe_page_is_laid_out_as_kubectls() -> None:
    stored = validate_object(policy({"podSelector": {"matchLabels": {"app": "server"}}, "ingress": [
        {"from": [{"podSelector": {"matchLabels": {"role": "client"}}},
                  {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
         "ports": [{"port": "http"}, {"port": 9000, "endPort": 9100}]}]}, name="server-in"))
    page = describe_policy(stored, [], datetime.now(UTC))
    assert "  PodSelector:     app=server (Allowing the specific traffic to pods in this namespace)" in page
    assert "    To Port: http/TCP\n    To Port: 9000-9100/TCP\n    From:\n      PodSelector: role=client\n" \
           "      IPBlock:\n        CIDR: 10.0.0.0/8\n        Except: 10.1.0.0/16\n" in page
    assert "  Not affecting egress traffic" in page and "Policy Types:       Ingress" in page
    isolated = validate_object(policy({"podSelector": {}, "policyTypes": ["Egress"]}))
    assert "    <none> (Selected pods are isolated for egress connectivity)" in describe_policy(
        isolated, [], datetime.now(UTC))


def test_get_netpol_shows_kubectls_columns() -> None:
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    stored = validate_object(policy({"podSelector": {"matchLabels": {"app": "db"}}}, name="db-in"))
    stored["metadata"]["creationTimestamp"] = "2026-11-30T11:55:00Z"
    everyone = validate_object(policy({"podSelector": {}}, name="deny-all"))
    everyone["metadata"]["creationTimestamp"] = "2026-11-30T10:00:00Z"
    table = render_objects("NetworkPolicy", [stored, everyone], None, now=now).splitlines()
    assert table[0].split() == ["NAME", "POD-SELECTOR", "AGE"]
    assert table[1].split() == ["db-in", "app=db", "5m"]
    assert table[2].split() == ["deny-all", "<none>", "120m"]


# --- through the API ---------------------------------------------------------------------

def test_the_api_stores_a_policy_and_refuses_one_that_cannot_hold(cluster: MasterCluster) -> None:
    admin, viewer = cluster.session("admin"), cluster.session("viewer")
    url = cluster.url(0, "/api/v1/namespaces/default/networkpolicies")
    good = policy({"podSelector": {"matchLabels": {"app": "db"}},
                   "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}]}]},
                  name="db-in")
    created = admin.post(url, json=good)
    assert created.status_code == 201, created.text
    assert created.json()["spec"]["policyTypes"] == ["Ingress"]
    listed = viewer.get(cluster.url(1, "/api/v1/networkpolicies?consistent=1")).json()["items"]
    assert [p["metadata"]["name"] for p in listed] == ["db-in"]
    assert viewer.post(url, json={**good, "metadata": {"name": "x"}}).status_code == 403
    across = admin.post(url, json=policy({"podSelector": {}, "ingress": [{"from": [{}]}]}, name="bad"))
    assert across.status_code == 422 and across.json()["field"] == "spec.ingress[0].from[0]", across.text
    schema = admin.post(url, json=policy({"podSelector": {}, "ingress": [{"ports": [{"protocol": "SCTP"}]}]},
                                         name="bad"))
    assert schema.status_code == 400 and schema.json()["field"] == "spec.ingress[0].ports[0].protocol"
    assert admin.delete(f"{url}/db-in").status_code == 200


def test_a_starting_agent_renders_its_table_once_every_informer_listed_or_after_a_while() -> None:
    """Policies without the pods yet would open every isolated pod of a restarted agent's host."""
    network = PodNetwork("h1", "podman", run=FakeHost(), enabled=False)
    started = network._started
    for kind in ("Node", "Service", "Endpoints", "NetworkPolicy", "Namespace"):
        network.informed(kind)({})
    assert not network.listed(started + 1)
    assert network.listed(started + LIST_WAIT_SECONDS)  # an older master refusing a kind: go on
    network.informed("Pod")({})
    assert network.listed(started + 1)


def test_an_egress_named_port_through_an_ip_block_is_each_pod_in_the_block() -> None:
    out = policy({"podSelector": {"matchLabels": {"role": "other"}}, "policyTypes": ["Egress"], "egress": [
        {"to": [{"ipBlock": {"cidr": "10.244.0.0/24"}}], "ports": [{"port": "http"}]}]})
    assert rules_of([out])["near"].egress == (
        Allow(endpoints=(("10.244.0.5", "tcp", 8080), ("10.244.0.6", "tcp", 8081))),)


def test_an_agents_informers_start_at_different_masters() -> None:
    """Six watch streams an agent: spread, not all on the first master's stream_limit."""
    masters = ["https://m1", "https://m2", "https://m3"]
    orders = [spread(masters, "h1", i) for i in range(6)]
    assert all(sorted(order) == masters for order in orders)  # every master still tried
    assert {order[0] for order in orders} == set(masters)
    assert [order[0] for order in orders].count("https://m1") == 2
    assert {spread(masters, f"h{n}", 0)[0] for n in range(20)} == set(masters)  # nodes differ too
    assert spread([], "h1", 3) == []
