"""Node pod subnets (no server): the pure choice, the settings, the store's and the API's rules,
and node-ipam's rounds over a plain state."""

from __future__ import annotations

import time
from typing import Any

import pytest

from berth.objects import Obj
from master.config import MasterConfig
from master.controllers.node_ipam import NOT_AVAILABLE, NodeIpam
from master.errors import ApiError
from master.network.ipam import CidrExhausted, assignments, free_subnets, next_free_subnet
from master.objects.updates import check_pod_cidr_sent, kept_pod_cidr
from master.objects.validate import validate_object
from master.store.commands import Create, Delete, Put, Replace
from master.store.state import ClusterState
from tests.test_isolation import FakeStore


@pytest.mark.parametrize(("cluster", "mask", "used", "expected"), [
    ("10.244.0.0/16", 24, set(), "10.244.0.0/24"),
    ("10.244.0.0/16", 24, {"10.244.0.0/24", "10.244.1.0/24"}, "10.244.2.0/24"),
    ("10.244.0.0/16", 24, {"10.244.1.0/24"}, "10.244.0.0/24"),  # a freed one, lowest first
    ("10.244.0.0/16", 24, {"10.244.0.0/23"}, "10.244.2.0/24"),  # a larger one takes two
    ("10.244.0.0/16", 24, {"10.244.0.128/25"}, "10.244.1.0/24"),  # a smaller one takes its /24
    ("10.244.0.0/16", 24, {"10.244.0.0/24", "not a cidr", "", "10.244.0.0/99"}, "10.244.1.0/24"),
    ("10.244.0.0/16", 24, {"10.0.0.0/24", "192.168.0.0/16"}, "10.244.0.0/24"),  # outside: no matter
    ("10.244.0.0/16", 24, {"10.244.5.7/24"}, "10.244.0.0/24"),  # host bits: still its /24
    ("10.0.0.0/8", 24, {"10.0.0.0/9"}, "10.128.0.0/24"),
    ("10.244.0.0/16", 28, {"10.244.0.0/28"}, "10.244.0.16/28"),
    ("10.250.0.0/24", 24, set(), "10.250.0.0/24"),  # the mask of the range itself: one subnet
])
def test_next_free_subnet(cluster: str, mask: int, used: set[str], expected: str) -> None:
    assert next_free_subnet(cluster, mask, used) == expected


def test_a_used_up_range_says_so() -> None:
    with pytest.raises(CidrExhausted) as caught:
        next_free_subnet("10.250.0.0/23", 24, {"10.250.0.0/24", "10.250.1.0/24", "10.1.0.0/24"})
    assert str(caught.value) == "no free /24 left in 10.250.0.0/23: 2 nodes hold all of them"


def test_a_subnet_larger_than_the_range_is_refused() -> None:
    with pytest.raises(ValueError):
        next_free_subnet("10.244.0.0/16", 8, set())


def test_free_subnets_are_made_as_asked_for() -> None:
    """A /8 cut in /24s is 65,536 subnets: the first ones of a range nearly full come at once."""
    used = {f"10.{i // 256}.{i % 256}.0/24" for i in range(10_000)}
    started = time.monotonic()
    free = free_subnets("10.0.0.0/8", 24, used)
    assert [next(free), next(free)] == ["10.39.16.0/24", "10.39.17.0/24"]
    assert next_free_subnet("10.0.0.0/8", 24, used) == "10.39.16.0/24"
    assert time.monotonic() - started < 1.0
    assert sum(1 for _ in free_subnets("10.0.0.0/8", 24, used)) == 65_536 - 10_000


def node(name: str, created: str = "2026-01-01T00:00:00Z", cidr: str | None = None) -> Obj:
    spec: Obj = {"address": "10.0.0.1"}
    if cidr:
        spec["podCIDR"] = cidr
    return {"kind": "Node", "metadata": {"name": name, "creationTimestamp": created, "uid": f"uid-{name}"},
            "spec": spec}


