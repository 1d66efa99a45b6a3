"""The workload commands as a user runs them: `berth rollout`, `scale`, `set image`, `get` and `describe`
of deployments and replicasets, `delete --cascade`, against three masters running the workload
controllers, with the fake kubelet (berth/lab/fake_kubelet.py) playing the hosts: pods of an image
with "missing" in its name never become ready."""

from __future__ import annotations

import itertools
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from berth.lab.fake_kubelet import FakeKubelet
from tests.harness import GI, TOKENS, MasterCluster, add_node, berth, control_characters, wait_until
from tests.test_workloads_masters import NS, SETTINGS, deployment, get, replicasets, rolled_out

CLUSTER_SETTINGS = SETTINGS
CAUSE = "kubernetes.io/change-cause"
IMAGE = "localhost/busybox:lab"


@pytest.fixture(scope="module")
def hosts(cluster: MasterCluster) -> Iterator[MasterCluster]:
    for index in range(3):
        add_node(cluster, f"n{index}", cpu=64000, memory=256 * GI)
    with FakeKubelet([m.api_url for m in cluster.masters], TOKENS["admin"][1], ca_file=cluster.ca_file,
                     never_ready=lambda image: "missing" in image):
        yield cluster


def ok(cluster: MasterCluster, *args: str, stdin: str | None = None) -> str:
    result = berth(cluster, *args, stdin=stdin)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result.stdout


def fails(cluster: MasterCluster, *args: str) -> subprocess.CompletedProcess:
    result = berth(cluster, *args)
    assert result.returncode == 1, (args, result.stdout, result.stderr)
    return result


def apply(cluster: MasterCluster, name: str, replicas: int, **spec: Any) -> None:
    annotations = spec.pop("annotations", {})
    body = deployment(name, replicas, **spec)
    body["metadata"]["annotations"] = annotations
    assert f"deployment/{name} created" in ok(cluster, "apply", "-f", "-", stdin=yaml.safe_dump(body))


def revisions(cluster: MasterCluster, name: str) -> list[list[str]]:
    lines = ok(cluster, "rollout", "history", f"deploy/{name}").splitlines()
    assert lines[:2] == [f"deployment/{name}", lines[1]] and lines[1].split() == ["REVISION", "CHANGE-CAUSE"]
    return [line.split(None, 1) for line in lines[2:]]


def image_of(cluster: MasterCluster, name: str) -> str:
    return get(cluster, f"{NS}/deployments/{name}")["spec"]["template"]["spec"]["containers"][0]["image"]


def test_status_set_image_history_and_undo(hosts: MasterCluster) -> None:
    apply(hosts, "cli-roll", 3, annotations={CAUSE: "first"})
    out = ok(hosts, "rollout", "status", "deploy/cli-roll", "--timeout", "60s")
    assert out.splitlines()[-1] == 'deployment "cli-roll" successfully rolled out'
    assert not control_characters(out)  # a pipe: kubectl's lines, nothing animated

    ok(hosts, "annotate", "deploy", "cli-roll", f"{CAUSE}=to v2", "--overwrite")
    assert ok(hosts, "set", "image", "deploy/cli-roll", "main=localhost/busybox:v2") == \
        "deployment/cli-roll image updated\n"
    out = ok(hosts, "rollout", "status", "deployment", "cli-roll", "--timeout", "60s")
    assert out.splitlines()[-1] == 'deployment "cli-roll" successfully rolled out'
    assert revisions(hosts, "cli-roll") == [["1", "first"], ["2", "to v2"]]
    shown = ok(hosts, "rollout", "history", "deploy/cli-roll", "--revision", "1")
    assert shown.startswith("deployment/cli-roll with revision #1\nPod Template:\n")
    assert IMAGE in shown and "localhost/busybox:v2" not in shown
    assert "no revision 7 (revisions: 1, 2)" in fails(hosts, "rollout", "history", "deploy/cli-roll",
                                                      "--revision", "7").stderr
    assert 'unable to find container named "nope"' in fails(hosts, "set", "image", "deploy/cli-roll",
                                                            "nope=x").stderr

    assert ok(hosts, "rollout", "undo", "deploy/cli-roll") == "deployment/cli-roll rolled back\n"
    ok(hosts, "rollout", "status", "deploy/cli-roll", "--timeout", "60s")
    done = rolled_out(hosts, "cli-roll")
    assert image_of(hosts, "cli-roll") == IMAGE
    assert done["metadata"]["annotations"]["deployment.berth.io/revision"] == "3"
    assert revisions(hosts, "cli-roll") == [["2", "to v2"], ["3", "first"]]
    assert ok(hosts, "rollout", "undo", "deploy/cli-roll", "--to-revision", "3") == \
        "deployment/cli-roll skipped rollback (current template already matches revision 3)\n"
    assert "no revision 1" in fails(hosts, "rollout", "undo", "deploy/cli-roll", "--to-revision", "1").stderr


