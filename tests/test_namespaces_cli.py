"""Namespaces through `berth`, against three real masters running the namespace controller."""

from __future__ import annotations

import yaml

from tests.conftest import STORE_ONLY
from tests.harness import MasterCluster, berth, pod, wait_until

CLUSTER_SETTINGS = {"controllers": [*STORE_ONLY["controllers"], "namespace"]}
TEAM = """
apiVersion: berth/v1
kind: Namespace
metadata: {name: team, labels: {owner: olga}}
---
kind: ConfigMap
metadata: {name: settings, namespace: team}
data: {a: "1"}
---
kind: Secret
metadata: {name: key, namespace: team}
stringData: {k: v}
---
kind: Service
metadata: {name: web, namespace: team}
spec: {selector: {app: web}, ports: [{port: 80}]}
---
kind: Deployment
metadata: {name: web, namespace: team}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: busybox}]}
"""
NAMESPACED = "pods,deployments,services,configmaps,secrets,hpa,events"


def gone(cluster: MasterCluster, namespace: str) -> bool:
    return "NotFound" in berth(cluster, "get", "ns", namespace).stderr


def test_create_get_and_describe_namespaces(cluster: MasterCluster) -> None:
    made = berth(cluster, "create", "namespace", "alpha")
    assert made.returncode == 0 and made.stdout == "namespace/alpha created\n", made.stderr
    assert berth(cluster, "create", "ns", "beta", "--dry-run=server").stdout == \
        "namespace/beta created (server dry run)\n"
    again = berth(cluster, "create", "ns", "alpha")
    assert again.returncode == 1 and "AlreadyExists" in again.stderr
    bad = berth(cluster, "create", "ns", "Not_A_Label")
    assert bad.returncode == 1 and "metadata.name" in bad.stderr and "Traceback" not in bad.stderr
    finalizers = berth(cluster, "create", "-f", "-",
                       stdin="kind: Namespace\nmetadata: {name: fin}\nspec: {finalizers: [kubernetes]}\n")
    assert finalizers.returncode == 1 and "FieldValueNotSupported" in finalizers.stderr
    assert "spec.finalizers" in finalizers.stderr

    table = berth(cluster, "get", "ns", role="viewer")
    assert table.returncode == 0, table.stderr
    rows = [line.split() for line in table.stdout.splitlines()]
    assert rows[0] == ["NAME", "STATUS", "AGE"]
    assert rows[[r[0] for r in rows].index("alpha")][:2] == ["alpha", "Active"]
    assert "default" in [r[0] for r in rows] and "beta" not in [r[0] for r in rows]
    assert "namespace/alpha" in berth(cluster, "get", "namespaces", "-o", "name").stdout.split()
    described = berth(cluster, "describe", "ns", "alpha")
    assert described.returncode == 0 and "Phase:" in described.stdout and "Active" in described.stdout

    for verb in (("create", "ns", "gamma"), ("delete", "ns", "alpha"), ("label", "ns", "alpha", "a=b")):
        refused = berth(cluster, *verb, role="operator")
        assert refused.returncode == 1 and "Forbidden" in refused.stderr, verb


def test_the_first_object_in_a_namespace_makes_it(cluster: MasterCluster) -> None:
    assert gone(cluster, "implicit")
    made = berth(cluster, "create", "-n", "implicit", "-f", "-", role="operator",
                 stdin="kind: ConfigMap\nmetadata: {name: first}\ndata: {}\n")
    assert made.returncode == 0, made.stderr
    shown = yaml.safe_load(berth(cluster, "get", "ns", "implicit", "-o", "yaml").stdout)
    assert shown["status"] == {"phase": "Active"} and shown["metadata"]["creationTimestamp"]


def test_deleting_a_namespace_deletes_what_it_holds(cluster: MasterCluster) -> None:
    applied = berth(cluster, "apply", "-f", "-", stdin=TEAM)
    assert applied.returncode == 0, applied.stderr
    assert "namespace/team created" in applied.stdout
    pods = berth(cluster, "create", "-n", "team", "-f", "-", stdin=yaml.safe_dump_all(
        [pod(f"p{i}", "team") for i in range(3)]))
    assert pods.returncode == 0, pods.stderr
    deleted = berth(cluster, "delete", "ns", "team")
    assert deleted.returncode == 0 and deleted.stdout == 'namespace "team" deleted\n', deleted.stderr
    wait_until(lambda: gone(cluster, "team"), 20, what="namespace team removed")
    left = berth(cluster, "get", NAMESPACED, "-n", "team", "--consistent")
    assert left.returncode == 0 and left.stdout == "", left.stdout
    # the name is free again, and a new namespace of that name starts empty and Active
    assert berth(cluster, "create", "ns", "team").returncode == 0
    assert "Active" in berth(cluster, "get", "ns", "team").stdout


def test_a_terminating_namespace_refuses_new_objects(cluster: MasterCluster) -> None:
    """A pod bound to a node (no runtime here to stop it) holds its namespace Terminating."""
    assert berth(cluster, "create", "ns", "held").returncode == 0
    bound = pod("stuck", "held")
    bound["spec"]["nodeName"] = "ghost"
    admin = cluster.session()
    created = admin.post(cluster.url(0, "/api/v1/namespaces/held/pods"), json=bound, timeout=10)
    assert created.status_code == 201, created.text
    assert berth(cluster, "create", "-n", "held", "-f", "-",
                 stdin="kind: ConfigMap\nmetadata: {name: c1}\ndata: {}\n").returncode == 0
    assert berth(cluster, "delete", "ns", "held").returncode == 0
    assert berth(cluster, "get", "ns", "held").stdout.split()[3:5] == ["held", "Terminating"]
    refused = berth(cluster, "create", "-n", "held", "-f", "-",
                    stdin="kind: ConfigMap\nmetadata: {name: c2}\ndata: {}\n")
    assert refused.returncode == 1 and "Forbidden" in refused.stderr
    assert "unable to create new content in namespace held because it is being terminated" in refused.stderr
    # the controller deleted the configmap and marked the pod, which waits for its grace
    wait_until(lambda: "NotFound" in berth(cluster, "get", "cm", "c1", "-n", "held").stderr, 20,
               what="configmap deleted")
    wait_until(lambda: "Terminating" in berth(cluster, "get", "pod", "stuck", "-n", "held").stdout, 20,
               what="pod marked")
    assert not gone(cluster, "held")
    assert berth(cluster, "delete", "pod", "stuck", "-n", "held", "--now").returncode == 0
    wait_until(lambda: gone(cluster, "held"), 20, what="namespace held removed once empty")


def test_default_cannot_be_deleted(cluster: MasterCluster) -> None:
    refused = berth(cluster, "delete", "ns", "default")
    assert refused.returncode == 1 and "Forbidden" in refused.stderr
    assert "may not be deleted" in refused.stderr
    assert "Active" in berth(cluster, "get", "ns", "default").stdout
    dry = berth(cluster, "delete", "ns", "default", "--dry-run=server")
    assert dry.returncode == 1 and "Forbidden" in dry.stderr