def test_the_oldest_nodes_get_the_lowest_subnets_until_none_is_left() -> None:
    nodes = [node("c", "2026-01-03T00:00:00Z"), node("b", "2026-01-02T00:00:00Z"),
             node("a", "2026-01-02T00:00:00Z"), node("held", cidr="10.250.0.0/24")]
    planned = assignments(nodes, "10.250.0.0/22", 24)
    assert [(n["metadata"]["name"], str(c)) for n, c in planned] == [
        ("a", "10.250.1.0/24"), ("b", "10.250.2.0/24"), ("c", "10.250.3.0/24")]
    planned = assignments(nodes, "10.250.0.0/23", 24)
    assert [n["metadata"]["name"] for n, _ in planned] == ["a", "b", "c"]
    assert planned[0][1] == "10.250.1.0/24"
    assert all(isinstance(c, CidrExhausted) for _, c in planned[1:])
    assert assignments([node("held", cidr="10.250.0.0/24")], "10.250.0.0/23", 24) == []


# --- settings --------------------------------------------------------------------------

def config(**settings: Any) -> MasterConfig:
    return MasterConfig(name="m1", raft_address="127.0.0.1:7201", api_address="127.0.0.1:7101",
                        data_dir="/tmp/unused", tokens_file="/tmp/unused",
                        insecure_raft_without_password=True, controllers=["node-ipam"], **settings)


@pytest.mark.parametrize(("settings", "named"), [
    ({"cluster_cidr": "10.244.1.0/16"}, "cluster_cidr"),  # host bits
    ({"cluster_cidr": "10.244.0.0"}, "cluster_cidr"),  # an address, not a range
    ({"cluster_cidr": "fd00::/64"}, "cluster_cidr"),
    ({"cluster_cidr": 167772160}, "cluster_cidr"),
    ({"node_cidr_mask_size": 15, "cluster_cidr": "10.0.0.0/8"}, "node_cidr_mask_size"),
    ({"node_cidr_mask_size": 29}, "node_cidr_mask_size"),
    ({"node_cidr_mask_size": "24"}, "node_cidr_mask_size"),
    ({"node_cidr_mask_size": 20, "cluster_cidr": "10.244.0.0/22"}, "node_cidr_mask_size"),
])
def test_pod_network_settings_are_checked(settings: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=f"^{named}: "):
        config(**settings)


def test_pod_network_defaults_are_kubernetes_own() -> None:
    made = config()
    assert (made.cluster_cidr, made.node_cidr_mask_size) == ("10.244.0.0/16", 24)
    assert config(cluster_cidr="10.250.0.0/24", node_cidr_mask_size=24).cluster_cidr == "10.250.0.0/24"


# --- who may set it --------------------------------------------------------------------

@pytest.mark.parametrize(("value", "valid"), [
    ("10.244.1.0/24", True), ("10.244.1.1/24", False), ("10.244.1.0", False), ("fd00::/64", False),
    ("10.244.1.0/255.255.255.0", False), ("10.244.1.0/33", False), ("010.244.1.0/24", False), (24, False),
])
def test_a_pod_cidr_is_an_ipv4_network_in_cidr_form(value: object, valid: bool) -> None:
    document = {"kind": "Node", "metadata": {"name": "h1"}, "spec": {"address": "10.0.0.1", "podCIDR": value}}
    if valid:
        assert validate_object(document)["spec"]["podCIDR"] == value
    else:
        with pytest.raises(ApiError) as caught:
            validate_object(document)
        assert (caught.value.status, caught.value.field) == (400, "spec.podCIDR")


@pytest.mark.parametrize(("old", "new", "kept"), [
    (None, None, None),
    (None, "10.244.1.0/24", "10.244.1.0/24"),  # node-ipam's write
    ("10.244.1.0/24", None, "10.244.1.0/24"),  # a manifest that never named it
    ("10.244.1.0/24", "10.244.1.0/24", "10.244.1.0/24"),
    ("10.244.1.0/24", "10.244.2.0/24", ApiError),
])
def test_the_store_keeps_a_nodes_subnet(old: str | None, new: str | None, kept: Any) -> None:
    before, after = node("h1", cidr=old), node("h1", cidr=new)
    if kept is ApiError:
        with pytest.raises(ApiError) as caught:
            kept_pod_cidr(before, after)
        err = caught.value
        assert (err.status, err.reason, err.field) == (422, "Invalid", "spec.podCIDR")
        assert "spec.podCIDR cannot change once assigned" in err.message
    else:
        assert kept_pod_cidr(before, after)["spec"].get("podCIDR") == kept