def test_scale_up_and_down_through_the_scale_subresource(hosts: MasterCluster) -> None:
    apply(hosts, "cli-scale", 2)
    rolled_out(hosts, "cli-scale")
    assert ok(hosts, "scale", "deploy/cli-scale", "--replicas", "5") == "deployment/cli-scale scaled\n"
    assert rolled_out(hosts, "cli-scale")["status"]["availableReplicas"] == 5
    assert "Expected replicas to be 4, was 5" in fails(hosts, "scale", "deploy", "cli-scale", "--replicas",
                                                       "1", "--current-replicas", "4").stderr
    ok(hosts, "scale", "deployment", "cli-scale", "--replicas", "1", "--current-replicas", "5")
    assert rolled_out(hosts, "cli-scale")["status"]["replicas"] == 1
    [rs] = replicasets(hosts, "cli-scale")
    assert ok(hosts, "scale", f"rs/{rs['metadata']['name']}", "--replicas", "1").endswith(" scaled\n")


def test_get_and_describe_show_deployments_and_their_replicasets(hosts: MasterCluster) -> None:
    apply(hosts, "cli-show", 2)
    rolled_out(hosts, "cli-show")
    [rs] = replicasets(hosts, "cli-show")
    rs_name = rs["metadata"]["name"]
    deploy_table, rs_table = (t.splitlines() for t in ok(hosts, "get", "deploy,rs").split("\n\n"))
    assert deploy_table[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert ["deployment/cli-show", "2/2", "2", "2"] in [row.split()[:4] for row in deploy_table]
    assert rs_table[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    assert [f"replicaset/{rs_name}", "2", "2", "2"] in [row.split()[:4] for row in rs_table]
    wide = ok(hosts, "get", "rs", rs_name, "-o", "wide").splitlines()
    assert wide[0].split()[-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert wide[1].split()[-3:] == ["main", IMAGE, f"app=cli-show,pod-template-hash={rs_name.split('-')[-1]}"]

    page = ok(hosts, "describe", "deploy", "cli-show")
    for line in ("Replicas:               2 desired | 2 updated | 2 total | 2 available | 0 unavailable",
                 "StrategyType:           RollingUpdate", "MinReadySeconds:        0",
                 "RollingUpdateStrategy:  0 max unavailable, 1 max surge", "OldReplicaSets:         <none>",
                 f"NewReplicaSet:          {rs_name} (2/2 replicas created)"):
        assert line in page, page
    for part in ("Pod Template:", "  Containers:", f"    Image:        {IMAGE}", "Conditions:",
                 "NewReplicaSetAvailable", "ScalingReplicaSet", f"Scaled up replica set {rs_name} to 2"):
        assert part in page, page
    page = ok(hosts, "describe", "rs", rs_name)
    for line in ("Controlled By:          Deployment/cli-show",
                 "Replicas:               2 current / 2 desired",
                 "Pods Status:            2 Running / 0 Waiting / 0 Succeeded / 0 Failed"):
        assert line in page, page
    assert "SuccessfulCreate" in page


def test_pause_resume_and_restart(hosts: MasterCluster) -> None:
    apply(hosts, "cli-pause", 2)
    rolled_out(hosts, "cli-pause")
    assert ok(hosts, "rollout", "pause", "deploy/cli-pause") == "deployment/cli-pause paused\n"
    assert 'deployment "cli-pause" is already paused' in fails(hosts, "rollout", "pause",
                                                                "deploy/cli-pause").stderr
    ok(hosts, "set", "image", "deploy/cli-pause", "*=localhost/busybox:v2")
    assert "run 'berth rollout resume" in fails(hosts, "rollout", "restart", "deploy/cli-pause").stderr
    time.sleep(1)  # rounds of the controller: a paused deployment makes no new ReplicaSet
    assert len(replicasets(hosts, "cli-pause")) == 1
    assert ok(hosts, "rollout", "resume", "deploy/cli-pause") == "deployment/cli-pause resumed\n"
    assert 'deployment "cli-pause" is not paused' in fails(hosts, "rollout", "resume",
                                                            "deploy/cli-pause").stderr
    ok(hosts, "rollout", "status", "deploy/cli-pause", "--timeout", "60s")
    assert len(replicasets(hosts, "cli-pause")) == 2

    assert ok(hosts, "rollout", "restart", "deploy/cli-pause") == "deployment/cli-pause restarted\n"
    ok(hosts, "rollout", "status", "deploy/cli-pause", "--timeout", "60s")
    done = rolled_out(hosts, "cli-pause")
    assert "berth.io/restartedAt" in done["spec"]["template"]["metadata"]["annotations"]
    assert len(replicasets(hosts, "cli-pause")) == 3
    assert [row[0] for row in revisions(hosts, "cli-pause")] == ["1", "2", "3"]


def test_a_stuck_rollout_times_out_and_one_past_its_deadline_fails(hosts: MasterCluster) -> None:
    apply(hosts, "cli-stuck", 2)
    rolled_out(hosts, "cli-stuck")
    ok(hosts, "set", "image", "deploy/cli-stuck", "main=localhost/missing:1")
    started = time.monotonic()
    result = fails(hosts, "rollout", "status", "deploy/cli-stuck", "--timeout", "2s")
    assert 'timed out after 2s waiting for deployment "cli-stuck" rollout to finish' in result.stderr
    assert "Waiting for deployment" in result.stdout
    assert not control_characters(result.stdout + result.stderr)
    lines = result.stdout.splitlines()
    assert all(a != b for a, b in itertools.pairwise(lines))  # a line when its words change
    assert time.monotonic() - started < 15

    apply(hosts, "cli-late", 2, progressDeadlineSeconds=3)
    rolled_out(hosts, "cli-late")
    ok(hosts, "set", "image", "deploy/cli-late", "main=localhost/missing:1")
    result = fails(hosts, "rollout", "status", "deploy/cli-late", "--timeout", "60s")
    assert 'deployment "cli-late" exceeded its progress deadline' in result.stderr


def test_delete_with_cascade_orphan_leaves_the_replicaset(hosts: MasterCluster) -> None:
    apply(hosts, "cli-orphan", 1)
    rolled_out(hosts, "cli-orphan")
    [rs] = replicasets(hosts, "cli-orphan")
    refused = fails(hosts, "delete", "deploy", "cli-orphan", "--cascade=foreground")
    assert "Foreground is not supported" in refused.stderr and "propagationPolicy" in refused.stderr
    assert ok(hosts, "delete", "deploy", "cli-orphan", "--cascade=orphan") == \
        'deployment "cli-orphan" deleted\n'
    time.sleep(1)  # a garbage collector round, had the ReplicaSet kept its owner
    [left] = replicasets(hosts, "cli-orphan")
    assert left["metadata"]["uid"] == rs["metadata"]["uid"]
    assert not left["metadata"].get("ownerReferences")
    ok(hosts, "delete", "rs", left["metadata"]["name"])
    wait_until(lambda: not replicasets(hosts, "cli-orphan"), 30, what="the orphaned replicaset deleted")
