"""Services on real masters: addresses and node ports given once cluster-wide, kept across updates,
and Endpoints that follow the pods a Service selects."""

from __future__ import annotations

import ipaddress
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from master.liveness import READY, SILENT, with_ready
from tests.harness import GI, MasterCluster, add_node, wait_until

CLUSTER_SETTINGS = {"controllers": ["endpoints"]}  # no node-lifecycle: the nodes stay as written here
SERVICES = "/api/v1/namespaces/default/services"
MERGE = {"Content-Type": "application/merge-patch+json"}


def service(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "berth/v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": "web"}],
                     **spec}}


def create(cluster: MasterCluster, index: int, body: dict[str, Any]) -> requests.Response:
    return cluster.session().post(cluster.url(index, SERVICES), json=body, timeout=10)


def test_services_made_at_once_through_different_masters_get_different_addresses(
        cluster: MasterCluster) -> None:
    names = [f"race-{n}" for n in range(9)]
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        answers = list(pool.map(lambda pair: create(cluster, pair[0] % 3, service(pair[1], type="NodePort")),
                                enumerate(names), timeout=60))
    assert [a.status_code for a in answers] == [201] * len(names), [a.text for a in answers]
    specs = [a.json()["spec"] for a in answers]
    addresses = [ipaddress.IPv4Address(s["clusterIP"]) for s in specs]
    node_ports = [s["ports"][0]["nodePort"] for s in specs]
    assert len(set(addresses)) == len(names) and len(set(node_ports)) == len(names), specs
    assert all(a in ipaddress.IPv4Network("10.96.0.0/16") and int(a) & 0xFFFF > 1 for a in addresses)
    assert all(30000 <= p <= 32767 for p in node_ports)
    listed = cluster.session().get(cluster.url(2, f"{SERVICES}?consistent=true"), timeout=10).json()["items"]
    shown = {s["metadata"]["name"]: s["spec"]["clusterIP"] for s in listed if s["metadata"]["name"] in names}
    assert shown == {n: str(a) for n, a in zip(names, addresses, strict=True)}


def test_node_ports_and_addresses_asked_for(cluster: MasterCluster) -> None:
    made = create(cluster, 0, service("np", type="NodePort"))
    assert made.status_code == 201, made.text
    port = made.json()["spec"]["ports"][0]["nodePort"]
    address = made.json()["spec"]["clusterIP"]
    for body, field, words in (
            (service("np-2", type="NodePort", ports=[{"port": 80, "nodePort": port}]),
             "spec.ports[0].nodePort", f"provided port {port} is already allocated"),
            (service("np-3", clusterIP=address), "spec.clusterIP",
             f"provided IP {address} is already allocated"),
            (service("np-4", type="NodePort", ports=[{"port": 80, "nodePort": 8080}]),
             "spec.ports[0].nodePort", "not in service_node_port_range 30000-32767"),
            (service("np-5", ports=[{"port": 80, "nodePort": 31111}]), "spec.ports[0].nodePort",
             "may not be used when type is 'ClusterIP'"),
            (service("np-6", type="LoadBalancer"), "spec.type", "not implemented")):
        refused = create(cluster, 1, body)
        assert refused.status_code == 422 and refused.json()["field"] == field, refused.text
        assert words in refused.json()["error"], refused.text
    asked = create(cluster, 2, service("np-7", type="NodePort", clusterIP="10.96.200.7",
                                       ports=[{"port": 80, "nodePort": 31111}]))
    assert asked.status_code == 201, asked.text
    given = asked.json()["spec"]
    assert (given["clusterIP"], given["ports"][0]["nodePort"]) == ("10.96.200.7", 31111)
    admin = cluster.session()
    assert admin.delete(cluster.url(0, f"{SERVICES}/np-7"), timeout=10).status_code == 200
    again = create(cluster, 1, service("np-8", type="NodePort", clusterIP="10.96.200.7",
                                       ports=[{"port": 80, "nodePort": 31111}]))
    assert again.status_code == 201, again.text  # a deleted service's are free again