def test_only_a_nodes_subnet_is_kept() -> None:
    pod = {"kind": "Pod", "metadata": {"name": "p"}, "spec": {"podCIDR": "10.244.1.0/24"}}
    assert kept_pod_cidr(pod, {**pod, "spec": {}}) == {**pod, "spec": {}}


@pytest.mark.parametrize(("stored", "sent", "refused"), [
    (None, None, False),
    (None, "10.244.1.0/24", True),  # a new node naming its own
    ("10.244.1.0/24", None, False),
    ("10.244.1.0/24", "10.244.1.0/24", False),  # a GET sent back
    ("10.244.1.0/24", "10.244.2.0/24", True),
    (None, "", True),
])
def test_the_api_lets_clients_send_back_only_the_stored_subnet(stored: str | None, sent: str | None,
                                                               refused: bool) -> None:
    new = node("h1")
    if sent is not None:
        new["spec"]["podCIDR"] = sent
    current = node("h1", cidr=stored) if stored or refused else None
    if not refused:
        check_pod_cidr_sent(new, current)
        return
    with pytest.raises(ApiError) as caught:
        check_pod_cidr_sent(new, current)
    assert (caught.value.status, caught.value.field) == (422, "spec.podCIDR")
    assert "assigned by the cluster" in caught.value.message


def test_replace_and_apply_keep_the_subnet_and_never_change_it() -> None:
    state = ClusterState()
    state.apply(Create(node("h1"), "u1", "t"))
    given = {**node("h1"), "spec": {"address": "10.0.0.1", "podCIDR": "10.244.0.0/24"}}
    assert state.apply(Replace(given, 1))[0].error is None
    relabelled = {**node("h1"), "metadata": {"name": "h1", "labels": {"zone": "a"}}}
    outcome, _ = state.apply(Replace(relabelled))
    assert outcome.objects[0]["spec"]["podCIDR"] == "10.244.0.0/24"
    outcome, _ = state.apply(Put(node("h1"), "u2", "t"))
    assert outcome.objects[0]["spec"]["podCIDR"] == "10.244.0.0/24"
    moved = {**node("h1"), "spec": {"address": "10.0.0.1", "podCIDR": "10.244.9.0/24"}}
    outcome, events = state.apply(Replace(moved))
    assert outcome.error is not None and outcome.error.status == 422 and events == []


# --- node-ipam's rounds ----------------------------------------------------------------

def subnets(store: FakeStore) -> dict[str, str | None]:
    return {n["metadata"]["name"]: n["spec"].get("podCIDR") for n in store.state.list("Node")}


def test_node_ipam_gives_each_node_a_subnet_and_tells_once_when_none_is_left() -> None:
    store = FakeStore(node("a", "2026-01-01T00:00:01Z"), node("b", "2026-01-01T00:00:02Z"),
                      node("c", "2026-01-01T00:00:03Z"))
    ipam = NodeIpam(store, "10.250.0.0/23", 24, lambda: "2026-01-01T00:00:09Z",  # type: ignore[arg-type]
                    lambda: "event-uid")
    ipam.reconcile()
    assert subnets(store) == {"a": "10.250.0.0/24", "b": "10.250.1.0/24", "c": None}
    events = store.state.list("Event")
    assert [(e["reason"], e["type"], e["involvedObject"]["name"], e["count"]) for e in events] == [
        (NOT_AVAILABLE, "Warning", "c", 1)]
    assert "no free /24 left in 10.250.0.0/23: 2 nodes hold all of them" in events[0]["message"]
    ipam.reconcile()  # told once a term, not every round
    assert [e["count"] for e in store.state.list("Event")] == [1]
    store.state.apply(Delete("Node", "", "a"))
    ipam.reconcile()  # a's subnet is free again
    assert subnets(store) == {"b": "10.250.1.0/24", "c": "10.250.0.0/24"}


def test_a_node_with_a_garbage_spec_is_left_out_and_the_others_get_theirs() -> None:
    store = FakeStore({"kind": "Node", "metadata": {"name": "bad"}, "spec": ["not", "a", "mapping"]},
                      node("good"))
    NodeIpam(store, "10.244.0.0/16", 24, lambda: "t", lambda: "u").reconcile()  # type: ignore[arg-type]
    assert store.state.get("Node", "", "good")["spec"]["podCIDR"] == "10.244.0.0/24"  # type: ignore[index]
