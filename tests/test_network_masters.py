"""Node pod subnets on real masters: node-ipam gives each Node one, and no client sets or changes it."""

from __future__ import annotations

import ipaddress

import pytest
import requests

from tests.harness import MasterCluster, wait_until

CLUSTER_SETTINGS = {"controllers": ["node-lifecycle", "node-ipam"]}
NODES = "/api/v1/nodes"


def node(name: str, **spec: str) -> dict:
    return {"apiVersion": "berth/v1", "kind": "Node", "metadata": {"name": name},
            "spec": {"address": "10.250.0.99", **spec}}


def create(cluster: MasterCluster, session: requests.Session, name: str, **spec: str) -> requests.Response:
    return session.post(cluster.url(0, NODES), json=node(name, **spec), timeout=10)


def subnet_of(cluster: MasterCluster, session: requests.Session, name: str) -> str | None:
    answer = session.get(cluster.url(1, f"{NODES}/{name}"), timeout=10)
    answer.raise_for_status()
    return answer.json()["spec"].get("podCIDR")


def test_each_node_gets_its_own_subnet_of_the_cluster_range(cluster: MasterCluster) -> None:
    admin = cluster.session()
    names = ["ipam-a", "ipam-b", "ipam-c"]
    for name in names:
        assert create(cluster, admin, name).status_code == 201

    def every_subnet() -> list[str | None] | None:
        cidrs = [subnet_of(cluster, admin, n) for n in names]
        return cidrs if all(cidrs) else None

    given = wait_until(every_subnet, 15, what="every node's podCIDR")
    assert len(set(given)) == 3, given
    networks = [ipaddress.IPv4Network(str(c)) for c in given]
    assert all(n.prefixlen == 24 and n.subnet_of(ipaddress.IPv4Network("10.244.0.0/16")) for n in networks)
    listed = admin.get(cluster.url(2, f"{NODES}?consistent=true"), timeout=10).json()["items"]
    shown = {n["metadata"]["name"]: n["spec"]["podCIDR"] for n in listed if n["metadata"]["name"] in names}
    assert shown == dict(zip(names, given, strict=True))


def test_a_client_never_sets_or_changes_a_subnet(cluster: MasterCluster) -> None:
    admin = cluster.session()
    refused = create(cluster, admin, "ipam-own", podCIDR="10.244.200.0/24")
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == "spec.podCIDR" and "assigned by the cluster" in refused.json()["error"]
    assert admin.get(cluster.url(0, f"{NODES}/ipam-own"), timeout=10).status_code == 404

    assert create(cluster, admin, "ipam-kept").status_code == 201
    cidr = wait_until(lambda: subnet_of(cluster, admin, "ipam-kept"), 15, what="ipam-kept's podCIDR")
    stored = admin.get(cluster.url(0, f"{NODES}/ipam-kept?consistent=true"), timeout=10).json()
    assert stored["spec"]["podCIDR"] == cidr
    echoed = admin.put(cluster.url(0, f"{NODES}/ipam-kept"), json=stored, timeout=10)  # a GET sent back
    assert echoed.status_code == 200, echoed.text
    manifest = node("ipam-kept")
    manifest["metadata"]["labels"] = {"zone": "a"}
    replaced = admin.put(cluster.url(0, f"{NODES}/ipam-kept"), json=manifest, timeout=10)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["spec"]["podCIDR"] == cidr
    assert replaced.json()["metadata"]["labels"] == {"zone": "a"}
    applied = admin.post(cluster.url(0, "/api/v1/apply"), json=node("ipam-kept"), timeout=10)
    assert applied.status_code == 200 and applied.json()["items"][0]["spec"]["podCIDR"] == cidr

    other = str(ipaddress.IPv4Network(cidr).network_address + 256 * 100) + "/24"
    moved = admin.put(cluster.url(0, f"{NODES}/ipam-kept"), json=node("ipam-kept", podCIDR=other), timeout=10)
    assert moved.status_code == 422 and moved.json()["field"] == "spec.podCIDR", moved.text
    patched = admin.patch(cluster.url(0, f"{NODES}/ipam-kept"), json={"spec": {"podCIDR": other}},
                          headers={"Content-Type": "application/merge-patch+json"}, timeout=10)
    assert patched.status_code == 422 and patched.json()["field"] == "spec.podCIDR", patched.text
    assert subnet_of(cluster, admin, "ipam-kept") == cidr


def warnings_about(cluster: MasterCluster, session: requests.Session, name: str) -> list[dict]:
    events = session.get(cluster.url(0, "/api/v1/namespaces/default/events"), timeout=10).json()["items"]
    return [e for e in events if e["involvedObject"]["name"] == name and e["reason"] == "CIDRNotAvailable"]


@pytest.mark.parametrize("own_cluster", [{"controllers": ["node-lifecycle", "node-ipam"],
                                          "cluster_cidr": "10.250.0.0/23", "node_cidr_mask_size": 24}],
                         indirect=True)
def test_a_node_past_the_range_waits_with_a_warning_until_one_is_freed(own_cluster: MasterCluster) -> None:
    admin = own_cluster.session()
    for name in ("n1", "n2"):
        assert create(own_cluster, admin, name).status_code == 201
        wait_until(lambda name=name: subnet_of(own_cluster, admin, name), 15, what=f"{name}'s podCIDR")
    assert create(own_cluster, admin, "n3").status_code == 201
    [warning] = wait_until(lambda: warnings_about(own_cluster, admin, "n3"), 15,
                           what="a CIDRNotAvailable event")
    assert warning["type"] == "Warning" and "no free /24 left in 10.250.0.0/23" in warning["message"]
    assert subnet_of(own_cluster, admin, "n3") is None
    assert {subnet_of(own_cluster, admin, n) for n in ("n1", "n2")} == {"10.250.0.0/24", "10.250.1.0/24"}
    freed = subnet_of(own_cluster, admin, "n1")
    assert admin.delete(own_cluster.url(0, f"{NODES}/n1"), timeout=10).status_code == 200
    assert wait_until(lambda: subnet_of(own_cluster, admin, "n3"), 15, what="n3's podCIDR") == freed
