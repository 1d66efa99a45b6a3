"""The HTTP API against three real masters: CRUD, CAS, selectors, apply, bad input."""

from __future__ import annotations

import json

import pytest

from tests.harness import MasterCluster, pod

PODS = "/api/v1/namespaces/default/pods"


def test_crud_and_cas(cluster: MasterCluster) -> None:
    s = cluster.session()
    created = s.post(cluster.url(0, PODS), json=pod("crud", labels={"app": "web"}))
    assert created.status_code == 201
    rv = created.json()["metadata"]["resourceVersion"]
    again = s.post(cluster.url(1, PODS), json=pod("crud"))
    assert again.status_code == 409 and again.json()["reason"] == "AlreadyExists"

    replaced = pod("crud", labels={"app": "web", "tier": "fe"})
    replaced["metadata"]["resourceVersion"] = rv
    ok = s.put(cluster.url(1, f"{PODS}/crud"), json=replaced)
    assert ok.status_code == 200, ok.text
    assert ok.json()["metadata"]["resourceVersion"] > rv
    stale = s.put(cluster.url(2, f"{PODS}/crud"), json=replaced)  # same, now stale, rv
    assert stale.status_code == 409
    assert stale.json() == {"error": stale.json()["error"], "field": "metadata.resourceVersion",
                            "reason": "Conflict"}

    merge = {"Content-Type": "application/merge-patch+json"}
    fixed = s.patch(cluster.url(2, f"{PODS}/crud"), data=json.dumps({"spec": {"restartPolicy": "Never"}}),
                    headers=merge)  # a pod's spec is fixed once it exists, as in Kubernetes
    assert fixed.status_code == 422 and fixed.json()["field"] == "spec.restartPolicy", fixed.text
    image = {"containers": [{**pod("crud")["spec"]["containers"][0], "image": "localhost/busybox:other"}]}
    patched = s.patch(cluster.url(2, f"{PODS}/crud"), data=json.dumps(
        {"metadata": {"labels": {"tier": None}}, "spec": image}), headers=merge)
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["metadata"]["labels"] == {"app": "web"}
    assert body["spec"]["containers"][0]["image"] == "localhost/busybox:other"
    assert body["metadata"]["generation"] == 2

    status = s.put(cluster.url(0, f"{PODS}/crud/status"), json={"status": {"phase": "Running"}})
    assert status.status_code == 200 and status.json()["status"] == {"phase": "Running"}
    assert status.json()["metadata"]["generation"] == 2  # status does not bump generation
    kept = s.put(cluster.url(0, f"{PODS}/crud"), json=pod("crud", labels={"app": "web"}))
    assert kept.json()["status"] == {"phase": "Running"}  # spec writes keep status

    wrong = s.delete(cluster.url(1, f"{PODS}/crud?resourceVersion=1"))
    assert wrong.status_code == 409
    gone = s.delete(cluster.url(1, f"{PODS}/crud"))
    assert gone.status_code == 200
    assert s.get(cluster.url(2, f"{PODS}/crud?consistent=1")).status_code == 404


def test_list_with_label_selector_and_across_namespaces(cluster: MasterCluster) -> None:
    s = cluster.session()
    for name, ns, labels in [("sel-a", "default", {"app": "web", "tier": "fe"}),
                             ("sel-b", "default", {"app": "web", "tier": "db"}),
                             ("sel-c", "other", {"app": "web", "tier": "fe"})]:
        assert s.post(cluster.url(0, f"/api/v1/namespaces/{ns}/pods"),
                      json=pod(name, namespace=ns, labels=labels)).status_code == 201
    got = s.get(cluster.url(1, "/api/v1/pods?consistent=1&labelSelector=app=web,tier!=db")).json()
    assert {i["metadata"]["name"] for i in got["items"]} == {"sel-a", "sel-c"}
    assert got["kind"] == "PodList" and got["metadata"]["resourceVersion"] > 0
    scoped = s.get(cluster.url(1, "/api/v1/namespaces/other/pods?labelSelector=tier+in+(fe,x)"))
    assert [i["metadata"]["name"] for i in scoped.json()["items"]] == ["sel-c"]


