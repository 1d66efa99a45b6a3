"""Volumes, claims and classes on real masters with a stand-in for the hosts (berth/lab/fake_kubelet.py):
the scheduler and the volumes controller bind claims, tell why one waits, keep a claim in use until
its pod is gone, and place a pod whose claim waited for it on the node of its volume.

No SSH here: nothing is provisioned (the volumes are made beforehand, as an admin makes them).
Pods name their claims in `spec.volumes`; until the pod schema takes volumes (the host side's
change), the tests that need such pods say so and are skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from berth.lab.fake_kubelet import FakeKubelet
from tests.harness import GI, TOKENS, MasterCluster, add_node, berth, pod, wait_until

CLUSTER_SETTINGS = {"controllers": ["scheduler", "persistent-volume"]}  # no node-lifecycle: nodes stay Ready
NS = "/api/v1/namespaces/default"
NODES = ("n1", "n2", "n3")


@pytest.fixture(scope="module")
def hosts(cluster: MasterCluster) -> Iterator[MasterCluster]:
    for name in NODES:
        add_node(cluster, name, cpu=8000, memory=16 * GI)
    with FakeKubelet([m.api_url for m in cluster.masters], TOKENS["admin"][1], ca_file=cluster.ca_file):
        yield cluster


def storage_class(name: str, **fields: Any) -> dict[str, Any]:
    return {"apiVersion": "berth/v1", "kind": "StorageClass", "metadata": {"name": name},
            "provisioner": "berth.io/shared", "parameters": {"server": "n3", "path": "/srv/volumes"},
            **fields}


def volume(name: str, size: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "berth/v1", "kind": "PersistentVolume", "metadata": {"name": name},
            "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                     "hostPath": {"path": f"/srv/{name}"}, **spec}}


def claim(name: str, size: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "berth/v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}, **spec}}


def using(name: str, *claims: str) -> dict[str, Any]:
    made = pod(name)
    made["spec"]["volumes"] = [{"name": f"v{i}", "persistentVolumeClaim": {"claimName": c, "readOnly": False}}
                               for i, c in enumerate(claims)]
    return made


def post(cluster: MasterCluster, path: str, body: dict[str, Any], role: str = "admin") -> requests.Response:
    return cluster.session(role).post(cluster.url(0, path), json=body, timeout=10)


def made(cluster: MasterCluster, path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = post(cluster, path, body)
    assert answer.status_code == 201, answer.text
    return answer.json()


def get(cluster: MasterCluster, path: str, index: int = 1) -> dict[str, Any] | None:
    answer = cluster.session().get(cluster.url(index, path), params={"consistent": "1"}, timeout=10)
    if answer.status_code == 404:
        return None
    answer.raise_for_status()
    return answer.json()


def phase(cluster: MasterCluster, path: str) -> str | None:
    found = get(cluster, path)
    return ((found or {}).get("status") or {}).get("phase")


def told(cluster: MasterCluster, name: str, reason: str) -> str | None:
    """The message of the event `reason` about the object `name`, once there is one."""
    events = cluster.session().get(cluster.url(2, f"{NS}/events"), params={"consistent": "1"},
                                   timeout=10).json()["items"]
    found = [e for e in events if e["involvedObject"]["name"] == name and e["reason"] == reason]
    return found[0]["message"] if found else None


def test_an_immediate_claim_binds_and_one_with_no_match_is_told_why(hosts: MasterCluster) -> None:
    cluster = hosts
    made(cluster, "/api/v1/storageclasses", storage_class("fast"))
    made(cluster, "/api/v1/persistentvolumes", volume("pv-fast", "5Gi", storageClassName="fast"))
    made(cluster, "/api/v1/persistentvolumes", volume("pv-big", "50Gi", storageClassName="fast"))
    data = made(cluster, f"{NS}/persistentvolumeclaims", claim("data", "2Gi", storageClassName="fast"))
    wait_until(lambda: phase(cluster, f"{NS}/persistentvolumeclaims/data") == "Bound", 20, what="data Bound")
    bound = get(cluster, f"{NS}/persistentvolumeclaims/data")
    pv = get(cluster, "/api/v1/persistentvolumes/pv-fast")
    assert bound is not None and pv is not None
    assert bound["spec"]["volumeName"] == "pv-fast"  # the smallest that fits
    assert bound["status"] == {"phase": "Bound", "capacity": {"storage": "5Gi"},
                               "accessModes": ["ReadWriteOnce"]}
    assert pv["spec"]["claimRef"] == {"namespace": "default", "name": "data", "uid": data["metadata"]["uid"]}
    assert pv["status"]["phase"] == "Bound"
    wait_until(lambda: phase(cluster, "/api/v1/persistentvolumes/pv-big") == "Available", 20, what="pv-big")

    made(cluster, f"{NS}/persistentvolumeclaims", claim("nomatch", "900Gi", storageClassName=""))
    message = wait_until(lambda: told(cluster, "nomatch", "FailedBinding"), 20, what="FailedBinding")
    assert message == "no persistent volumes available for this claim and no storage class is set"
    assert phase(cluster, f"{NS}/persistentvolumeclaims/nomatch") == "Pending"

    shown = berth(cluster, "get", "pvc")
    assert shown.returncode == 0, shown.stderr
    lines = [line.split() for line in shown.stdout.splitlines()]
    assert lines[0] == ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS", "MODES", "STORAGECLASS", "AGE"]
    assert lines[1][:6] == ["data", "Bound", "pv-fast", "5Gi", "RWO", "fast"]
    classes = berth(cluster, "get", "sc").stdout.split()
    assert classes[5:9] == ["fast", "berth.io/shared", "Delete", "Immediate"]


def test_bad_storage_is_refused_by_name_and_volumes_are_the_admins(hosts: MasterCluster) -> None:
    cluster = hosts
    bad = post(cluster, "/api/v1/persistentvolumes", volume("bad", "1Gi", hostPath={"path": "/srv/../etc"}))
    # the published pattern allows the characters; climbing out is a rule beyond it: 422
    assert bad.status_code == 422 and bad.json()["field"] == "spec.hostPath.path", bad.text
    bad = post(cluster, "/api/v1/storageclasses", storage_class("bad", provisioner="example.com/nfs"))
    assert bad.status_code == 400 and bad.json()["field"] == "provisioner", bad.text
    assert "berth.io/local, berth.io/shared" in bad.json()["error"]
    bad = post(cluster, f"{NS}/persistentvolumeclaims",
               claim("bad", "1Gi", selector={"matchLabels": {"a": "b"}}))
    assert bad.status_code == 400 and bad.json()["reason"] == "FieldValueNotSupported", bad.text
    operator = post(cluster, "/api/v1/persistentvolumes", volume("mine", "1Gi"), role="operator")
    assert operator.status_code == 403, operator.text
    assert post(cluster, f"{NS}/persistentvolumeclaims", claim("operators", "900Gi", storageClassName=""),
                role="operator").status_code == 201
    status = cluster.session().patch(cluster.url(0, "/api/v1/persistentvolumes/pv-big/status"),
                                     json={"status": {"phase": "Sideways"}},
                                     headers={"Content-Type": "application/merge-patch+json"}, timeout=10)
    assert status.status_code == 400 and status.json()["field"] == "status.phase", status.text
    fixed = cluster.session().patch(cluster.url(0, f"{NS}/persistentvolumeclaims/operators"),
                                    json={"spec": {"resources": {"requests": {"storage": "9Gi"}}}},
                                    headers={"Content-Type": "application/merge-patch+json"}, timeout=10)
    assert fixed.status_code == 422 and fixed.json()["field"] == "spec.resources.requests.storage", fixed.text


def test_a_claim_in_use_stays_terminating_until_its_pod_is_gone(hosts: MasterCluster) -> None:
    cluster = hosts
    made(cluster, "/api/v1/persistentvolumes", volume("pv-kept", "1Gi", storageClassName=""))
    made(cluster, f"{NS}/persistentvolumeclaims", claim("kept", "1Gi", storageClassName=""))
    wait_until(lambda: phase(cluster, f"{NS}/persistentvolumeclaims/kept") == "Bound", 20, what="kept Bound")
    made(cluster, f"{NS}/pods", using("user", "kept"))
    wait_until(lambda: phase(cluster, f"{NS}/pods/user") == "Running", 20, what="user Running")

    deleted = cluster.session().delete(cluster.url(0, f"{NS}/persistentvolumeclaims/kept"), timeout=10)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    assert deleted.json()["metadata"].get("deletionTimestamp")
    # a round of the controller after the delete: it tells of a claim made afterwards
    made(cluster, f"{NS}/persistentvolumeclaims", claim("probe", "1Ti", storageClassName=""))
    wait_until(lambda: told(cluster, "probe", "FailedBinding"), 20, what="a later round")
    assert get(cluster, f"{NS}/persistentvolumeclaims/kept") is not None
    shown = berth(cluster, "get", "pvc", "kept").stdout.splitlines()[1].split()
    assert shown[:3] == ["kept", "Terminating", "pv-kept"]
    refused = post(cluster, f"{NS}/pods", using("late", "kept"))  # a new pod may not have it ...
    assert refused.status_code == 201
    wait_until(lambda: 'persistentvolumeclaim "kept" is being deleted' in (
        told(cluster, "late", "FailedScheduling") or ""), 20, what="late unschedulable")

    assert cluster.session().delete(cluster.url(0, f"{NS}/pods/user"), timeout=10).status_code == 200
    wait_until(lambda: get(cluster, f"{NS}/persistentvolumeclaims/kept") is None, 20, what="kept gone")
    wait_until(lambda: phase(cluster, "/api/v1/persistentvolumes/pv-kept") == "Released", 20,
               what="pv-kept Released")  # Retain, as made by hand: kept, Released
    for path in (f"{NS}/pods/late", "/api/v1/persistentvolumes/pv-kept"):
        cluster.session().delete(cluster.url(0, path), timeout=10)
    wait_until(lambda: get(cluster, "/api/v1/persistentvolumes/pv-kept") is None, 20, what="pv-kept gone")


def test_a_claim_waits_for_its_pod_which_goes_to_the_node_of_its_local_volume(hosts: MasterCluster) -> None:
    cluster = hosts
    made(cluster, "/api/v1/storageclasses", {
        "apiVersion": "berth/v1", "kind": "StorageClass", "metadata": {"name": "local-wait"},
        "provisioner": "berth.io/local", "volumeBindingMode": "WaitForFirstConsumer"})
    made(cluster, "/api/v1/persistentvolumes", volume(
        "local-n2", "10Gi", storageClassName="local-wait", hostPath=None, local={"path": "/mnt/disk"},
        nodeAffinity={"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n2"]}]}]}}))
    made(cluster, f"{NS}/persistentvolumeclaims", claim("cache", "5Gi", storageClassName="local-wait"))
    message = wait_until(lambda: told(cluster, "cache", "WaitForFirstConsumer"), 20,
                         what="WaitForFirstConsumer")
    assert message == "waiting for first consumer to be created before binding"
    assert phase(cluster, f"{NS}/persistentvolumeclaims/cache") == "Pending"
    for index in range(3):  # n2 the busiest: only its volume brings the next pod there
        made(cluster, f"{NS}/pods", pod(f"filler-{index}") | {"spec": {**pod("x")["spec"], "nodeName": "n2"}})

    made(cluster, f"{NS}/pods", using("cacher", "cache"))
    node = wait_until(lambda: (get(cluster, f"{NS}/pods/cacher") or {}).get("spec", {}).get("nodeName"),
                      20, what="cacher scheduled")
    assert node == "n2"
    wait_until(lambda: phase(cluster, f"{NS}/persistentvolumeclaims/cache") == "Bound", 20,
               what="cache Bound")
    cache = get(cluster, f"{NS}/persistentvolumeclaims/cache")
    assert cache is not None and cache["spec"]["volumeName"] == "local-n2"
    assert cache["metadata"]["annotations"]["volume.kubernetes.io/selected-node"] == "n2"
    assert phase(cluster, "/api/v1/persistentvolumes/local-n2") == "Bound"
    page = berth(cluster, "describe", "pvc", "cache").stdout
    assert "Used By:              cacher" in page and "WaitForFirstConsumer" in page, page
