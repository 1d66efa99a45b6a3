"""Services and Endpoints (no server): addresses and node ports, the rules of a Service's fields,
the store's refusal of a taken address, which pods an Endpoints lists, and the controller's rounds."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from berth.objects import Obj
from master.config import MasterConfig, check_service_network
from master.controllers.endpoints import EndpointsController
from master.errors import ApiError
from master.network.endpoints import endpoint_subsets
from master.network.service_ips import (
    RangeFull,
    address_problem,
    next_free_address,
    next_free_port,
    port_problem,
    port_range,
)
from master.objects.services import (
    Picks,
    Ranges,
    allocated,
    check_service_spec,
    dropped_by_type,
    kept_allocations,
    lost_race,
)
from master.objects.validate import validate_object
from master.store.commands import Batch, Create, Delete, Put, Replace, UpdateStatus
from master.store.state import ClusterState
from tests.test_isolation import FakeStore

RANGES = Ranges("10.96.0.0/16", "30000-32767")


# --- addresses and node ports ----------------------------------------------------------

@pytest.mark.parametrize(("cidr", "taken", "skip", "expected"), [
    ("10.96.0.0/16", set(), 0, "10.96.0.2"),  # .0 the network, .1 kept for the API's own Service
    ("10.96.0.0/16", {"10.96.0.2", "10.96.0.3"}, 0, "10.96.0.4"),
    ("10.96.0.0/16", {"10.96.0.3"}, 0, "10.96.0.2"),  # a freed one, lowest first
    ("10.96.0.0/16", {"10.96.0.2"}, 2, "10.96.0.5"),  # a retry skips a few free ones
    ("10.96.0.0/29", {"10.96.0.2"}, 50, "10.96.0.6"),  # fewer free than skipped: the highest
    ("10.96.0.0/16", {f"10.96.0.{n}" for n in range(2, 256)}, 0, "10.96.1.0"),
    ("10.96.0.0/30", set(), 0, "10.96.0.2"),  # .3 is the broadcast address
])
def test_next_free_address(cidr: str, taken: set[str], skip: int, expected: str) -> None:
    assert next_free_address(cidr, taken, skip) == expected


def test_a_full_range_says_so() -> None:
    with pytest.raises(RangeFull, match=r"no free address left in service_cidr 10\.96\.0\.0/29"):
        next_free_address("10.96.0.0/29", {f"10.96.0.{n}" for n in range(2, 7)})
    with pytest.raises(RangeFull, match="no free node port left in service_node_port_range 30000-30001"):
        next_free_port("30000-30001", {30000, 30001})


@pytest.mark.parametrize(("address", "problem"), [
    ("10.96.5.7", None),
    ("10.96.255.254", None),
    ("10.97.0.2", "not in service_cidr 10.96.0.0/16"),
    ("10.96.0.0", "the network address"),
    ("10.96.255.255", "the broadcast address"),
    ("10.96.0.1", "reserved: the first address of service_cidr is kept for the API's own Service"),
])
def test_an_address_asked_for(address: str, problem: str | None) -> None:
    found = address_problem(address, "10.96.0.0/16")
    assert found == problem if problem is None else problem in str(found)


@pytest.mark.parametrize(("text", "expected"), [
    ("30000-32767", (30000, 32767)), ("1-65535", (1, 65535)), ("8080-8080", (8080, 8080)),
    ("32767-30000", None), ("0-10", None), ("1-65536", None), ("30000", None), ("a-b", None), ("-1-5", None),
])
def test_port_range(text: str, expected: tuple[int, int] | None) -> None:
    if expected is None:
        with pytest.raises(ValueError, match=text):
            port_range(text)
    else:
        assert port_range(text) == expected


def test_node_ports() -> None:
    assert next_free_port("30000-32767", set()) == 30000
    assert next_free_port("30000-32767", {30000, 30002}) == 30001
    assert port_problem(30500, "30000-32767") is None
    assert port_problem(80, "30000-32767") == "80 is not in service_node_port_range 30000-32767"


@pytest.mark.parametrize(("cidr", "ports", "error"), [
    ("10.96.0.0/16", "30000-32767", None),
    ("10.96.0.1/16", "30000-32767", "service_cidr: '10.96.0.1/16' is not an IPv4 network"),
    ("10.96.0.0", "30000-32767", "service_cidr: '10.96.0.0' is not an IPv4 network"),
    ("10.0.0.0/8", "30000-32767", "service_cidr: 10.0.0.0/8 must be from /12 to /30"),
    ("10.244.128.0/20", "30000-32767", "service_cidr: 10.244.128.0/20 overlaps cluster_cidr 10.244.0.0/16"),
    ("10.96.0.0/16", "32767-30000", "service_node_port_range: '32767-30000'"),
    ("10.96.0.0/16", 30000, "service_node_port_range: '30000' is not a range"),
])
def test_the_settings_are_checked_naming_them(cidr: str, ports: Any, error: str | None) -> None:
    if error is None:
        check_service_network(cidr, ports, "10.244.0.0/16")
        return
    with pytest.raises(ValueError) as caught:
        check_service_network(cidr, ports, "10.244.0.0/16")
    assert str(caught.value).startswith(error), caught.value


def test_a_master_starts_only_with_service_settings_that_fit() -> None:
    def config(**settings: Any) -> MasterConfig:
        return MasterConfig(name="m1", raft_address="127.0.0.1:7201", api_address="127.0.0.1:7101",
                            data_dir="/tmp/unused", tokens_file="/tmp/unused",
                            insecure_raft_without_password=True, controllers=["endpoints"], **settings)

    made = config()
    assert (made.service_cidr, made.service_node_port_range) == ("10.96.0.0/16", "30000-32767")
    with pytest.raises(ValueError, match=r"^service_cidr: 10\.96\.0\.0/12 overlaps cluster_cidr"):
        config(service_cidr="10.96.0.0/12", cluster_cidr="10.100.0.0/16")
    with pytest.raises(ValueError, match=r"^service_node_port_range: "):
        config(service_node_port_range="30000")


# --- a Service's fields ----------------------------------------------------------------

def service(name: str = "web", namespace: str = "default", **spec: Any) -> Obj:
    return {"apiVersion": "berth/v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80}], **spec}}


def checked(**spec: Any) -> Obj:
    obj = validate_object(service(**spec))
    check_service_spec(obj["spec"])
    return obj


def two_ports(**extra: Any) -> list[dict[str, Any]]:
    return [{"name": "http", "port": 80, **extra}, {"name": "metrics", "port": 9090}]


@pytest.mark.parametrize(("spec", "field", "words"), [
    ({"type": "LoadBalancer"}, "spec.type", "LoadBalancer services are not implemented"),
    ({"type": "ExternalName"}, "spec.type", "ExternalName services are not implemented"),
    ({"clusterIP": "None"}, "spec.clusterIP", "headless services (clusterIP None) are not implemented"),
    ({"ports": [{"port": 80}, {"port": 81}]}, "spec.ports[0].name", "required when a Service has more"),
    ({"ports": [{"name": "a", "port": 80}, {"port": 81}]}, "spec.ports[1].name", "required"),
    ({"ports": [{"name": "a", "port": 80}, {"name": "a", "port": 81}]}, "spec.ports[1].name", "duplicate"),
    ({"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 80}]}, "spec.ports[1].port",
     "duplicate port 80/TCP"),
    ({"ports": [{"port": 80, "nodePort": 30080}]}, "spec.ports[0].nodePort",
     "may not be used when type is 'ClusterIP'"),
    ({"type": "NodePort", "ports": [{"name": "a", "port": 80, "nodePort": 30080},
                                    {"name": "b", "port": 81, "nodePort": 30080}]},
     "spec.ports[1].nodePort", "duplicate node port 30080/TCP"),
    ({"sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}}, "spec.sessionAffinityConfig",
     "must not be set when sessionAffinity is None"),
])
def test_a_service_whose_fields_disagree_is_a_422_naming_the_field(spec: dict, field: str,
                                                                    words: str) -> None:
    with pytest.raises(ApiError) as caught:
        checked(**spec)
    assert (caught.value.status, caught.value.field) == (422, field), caught.value
    assert caught.value.message.startswith(f"{field}: ") and words in caught.value.message


def test_what_a_service_may_be() -> None:
    plain = checked()["spec"]
    assert plain["type"] == "ClusterIP" and plain["sessionAffinity"] == "None"
    assert plain["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]  # Kubernetes' default
    dns = checked(ports=[{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": "dns"},  # 53 twice:
                         {"name": "dns-tcp", "port": 53, "targetPort": 5353}])["spec"]  # TCP and UDP
    assert [p["targetPort"] for p in dns["ports"]] == ["dns", 5353]
    affinity = checked(sessionAffinity="ClientIP")["spec"]
    assert affinity["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}
    numeric = checked(ports=[{"port": 80, "targetPort": "8080"}])["spec"]  # a number as a string is a number
    assert numeric["ports"][0]["targetPort"] == 8080
    assert checked(clusterIP="")["spec"].get("clusterIP") is None  # Kubernetes: "" asks for one
    node_port = checked(type="NodePort", ports=two_ports(nodePort=30080))["spec"]
    assert node_port["ports"][0]["nodePort"] == 30080


@pytest.mark.parametrize(("spec", "field"), [
    ({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 0}}},
     "spec.sessionAffinityConfig.clientIP.timeoutSeconds"),
    ({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 86401}}},
     "spec.sessionAffinityConfig.clientIP.timeoutSeconds"),
    ({"type": "Magic"}, "spec.type"),
    ({"clusterIP": "10.96.0.300"}, "spec.clusterIP"),
    ({"clusterIP": "10.96.0.0/16"}, "spec.clusterIP"),
    ({"ports": [{"port": 80, "targetPort": "-web"}]}, "spec.ports[0].targetPort"),
    ({"ports": [{"port": 80, "nodePort": 70000}]}, "spec.ports[0].nodePort"),
    ({"externalIPs": ["192.0.2.1"]}, "spec.externalIPs"),
    ({"publishNotReadyAddresses": True}, "spec.publishNotReadyAddresses"),
])
def test_the_schema_refuses_a_field_alone(spec: dict, field: str) -> None:
    with pytest.raises(ApiError) as caught:
        validate_object(service(**spec))
    assert (caught.value.status, caught.value.field) == (400, field), caught.value


def test_endpoints_schema() -> None:
    endpoints = {"kind": "Endpoints", "metadata": {"name": "web"}, "subsets": [
        {"addresses": [{"ip": "10.244.1.5", "nodeName": "h1",
                        "targetRef": {"kind": "Pod", "name": "web-1", "namespace": "default"}}],
         "ports": [{"name": "http", "port": 8080}]}]}
    stored = validate_object(endpoints)
    assert stored["subsets"][0]["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert "notReadyAddresses" not in stored["subsets"][0]
    with pytest.raises(ApiError) as caught:
        validate_object({**endpoints, "subsets": [{"addresses": [{"ip": "fd00::1"}]}]})
    assert caught.value.field == "subsets[0].addresses[0].ip"


# --- what an update keeps, and what a write is given -------------------------------------

def stored(**spec: Any) -> Obj:
    return checked(**spec)


def test_an_update_keeps_the_address_and_the_node_ports_it_leaves_out() -> None:
    old = stored(type="NodePort", clusterIP="10.96.0.9",
                 ports=[{"name": "http", "port": 80, "nodePort": 30080},
                        {"name": "metrics", "port": 9090, "nodePort": 30090}])
    new = checked(type="NodePort", ports=two_ports())  # a manifest that never named them
    kept = kept_allocations(old, new)["spec"]
    assert kept["clusterIP"] == "10.96.0.9"
    assert [p["nodePort"] for p in kept["ports"]] == [30080, 30090]
    moved = kept_allocations(old, checked(type="NodePort", ports=two_ports(nodePort=30090)))["spec"]
    assert [p.get("nodePort") for p in moved["ports"]] == [30090, None]  # http took 30090: metrics gets one
    with pytest.raises(ApiError) as caught:
        kept_allocations(old, checked(type="NodePort", clusterIP="10.96.0.10", ports=two_ports()))
    assert (caught.value.status, caught.value.field) == (422, "spec.clusterIP")
    assert "field is immutable" in caught.value.message
    as_cluster_ip = kept_allocations(old, checked(ports=two_ports()))["spec"]
    assert [p.get("nodePort") for p in as_cluster_ip["ports"]] == [None, None]  # released


def test_a_patch_to_cluster_ip_drops_the_node_ports_it_did_not_change() -> None:
    old = stored(type="NodePort", sessionAffinity="ClientIP", ports=two_ports(nodePort=30080))
    patched = {**old, "spec": {**old["spec"], "type": "ClusterIP", "sessionAffinity": "None"}}
    spec = dropped_by_type(old, patched)["spec"]
    assert [p.get("nodePort") for p in spec["ports"]] == [None, None] and "sessionAffinityConfig" not in spec
    check_service_spec(spec)
    ports = checked(type="NodePort", ports=two_ports(nodePort=31000))["spec"]["ports"]
    changed = {**patched, "spec": {**patched["spec"], "ports": ports}}
    with pytest.raises(ApiError, match="may not be used when type is 'ClusterIP'"):
        check_service_spec(dropped_by_type(old, changed)["spec"])  # one it set is still refused


def holders(held: dict[tuple[str, Any], tuple[str, str]]) -> Any:
    return lambda index, value: held.get((index, value))


def test_a_write_gets_the_lowest_free_ones_or_what_it_asks_for() -> None:
    held = {("clusterIP", "10.96.0.2"): ("default", "other"), ("nodePort", 30000): ("default", "other")}
    given = allocated(checked(type="NodePort", ports=two_ports()), holders(held), RANGES, Picks())["spec"]
    assert given["clusterIP"] == "10.96.0.3" and [p["nodePort"] for p in given["ports"]] == [30001, 30002]
    asked = allocated(checked(type="NodePort", clusterIP="10.96.7.7", ports=two_ports(nodePort=31000)),
                      holders(held), RANGES, Picks())["spec"]
    assert asked["clusterIP"] == "10.96.7.7" and [p["nodePort"] for p in asked["ports"]] == [31000, 30001]
    own = {("clusterIP", "10.200.0.5"): ("default", "web")}  # its own, from a range changed since
    assert allocated(checked(clusterIP="10.200.0.5"), holders(own), RANGES, Picks())["spec"]["clusterIP"] == \
        "10.200.0.5"


@pytest.mark.parametrize(("spec", "ranges", "field", "words"), [
    ({"clusterIP": "10.96.0.2"}, RANGES, "spec.clusterIP",
     "provided IP 10.96.0.2 is already allocated (by Service default/other)"),
    ({"clusterIP": "10.97.0.2"}, RANGES, "spec.clusterIP", "not in service_cidr 10.96.0.0/16"),
    ({"clusterIP": "10.96.0.1"}, RANGES, "spec.clusterIP", "reserved"),
    ({"type": "NodePort", "ports": two_ports(nodePort=30000)}, RANGES, "spec.ports[0].nodePort",
     "provided port 30000 is already allocated"),
    ({"type": "NodePort", "ports": two_ports(nodePort=8080)}, RANGES, "spec.ports[0].nodePort",
     "8080 is not in service_node_port_range 30000-32767"),
    ({}, Ranges("10.96.0.0/30", "30000-30000"), "spec.clusterIP", "no free address left in service_cidr"),
    ({"type": "NodePort"}, Ranges("10.96.0.0/16", "30000-30000"), "spec.ports[0].nodePort",
     "no free node port left in service_node_port_range 30000-30000"),
])
def test_a_write_that_cannot_have_what_it_asks_for_is_a_422(spec: dict, ranges: Ranges, field: str,
                                                            words: str) -> None:
    held = {("clusterIP", "10.96.0.2"): ("default", "other"), ("nodePort", 30000): ("default", "other")}
    with pytest.raises(ApiError) as caught:
        allocated(checked(**spec), holders(held), ranges, Picks())
    assert (caught.value.status, caught.value.reason, caught.value.field) == (422, "Invalid", field)
    assert words in caught.value.message, caught.value.message


def test_the_documents_of_one_request_never_get_the_same_one() -> None:
    picks = Picks()
    first = allocated(checked(name="a", type="NodePort"), holders({}), RANGES, picks)["spec"]
    second = allocated(checked(name="b", type="NodePort"), holders({}), RANGES, picks)["spec"]
    assert (first["clusterIP"], second["clusterIP"]) == ("10.96.0.2", "10.96.0.3")
    assert (first["ports"][0]["nodePort"], second["ports"][0]["nodePort"]) == (30000, 30001)
    with pytest.raises(ApiError, match=r"provided IP 10\.96\.0\.2 is already allocated"):
        allocated(checked(name="c", clusterIP="10.96.0.2"), holders({}), RANGES, picks)
    picks.retry()  # a retry starts afresh, and may start a little further up
    assert picks.attempt == 1 and picks.given == set() and 0 <= picks.skip() < 4


# --- the store: one holder for each address and port --------------------------------------

def allocated_service(name: str, address: str, *node_ports: int, namespace: str = "default") -> Obj:
    ports = [{"name": f"p{n}", "port": 80 + n, "nodePort": port} for n, port in enumerate(node_ports)] or \
        [{"port": 80}]
    spec = {"type": "NodePort" if node_ports else "ClusterIP", "clusterIP": address, "ports": ports}
    return checked(name=name, namespace=namespace, **spec)


def test_the_store_refuses_an_address_or_port_another_service_holds() -> None:
    state = ClusterState()
    assert state.apply(Create(allocated_service("a", "10.96.0.2", 30000), "u1", "t"))[0].error is None
    for clash, field in ((allocated_service("b", "10.96.0.2"), "spec.clusterIP"),
                         (allocated_service("b", "10.96.0.3", 30001, 30000), "spec.ports[1].nodePort"),
                         (allocated_service("a", "10.96.0.2", 30000, namespace="other"), "spec.clusterIP")):
        outcome, events = state.apply(Create(clash, "u2", "t"))
        assert outcome.error is not None and events == []
        assert (outcome.error.status, outcome.error.field) == (409, field) and lost_race(outcome.error)
        assert "(by Service default/a)" in outcome.error.message
    # a Batch that fails takes back what its earlier ops held
    outcome, _ = state.apply(Batch((Create(allocated_service("c", "10.96.0.7", 30007), "u3", "t"),
                                    Create(allocated_service("d", "10.96.0.2"), "u4", "t"))))
    assert outcome.error is not None and state.indexes.holder("clusterIP", "10.96.0.7") is None
    assert state.indexes.holder("nodePort", 30007) is None
    # its own, sent back, and a replace that leaves them out keeps them
    assert state.apply(Replace(allocated_service("a", "10.96.0.2", 30000)))[0].error is None
    manifest = checked(name="a", type="NodePort", ports=[{"name": "p0", "port": 80}])  # matched by name
    outcome, _ = state.apply(Put(manifest, "u5", "t"))
    assert outcome.error is None and outcome.objects[0]["spec"]["clusterIP"] == "10.96.0.2"
    assert outcome.objects[0]["spec"]["ports"][0]["nodePort"] == 30000


def test_a_deleted_or_changed_service_frees_what_it_held_and_a_snapshot_rebuilds_the_index() -> None:
    state = ClusterState()
    state.apply(Create(allocated_service("a", "10.96.0.2", 30000), "u1", "t"))
    state.apply(Create(allocated_service("b", "10.96.0.3", 30001), "u2", "t"))
    outcome, _ = state.apply(Replace(allocated_service("b", "10.96.0.3")))  # NodePort to ClusterIP
    assert outcome.error is None and state.indexes.holder("nodePort", 30001) is None
    state.apply(Delete("Service", "default", "a"))
    assert state.indexes.holder("clusterIP", "10.96.0.2") is None
    assert state.apply(Create(allocated_service("c", "10.96.0.2", 30001), "u3", "t"))[0].error is None
    restored = pickle.loads(pickle.dumps(state))
    assert restored.indexes.held() == {"clusterIP": {"10.96.0.2": ("default", "c"),
                                                     "10.96.0.3": ("default", "b")},
                                       "nodePort": {30001: ("default", "c")}}
    dry, _ = state.apply(Create(allocated_service("d", "10.96.0.9"), "u4", "t"), dry_run=True)
    assert dry.error is None and state.indexes.holder("clusterIP", "10.96.0.9") is None


# --- which pods the Endpoints list ------------------------------------------------------------

READY_NODES = {"h1", "h2"}


def pod(name: str, ip: str | None = "10.244.1.5", *, ready: bool = True, node: str = "h1",
        labels: dict | None = None, phase: str = "Running", deleting: bool = False,
        ports: list[dict] | None = None) -> Obj:
    meta: Obj = {"name": name, "namespace": "default", "uid": f"uid-{name}",
                 "labels": {"app": "web"} if labels is None else labels}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    status: Obj = {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    if ip is not None:
        status["podIP"] = ip
    return {"kind": "Pod", "metadata": meta, "status": status,
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i", "ports": ports or []}]}}


def address(name: str, ip: str, node: str = "h1", uid: str | None = None) -> Obj:
    return {"ip": ip, "nodeName": node, "targetRef": {"kind": "Pod", "name": name, "namespace": "default",
                                                      "uid": uid or f"uid-{name}"}}


WEB = service(ports=[{"name": "http", "port": 80, "targetPort": 8080}])
PORTS = [{"name": "http", "port": 8080, "protocol": "TCP"}]


@pytest.mark.parametrize(("pods", "expected"), [
    ([], []),
    ([pod("a")], [{"addresses": [address("a", "10.244.1.5")], "ports": PORTS}]),
    ([pod("a", ready=False)], [{"notReadyAddresses": [address("a", "10.244.1.5")], "ports": PORTS}]),
    ([pod("a", node="h3")], [{"notReadyAddresses": [address("a", "10.244.1.5", "h3")], "ports": PORTS}]),
    ([pod("a", deleting=True)], []),  # terminating: out at once, Ready or not
    ([pod("a", phase="Succeeded", ready=False)], []),
    ([pod("a", phase="Failed", ready=False)], []),
    ([pod("a", ip=None)], []),  # no address yet
    ([pod("a", ip="fd00::5")], []),  # services are IPv4
    ([pod("a", labels={"app": "db"})], []),
    ([pod("b", "10.244.2.9"), pod("a", "10.244.1.10", node="h2"), pod("c", "10.244.1.9", ready=False)],
     [{"addresses": [address("a", "10.244.1.10", "h2"), address("b", "10.244.2.9")],  # sorted by address
       "notReadyAddresses": [address("c", "10.244.1.9")], "ports": PORTS}]),
])
def test_which_pods_a_service_sends_to(pods: list[Obj], expected: list[Obj]) -> None:
    assert endpoint_subsets(WEB, pods, READY_NODES) == expected


def test_a_named_target_port_is_looked_up_in_each_pod() -> None:
    svc = service(ports=[{"name": "http", "port": 80, "targetPort": "web"},
                         {"name": "metrics", "port": 9090, "targetPort": 9090}])
    old = [{"name": "web", "containerPort": 8080}]
    new = [{"name": "web", "containerPort": 8081}]
    pods = [pod("a", "10.244.1.5", ports=old), pod("b", "10.244.1.6", ports=new),
            pod("c", "10.244.1.7", ports=[{"name": "web", "containerPort": 8082, "protocol": "UDP"}]),
            pod("d", "10.244.1.8", ports=new, ready=False)]
    assert endpoint_subsets(svc, pods, READY_NODES) == [
        {"addresses": [address("a", "10.244.1.5")],
         "ports": [{"name": "http", "port": 8080, "protocol": "TCP"},
                   {"name": "metrics", "port": 9090, "protocol": "TCP"}]},
        {"addresses": [address("b", "10.244.1.6")], "notReadyAddresses": [address("d", "10.244.1.8")],
         "ports": [{"name": "http", "port": 8081, "protocol": "TCP"},
                   {"name": "metrics", "port": 9090, "protocol": "TCP"}]},
        {"addresses": [address("c", "10.244.1.7")],  # no TCP port named web: only the number reaches it
         "ports": [{"name": "metrics", "port": 9090, "protocol": "TCP"}]},
    ]
    only_named = service(ports=[{"port": 80, "targetPort": "web"}])
    assert endpoint_subsets(only_named, [pod("x", ports=[])], READY_NODES) == []  # nothing to reach
    unnamed = endpoint_subsets(service(), [pod("a")], READY_NODES)
    assert unnamed[0]["ports"] == [{"port": 80, "protocol": "TCP"}]  # no name, as Kubernetes omits it


def test_without_a_selector_a_service_lists_no_pods() -> None:
    assert endpoint_subsets(service(selector={}), [pod("a")], READY_NODES) == []


# --- the controller's rounds -----------------------------------------------------------------

def cluster(*objects: Obj) -> FakeStore:
    store = FakeStore()
    for number, obj in enumerate(objects):
        assert store.state.apply(Create(obj, f"u{number}", "t"))[0].error is None
    return store


def ready_node(name: str, ready: bool = True) -> Obj:
    return {"kind": "Node", "metadata": {"name": name}, "spec": {"address": "10.0.0.1"},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def endpoints_of(store: FakeStore, name: str = "web") -> Obj | None:
    return store.state.get("Endpoints", "default", name)


def test_the_controller_writes_endpoints_only_when_they_change_and_removes_those_of_gone_services() -> None:
    labelled = {**WEB, "metadata": {**WEB["metadata"], "labels": {"tier": "front"}}}
    store = cluster(ready_node("h1"), labelled, pod("a"), service("plain", selector={}),
                    {"kind": "Endpoints", "metadata": {"name": "plain", "namespace": "default"},
                     "subsets": [{"addresses": [{"ip": "192.0.2.1"}], "ports": [{"port": 80}]}]},
                    {"kind": "Endpoints", "metadata": {"name": "gone", "namespace": "default"},
                     "subsets": []})
    controller = EndpointsController(store, lambda: "t", lambda: "uid")  # type: ignore[arg-type]
    controller.reconcile()
    made = endpoints_of(store)
    assert made is not None and made["metadata"]["labels"] == {"tier": "front"}
    uid = store.state.get("Pod", "default", "a")["metadata"]["uid"]  # type: ignore[index] - the store's
    assert made["subsets"] == [{"addresses": [address("a", "10.244.1.5", uid=uid)], "ports": PORTS}]
    assert endpoints_of(store, "gone") is None
    assert endpoints_of(store, "plain")["subsets"][0]["addresses"] == [{"ip": "192.0.2.1"}]  # type: ignore[index]
    revision = store.state.revision
    controller.reconcile()
    assert store.state.revision == revision  # nothing changed: nothing written
    store.state.apply(UpdateStatus("Node", "", "h1", ready_node("h1", ready=False)["status"]))
    controller.reconcile()
    assert endpoints_of(store)["subsets"] == [  # type: ignore[index]
        {"notReadyAddresses": [address("a", "10.244.1.5", uid=uid)], "ports": PORTS}]
    store.state.apply(Delete("Service", "default", "web"))
    controller.reconcile()
    assert endpoints_of(store) is None