def test_cluster_scoped_nodes(cluster: MasterCluster) -> None:
    s = cluster.session()
    node = {"kind": "Node", "metadata": {"name": "h9"}, "spec": {"address": "10.250.0.19"}}
    assert s.post(cluster.url(0, "/api/v1/nodes"), json=node).status_code == 201
    assert s.get(cluster.url(1, "/api/v1/nodes/h9?consistent=1")).json()["spec"]["sshPort"] == 22
    assert s.post(cluster.url(0, "/api/v1/namespaces/default/nodes"), json=node).status_code == 404


MANIFEST = """
apiVersion: berth/v1
kind: ConfigMap
metadata: {name: app-config}
data: {greeting: hello}
---
apiVersion: berth/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: localhost/busybox:lab
        command: [httpd, -f, -p, "80"]
        ports: [{containerPort: 80, hostPort: 8080}]
        resources: {requests: {cpu: 250m, memory: 64Mi}, limits: {memory: 128Mi}}
---
apiVersion: berth/v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{port: 30080, targetPort: 80}]}
"""


def apply(cluster: MasterCluster, index: int, text: str, namespace: str = "apply"):
    return cluster.session().post(cluster.url(index, f"/api/v1/apply?namespace={namespace}"),
                                  data=text, headers={"Content-Type": "application/yaml"})


def test_apply_creates_then_updates_then_is_unchanged(cluster: MasterCluster) -> None:
    first = apply(cluster, 0, MANIFEST)
    assert first.status_code == 200, first.text
    assert first.json()["actions"] == ["created"] * 3
    assert apply(cluster, 1, MANIFEST).json()["actions"] == ["unchanged"] * 3
    changed = apply(cluster, 2, MANIFEST.replace("replicas: 2", "replicas: 3")).json()
    assert changed["actions"] == ["unchanged", "configured", "unchanged"]
    assert changed["items"][1]["metadata"]["generation"] == 2


def test_apply_with_one_bad_document_changes_nothing(cluster: MasterCluster) -> None:
    bad = MANIFEST.replace("name: web, labels", "name: web-two, labels").replace(
        "targetPort: 80", "targetPort: 99999")
    response = apply(cluster, 0, bad, namespace="half")
    assert response.status_code == 400
    assert response.json()["field"] == "spec.ports[0].targetPort"
    assert "document 2" in response.json()["error"]
    listed = cluster.session().get(cluster.url(0, "/api/v1/namespaces/half/configmaps?consistent=1"))
    assert listed.json()["items"] == []


BAD_BODIES = [
    ("name with shell metacharacters", lambda p: p["metadata"].update(name="a;touch /tmp/x"),
     "metadata.name"),
    ("quantity", lambda p: p["spec"]["containers"][0]["resources"]["requests"].update(cpu="2 cores"),
     "spec.containers[0].resources.requests.cpu"),
    ("label value", lambda p: p["metadata"].update(labels={"app": "x" * 64}), "metadata.labels.app"),
    ("image reference", lambda p: p["spec"]["containers"][0].update(image="bad image"),
     "spec.containers[0].image"),
    ("port", lambda p: p["spec"]["containers"][0].update(ports=[{"containerPort": 0}]),
     "spec.containers[0].ports[0].containerPort"),
    ("env name", lambda p: p["spec"]["containers"][0].update(env=[{"name": "A-B", "value": "1"}]),
     "spec.containers[0].env[0].name"),
    ("unknown field", lambda p: p["spec"].update(hostNetwork=True), "spec.hostNetwork"),
    ("wrong type", lambda p: p["spec"].update(containers="web"), "spec.containers"),
]