def test_an_update_keeps_the_address_and_cannot_change_it(cluster: MasterCluster) -> None:
    admin = cluster.session()
    made = create(cluster, 0, service("kept", type="NodePort"))
    assert made.status_code == 201, made.text
    address, port = made.json()["spec"]["clusterIP"], made.json()["spec"]["ports"][0]["nodePort"]
    manifest = service("kept", type="NodePort")
    manifest["metadata"]["labels"] = {"tier": "front"}
    replaced = admin.put(cluster.url(1, f"{SERVICES}/kept"), json=manifest, timeout=10)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["spec"]["clusterIP"] == address
    assert replaced.json()["spec"]["ports"][0]["nodePort"] == port
    moved = admin.put(cluster.url(2, f"{SERVICES}/kept"), json=service("kept", clusterIP="10.96.99.99"),
                      timeout=10)
    assert moved.status_code == 422 and moved.json()["field"] == "spec.clusterIP", moved.text
    assert "field is immutable" in moved.json()["error"]
    for _ in range(2):
        applied = admin.post(cluster.url(0, "/api/v1/apply"), json=service("kept", type="NodePort"),
                             timeout=10)
        assert applied.status_code == 200, applied.text
        assert applied.json()["items"][0]["spec"]["clusterIP"] == address
    assert applied.json()["actions"] == ["unchanged"]
    patched = admin.patch(cluster.url(1, f"{SERVICES}/kept"), json={"spec": {"type": "ClusterIP"}},
                          headers=MERGE, timeout=10)
    assert patched.status_code == 200, patched.text
    assert "nodePort" not in patched.json()["spec"]["ports"][0]
    assert patched.json()["spec"]["clusterIP"] == address
    taken = create(cluster, 2, service("takes", type="NodePort", ports=[{"port": 80, "nodePort": port}]))
    assert taken.status_code == 201, taken.text  # the port was released


def endpoints(cluster: MasterCluster, name: str) -> dict[str, Any] | None:
    answer = cluster.session().get(cluster.url(2, f"/api/v1/namespaces/default/endpoints/{name}"), timeout=10)
    return None if answer.status_code == 404 else answer.json()


def web_pod(name: str, node: str, port: int) -> dict[str, Any]:
    return {"apiVersion": "berth/v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "ep"}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "localhost/busybox:lab",
                                                       "ports": [{"name": "web", "containerPort": port}]}]}}


def set_pod(cluster: MasterCluster, name: str, ip: str, ready: bool) -> None:
    status = {"phase": "Running", "podIP": ip, "conditions": [
        {"type": "Ready", "status": "True" if ready else "False"}]}
    answer = cluster.session().patch(cluster.url(0, f"/api/v1/namespaces/default/pods/{name}/status"),
                                     json={"status": status}, headers=MERGE, timeout=10)
    assert answer.status_code == 200, answer.text


def ips(found: dict[str, Any] | None, key: str) -> list[tuple[str, int]]:
    return sorted((a["ip"], s["ports"][0]["port"]) for s in (found or {}).get("subsets") or []
                  for a in s.get(key) or [])


