"""Every role's allowed and forbidden calls, and secret values hidden from all but admin."""

from __future__ import annotations

import json

from tests.harness import MasterCluster, pod

SECRET = {"kind": "Secret", "metadata": {"name": "db"}, "stringData": {"password": "s3cr3t-value"}}
ENCODED = "czNjcjN0LXZhbHVl"  # base64 of s3cr3t-value: Secret data as Kubernetes keeps it
SECRETS = "/api/v1/namespaces/default/secrets"


def node(name: str) -> dict:
    return {"kind": "Node", "metadata": {"name": name}, "spec": {"address": "10.250.0.11"}}


def test_tokens_are_required(cluster: MasterCluster) -> None:
    url = cluster.url(0, "/api/v1/pods")
    anyone = cluster.session(None)
    missing = anyone.get(url)
    assert missing.status_code == 401 and missing.json()["field"] == "Authorization"
    wrong = anyone.get(url, headers={"Authorization": "Bearer not-a-token"})
    assert wrong.status_code == 401
    assert anyone.get(cluster.url(0, "/api/v1/cluster")).status_code == 401
    assert anyone.get(cluster.url(0, "/healthz")).status_code == 200


def test_admin_and_operator_write_only_admin_reads_secret_values(cluster: MasterCluster) -> None:
    admin, operator, viewer = (cluster.session(r) for r in ("admin", "operator", "viewer"))
    created = operator.post(cluster.url(0, SECRETS), json=SECRET)
    assert created.status_code == 201
    assert created.json()["data"] == {"password": None}  # the writer does not get it back
    assert admin.get(cluster.url(1, f"{SECRETS}/db?consistent=1")).json()["data"] == {
        "password": ENCODED}
    for session in (operator, viewer):
        assert session.get(cluster.url(1, f"{SECRETS}/db?consistent=1")).json()["data"] == {
            "password": None}
        listed = session.get(cluster.url(2, "/api/v1/secrets?consistent=1")).json()["items"]
        assert all(v is None for item in listed for v in item["data"].values())
    url = cluster.url(0, "/api/v1/watch?kind=Secret&since=0&timeoutSeconds=2")
    with viewer.get(url, stream=True) as stream:
        lines = [json.loads(line) for line in stream.iter_lines()]
    assert any(e["type"] == "ADDED" for e in lines)
    assert "s3cr3t-value" not in json.dumps(lines)
    assert operator.delete(cluster.url(0, f"{SECRETS}/db")).status_code == 200
    assert "s3cr3t-value" not in cluster.logs()


def test_viewer_reads_but_never_writes(cluster: MasterCluster) -> None:
    viewer = cluster.session("viewer")
    assert viewer.get(cluster.url(0, "/api/v1/pods")).status_code == 200
    assert viewer.get(cluster.url(0, "/api/v1/cluster")).status_code == 200
    for response in (
        viewer.post(cluster.url(0, "/api/v1/namespaces/default/pods"), json=pod("v")),
        viewer.delete(cluster.url(0, "/api/v1/namespaces/default/pods/v")),
        viewer.post(cluster.url(0, "/api/v1/apply"), json=pod("v")),
        viewer.patch(cluster.url(0, "/api/v1/nodes/h1"), json={"spec": {"unschedulable": True}},
                     headers={"Content-Type": "application/merge-patch+json"}),
    ):
        assert response.status_code == 403, response.text
        assert response.json()["reason"] == "Forbidden"


def test_agent_touches_only_its_own_node(cluster: MasterCluster) -> None:
    agent = cluster.session("agent")  # token name h1
    assert agent.post(cluster.url(0, "/api/v1/nodes"), json=node("h1")).status_code == 201
    status = agent.put(cluster.url(1, "/api/v1/nodes/h1/status"),
                       json={"status": {"capacity": {"cpu": "2", "memory": "4Gi"}}})
    assert status.status_code == 200, status.text
    assert agent.get(cluster.url(2, "/api/v1/nodes/h1")).status_code == 200
    assert agent.get(cluster.url(2, "/api/v1/cluster")).status_code == 200
    assert agent.get(cluster.url(0, "/api/v1/nodes")).status_code == 200  # all nodes: routes to their pods
    for response in (
        agent.post(cluster.url(0, "/api/v1/nodes"), json=node("h2")),
        agent.put(cluster.url(0, "/api/v1/nodes/h2/status"), json={"status": {}}),
        agent.delete(cluster.url(0, "/api/v1/nodes/h1")),
        agent.get(cluster.url(0, "/api/v1/secrets")),
        agent.post(cluster.url(0, "/api/v1/namespaces/default/pods"), json=pod("a")),
    ):
        assert response.status_code == 403, response.text


def test_an_agent_sees_other_nodes_pods_only_as_network_policy_peers(cluster: MasterCluster) -> None:
    """Its network policies need every pod's labels and address; an agent's token (on a host an
    attacker may hold) must not read another node's pods' commands, env values or annotations."""
    admin, agent = cluster.session("admin"), cluster.session("agent")  # the agent's token name is h1
    pods = "/api/v1/namespaces/default/pods"
    for name, node_name in (("peer-mine", "h1"), ("peer-theirs", "h2")):
        manifest = pod(name)
        manifest["metadata"]["labels"] = {"role": "client"}
        manifest["metadata"]["annotations"] = {"note": "annotation-value"}
        manifest["spec"]["nodeName"] = node_name
        manifest["spec"]["containers"][0]["env"] = [{"name": "TOKEN", "value": "env-secret-value"}]
        manifest["spec"]["containers"][0]["ports"] = [{"name": "http", "containerPort": 80}]
        assert admin.post(cluster.url(0, pods), json=manifest).status_code == 201
    listed = agent.get(cluster.url(1, "/api/v1/pods?consistent=1"))
    assert listed.status_code == 200, listed.text
    by_name = {p["metadata"]["name"]: p for p in listed.json()["items"]}
    mine, theirs = by_name["peer-mine"], by_name["peer-theirs"]
    assert mine["spec"]["containers"][0]["env"][0]["value"] == "env-secret-value"  # its own node: whole
    assert theirs["metadata"]["labels"] == {"role": "client"}
    assert theirs["spec"] == {"nodeName": "h2", "containers": [{"ports": [
        {"name": "http", "containerPort": 80, "protocol": "TCP"}]}]}
    assert "annotation-value" not in json.dumps(theirs) and "sleep" not in json.dumps(theirs)
    url = cluster.url(2, "/api/v1/watch?kind=Pod&since=0&timeoutSeconds=1")
    with agent.get(url, stream=True) as stream:
        assert stream.status_code == 200
        lines = [json.loads(line) for line in stream.iter_lines()]
    seen = [e["object"] for e in lines
            if e["type"] == "ADDED" and e["object"]["metadata"]["name"] == "peer-theirs"]
    assert seen and "env-secret-value" not in json.dumps(seen) and "annotation-value" not in json.dumps(seen)
    assert agent.get(cluster.url(0, f"{pods}/peer-theirs")).status_code == 403  # no get of one pod
    for path in ("/api/v1/networkpolicies", "/api/v1/namespaces"):
        assert agent.get(cluster.url(0, path)).status_code == 200
    policy = {"kind": "NetworkPolicy", "metadata": {"name": "open"}, "spec": {"podSelector": {}}}
    assert agent.post(cluster.url(0, "/api/v1/namespaces/default/networkpolicies"),
                      json=policy).status_code == 403
    for name in ("peer-mine", "peer-theirs"):
        assert admin.delete(cluster.url(0, f"{pods}/{name}")).status_code == 200