@pytest.mark.parametrize(("what", "mutate", "field"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_input_is_a_400_naming_the_field(cluster: MasterCluster, what, mutate, field) -> None:
    document = pod("bad-input")
    mutate(document)
    response = cluster.session().post(cluster.url(0, PODS), json=document)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["field"] == field and body["reason"].startswith("FieldValue") and body["error"]


def test_malformed_oversized_and_mismatched_requests(cluster: MasterCluster) -> None:
    s = cluster.session()
    malformed = s.post(cluster.url(0, PODS), data="{not json",
                       headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400 and malformed.json()["field"] == "body"
    huge = pod("huge")
    huge["metadata"]["annotations"] = {"blob": "x" * (2 << 20)}
    too_big = s.post(cluster.url(0, PODS), json=huge)
    assert too_big.status_code == 413 and too_big.json()["reason"] == "RequestEntityTooLarge"
    mismatch = s.put(cluster.url(0, f"{PODS}/other-name"), json=pod("this-name"))
    # the body fits the published schema and contradicts the path: a rule beyond the schema, 422
    assert mismatch.status_code == 422 and mismatch.json()["field"] == "metadata.name"
    wrong_ns = s.post(cluster.url(0, PODS), json=pod("x", namespace="elsewhere"))
    assert wrong_ns.status_code == 422 and wrong_ns.json()["field"] == "metadata.namespace"
    unknown = s.get(cluster.url(0, "/api/v1/namespaces/default/gadgets"))
    assert unknown.status_code == 404 and unknown.json()["reason"] == "NotFound"
    bad_rv = s.delete(cluster.url(0, f"{PODS}/x?resourceVersion=abc"))
    assert bad_rv.status_code == 400 and bad_rv.json()["field"] == "resourceVersion"
    bad_selector = s.get(cluster.url(0, f"{PODS}?labelSelector=a=b=c"))
    assert bad_selector.status_code == 400 and bad_selector.json()["field"] == "labelSelector"
    bad_watch = s.get(cluster.url(0, "/api/v1/watch?kind=Gadget"))
    assert bad_watch.status_code == 400 and bad_watch.json()["field"] == "kind"
    not_yaml = s.post(cluster.url(0, "/api/v1/apply"), data="a: [",
                      headers={"Content-Type": "application/yaml"})
    assert not_yaml.status_code == 400 and not_yaml.json()["field"] == "body"


def test_cluster_status_health_and_openapi(cluster: MasterCluster) -> None:
    s = cluster.session()
    status = s.get(cluster.url(0, "/api/v1/cluster")).json()
    assert status["leader"] in {m["address"] for m in status["members"]}
    assert len(status["members"]) == 3 and all(m["reachable"] for m in status["members"])
    assert sum(m["leader"] for m in status["members"]) == 1 and status["term"] >= 1
    assert status["ready"] and status["commitIndex"] >= 1
    anyone = cluster.session(None)
    assert anyone.get(cluster.url(1, "/healthz")).status_code == 200  # no token needed
    assert anyone.get(cluster.url(1, "/readyz")).json()["ready"] is True
    doc = s.get(cluster.url(2, "/api/v1/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    assert "/api/v1/namespaces/{namespace}/pods/{name}" in doc["paths"]
    meta = doc["components"]["schemas"]["ObjectMeta"]["properties"]["name"]
    assert meta["pattern"].startswith("^[a-z0-9]")
    for kind in ("Node", "Pod", "Deployment", "HorizontalPodAutoscaler", "Service", "ConfigMap",
                 "Secret", "Event"):
        assert kind in doc["components"]["schemas"]


def test_sessions_check_rights_and_input_before_reaching_a_host(cluster: MasterCluster) -> None:
    """Exec and port-forward sessions: refused, or told what is wrong, before any host is asked
    (these masters have no SSH key: a request that got that far would be a 503)."""
    admin, viewer = cluster.session(), cluster.session("viewer")
    cluster.session().post(cluster.url(0, "/api/v1/namespaces/default/pods"), json=pod("sess"), timeout=10)
    base = cluster.url(0, "/api/v1/namespaces/default/pods/sess")
    for path, body in (("exec/sessions", {"command": ["sh"]}), ("portforward/sessions", {"port": 80})):
        refused = viewer.post(f"{base}/{path}", json=body, timeout=10)
        assert refused.status_code == 403, refused.text
    for path, body, field in (("exec/sessions", {"command": []}, "command"),
                              ("exec/sessions", {"command": ["sh"], "rows": 0}, "rows"),
                              ("exec/sessions", {"command": ["sh"], "shell": True}, "shell"),
                              ("portforward/sessions", {"port": 70000}, "port"),
                              ("portforward/sessions", {"port": "80; reboot"}, "port")):
        answer = admin.post(f"{base}/{path}", json=body, timeout=10)
        assert answer.status_code == 400 and answer.json()["field"] == field, (body, answer.text)
    dry = admin.post(f"{base}/portforward/sessions", params={"dryRun": "yes"}, json={"port": 80}, timeout=10)
    assert dry.status_code == 400 and dry.json()["field"] == "dryRun"
    for method, path in (("GET", "output"), ("POST", "input"), ("POST", "resize")):
        missing = admin.request(method, cluster.url(0, f"/api/v1/sessions/{'x' * 32}/{path}"),
                                json={"rows": 1, "cols": 1}, timeout=10)
        assert missing.status_code == 404, missing.text