def test_endpoints_follow_the_pods_a_service_selects(cluster: MasterCluster) -> None:
    admin = cluster.session()
    add_node(cluster, "ep-h1", cpu=2000, memory=4 * GI)
    add_node(cluster, "ep-h2", cpu=2000, memory=4 * GI)
    for name, node, port, ip in (("ep-a", "ep-h1", 8080, "10.244.1.5"),
                                 ("ep-b", "ep-h2", 8081, "10.244.2.5")):
        made = admin.post(cluster.url(0, "/api/v1/namespaces/default/pods"), json=web_pod(name, node, port),
                          timeout=10)
        assert made.status_code == 201, made.text
        set_pod(cluster, name, ip, ready=True)
    assert create(cluster, 1, service("ep")).status_code == 201
    both = [("10.244.1.5", 8080), ("10.244.2.5", 8081)]  # a named targetPort, a number per pod
    wait_until(lambda: ips(endpoints(cluster, "ep"), "addresses") == both, 15, what="both pods' endpoints")
    assert len(endpoints(cluster, "ep")["subsets"]) == 2  # type: ignore[index]

    set_pod(cluster, "ep-a", "10.244.1.5", ready=False)
    wait_until(lambda: ips(endpoints(cluster, "ep"), "notReadyAddresses") == [("10.244.1.5", 8080)], 15,
               what="ep-a among the not ready")
    assert ips(endpoints(cluster, "ep"), "addresses") == [("10.244.2.5", 8081)]
    node_status = {"status": with_ready({}, SILENT, "2026-01-01T00:00:00Z")}
    assert admin.patch(cluster.url(0, "/api/v1/nodes/ep-h2/status"), json=node_status, headers=MERGE,
                       timeout=10).status_code == 200
    wait_until(lambda: ips(endpoints(cluster, "ep"), "addresses") == [], 15, what="no pod on a NotReady node")
    assert admin.patch(cluster.url(0, "/api/v1/nodes/ep-h2/status"),
                       json={"status": with_ready({}, READY, "2026-01-01T00:00:01Z")}, headers=MERGE,
                       timeout=10).status_code == 200
    wait_until(lambda: ips(endpoints(cluster, "ep"), "addresses") == [("10.244.2.5", 8081)], 15,
               what="ep-b back")

    written = {"apiVersion": "berth/v1", "kind": "Endpoints", "metadata": {"name": "ep"}, "subsets": []}
    base = cluster.url(0, "/api/v1/namespaces/default/endpoints")
    assert cluster.session("operator").post(base, json=written, timeout=10).status_code == 403
    agent = cluster.session("agent")  # reads what its node's service rules are made of, writes none
    for path in ("/api/v1/services", "/api/v1/endpoints", "/api/v1/namespaces/default/endpoints/ep"):
        assert agent.get(cluster.url(1, path), timeout=10).status_code == 200, path
    assert agent.post(base, json=written, timeout=10).status_code == 403
    refused = admin.put(f"{base}/ep", json=written, timeout=10)
    assert refused.status_code == 422 and "endpoints controller" in refused.json()["error"], refused.text

    assert admin.delete(cluster.url(0, f"{SERVICES}/ep"), timeout=10).status_code == 200
    wait_until(lambda: endpoints(cluster, "ep") is None, 15, what="the gone service's endpoints gone")


def test_endpoints_of_a_service_without_a_selector_are_the_admins(cluster: MasterCluster) -> None:
    admin = cluster.session()
    assert create(cluster, 0, service("manual", selector={})).status_code == 201
    written = {"apiVersion": "berth/v1", "kind": "Endpoints", "metadata": {"name": "manual"},
               "subsets": [{"addresses": [{"ip": "192.0.2.10"}], "ports": [{"name": "http", "port": 80}]}]}
    made = admin.post(cluster.url(1, "/api/v1/namespaces/default/endpoints"), json=written, timeout=10)
    assert made.status_code == 201, made.text
    orphan = {**written, "metadata": {"name": "no-such-service"}}
    refused = admin.post(cluster.url(1, "/api/v1/namespaces/default/endpoints"), json=orphan, timeout=10)
    assert refused.status_code == 422 and refused.json()["field"] == "metadata.name", refused.text
    assert create(cluster, 2, service("nudge")).status_code == 201  # a round of the controller
    wait_until(lambda: endpoints(cluster, "nudge") is not None, 15, what="nudge's endpoints")
    assert ips(endpoints(cluster, "manual"), "addresses") == [("192.0.2.10", 80)]  # left as written
