"""Init containers really run in order on a lab host: masters drive podman over SSH.

One lab host ("ic", its own name, so it never meets another run's lab) and three masters,
shared by the module's tests; every pod a test makes is deleted before it ends.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from berth.containers import container_name
from berth.lab import hosts as lab_hosts
from berth.lab.hosts import IMAGE, Lab
from tests.conftest import TEST_ROOT
from tests.harness import MasterCluster, berth, masters_driving, pod, temporary_lab, wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")  # CI runs as root
PODS = "/api/v1/namespaces/default/pods"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with temporary_lab("ic", hosts=1) as made:
        yield made


@pytest.fixture(scope="module")
def cluster(lab: Lab) -> Iterator[MasterCluster]:
    with masters_driving(lab, TEST_ROOT / "init-containers-lab") as made:
        yield made


def names_on(lab: Lab) -> list[str]:
    listed = lab_hosts.in_host(lab, "h1", ["podman", "ps", "-a", "--format", "{{.Names}}"], check=False)
    assert isinstance(listed, subprocess.CompletedProcess) and listed.returncode == 0, listed
    return listed.stdout.split()


def get(cluster: MasterCluster, name: str) -> dict[str, Any]:
    return cluster.session().get(cluster.url(0, f"{PODS}/{name}"), timeout=10).json()


def status(cluster: MasterCluster, name: str) -> dict[str, Any]:
    return get(cluster, name).get("status") or {}


def entry(cluster: MasterCluster, name: str, container: str) -> dict[str, Any]:
    """A container's status entry, init or app ({} before it has one)."""
    now = status(cluster, name)
    listed = [*(now.get("initContainerStatuses") or []), *(now.get("containerStatuses") or [])]
    return next((e for e in listed if e.get("name") == container), {})


def state_of(cluster: MasterCluster, name: str, container: str) -> dict[str, Any]:
    return entry(cluster, name, container).get("state") or {}


def shell(name: str, script: str) -> dict[str, Any]:
    return {"name": name, "image": IMAGE, "command": ["sh", "-c", script]}


def create(cluster: MasterCluster, obj: dict[str, Any]) -> dict[str, Any]:
    answer = cluster.session().post(cluster.url(0, PODS), json=obj, timeout=10)
    assert answer.status_code == 201, answer.text
    return answer.json()


def delete_and_wait(cluster: MasterCluster, lab: Lab, created: dict[str, Any]) -> None:
    """Delete the pod and see every container of it, init ones too, leave the host."""
    name = created["metadata"]["name"]
    gone = cluster.session().delete(cluster.url(0, f"{PODS}/{name}?gracePeriodSeconds=1"), timeout=10)
    assert gone.status_code == 200, gone.text
    wait_until(lambda: cluster.session().get(cluster.url(0, f"{PODS}/{name}"), timeout=10).status_code == 404,
               60, interval=0.3, what=f"{name} gone")
    every = [*created["spec"].get("initContainers", []), *created["spec"]["containers"]]
    left = set(names_on(lab)) & {container_name(created, c["name"]) for c in every}
    assert not left, left


def test_init_containers_run_in_order_to_completion_before_the_app(lab: Lab, cluster: MasterCluster) -> None:
    obj = pod("ordered", image=IMAGE)
    obj["spec"]["initContainers"] = [
        shell("first", "echo first-ran; sleep 1"),
        shell("gate", "until [ -e /tmp/go ]; do sleep 0.2; done; echo gate-opened")]
    created = create(cluster, obj)
    try:
        # the second init container runs (the first completed) and waits for its gate: the app waits too
        wait_until(lambda: "running" in state_of(cluster, "ordered", "gate"), 60, interval=0.3,
                   what="the gate init container running")
        now = status(cluster, "ordered")
        assert now["phase"] == "Pending"
        assert state_of(cluster, "ordered", "first")["terminated"]["exitCode"] == 0
        assert now["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
        assert {c["type"]: c["status"] for c in now["conditions"]}["Initialized"] == "False"
        assert container_name(created, "main") not in names_on(lab)
        row = berth(cluster, "get", "pod", "ordered").stdout.splitlines()[1].split()
        assert row[:3] == ["ordered", "0/1", "Init:1/2"], row
        # exec reaches an init container by its name: it opens its own gate
        opened = berth(cluster, "exec", "ordered", "-c", "gate", "--", "touch", "/tmp/go")
        assert opened.returncode == 0, opened.stderr
        wait_until(lambda: status(cluster, "ordered").get("phase") == "Running", 60, interval=0.3,
                   what="ordered Running")
        first = state_of(cluster, "ordered", "first")["terminated"]
        gate = state_of(cluster, "ordered", "gate")["terminated"]
        main = state_of(cluster, "ordered", "main")["running"]
        assert (first["exitCode"], gate["exitCode"]) == (0, 0)
        assert float(first["startedAt"]) <= float(first["finishedAt"]) <= float(gate["startedAt"])
        assert float(gate["finishedAt"]) <= float(main["startedAt"])
        conditions = {c["type"]: c["status"] for c in status(cluster, "ordered")["conditions"]}
        assert conditions["Initialized"] == "True"
        assert all(entry(cluster, "ordered", n)["ready"] for n in ("first", "gate"))
        logs = berth(cluster, "logs", "ordered", "-c", "first")
        assert (logs.returncode, logs.stdout.strip()) == (0, "first-ran"), logs.stderr
        defaulted = berth(cluster, "logs", "ordered")  # the app container, as kubectl defaults
        assert 'Defaulted container "main" out of: main, first (init), gate (init)' in defaulted.stderr
        unknown = berth(cluster, "logs", "ordered", "-c", "nope")
        assert unknown.returncode != 0 and "init: first, gate" in unknown.stderr
        described = berth(cluster, "describe", "pod", "ordered").stdout
        assert "Init Containers:" in described and "Init Container Statuses:" in described
        events = cluster.session().get(cluster.url(0, "/api/v1/namespaces/default/events"), timeout=10).json()
        started = [e for e in events["items"] if e["involvedObject"]["name"] == "ordered"
                   and e["reason"] == "Started"]
        assert [e["count"] for e in started] == [3]  # first, gate, main: one Event counted, as kubectl's
        # the host cleans the completed init containers up: they are not run again
        for name in ("first", "gate"):
            removed = lab_hosts.in_host(lab, "h1", ["podman", "rm", "--", container_name(created, name)],
                                        check=False)
            assert removed.returncode == 0, removed
        restarted = entry(cluster, "ordered", "main")["restartCount"]
        witness = create(cluster, pod("witness", image=IMAGE))  # a later round on the same host
        try:
            wait_until(lambda: status(cluster, "witness").get("phase") == "Running", 60, interval=0.3,
                       what="witness Running")
            assert not {container_name(created, n) for n in ("first", "gate")} & set(names_on(lab))
            after = status(cluster, "ordered")
            assert after["phase"] == "Running"
            assert entry(cluster, "ordered", "main")["restartCount"] == restarted
            assert [e["state"]["terminated"]["exitCode"] for e in after["initContainerStatuses"]] == [0, 0]
        finally:
            delete_and_wait(cluster, lab, witness)
    finally:
        delete_and_wait(cluster, lab, created)


def test_a_failed_init_container_fails_a_never_restarting_pod(lab: Lab, cluster: MasterCluster) -> None:
    obj = pod("doomed", image=IMAGE)
    obj["spec"]["restartPolicy"] = "Never"
    obj["spec"]["initContainers"] = [shell("fail", "echo failing; exit 3"), shell("after", "true")]
    created = create(cluster, obj)
    try:
        wait_until(lambda: status(cluster, "doomed").get("phase") == "Failed", 60, interval=0.3,
                   what="doomed Failed")
        witness = create(cluster, pod("witness", image=IMAGE))  # it had its chance: a later round
        try:
            wait_until(lambda: status(cluster, "witness").get("phase") == "Running", 60, interval=0.3,
                       what="witness Running")
        finally:
            delete_and_wait(cluster, lab, witness)
        now = status(cluster, "doomed")
        assert now["phase"] == "Failed"
        failed = now["initContainerStatuses"][0]
        assert failed["state"]["terminated"]["exitCode"] == 3 and failed["restartCount"] == 0
        assert failed["state"]["terminated"]["reason"] == "Error"
        assert now["initContainerStatuses"][1]["state"] == {"waiting": {"reason": "PodInitializing"}}
        assert now["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
        on_host = set(names_on(lab))
        assert container_name(created, "fail") in on_host
        assert not {container_name(created, n) for n in ("after", "main")} & on_host  # never started
        row = berth(cluster, "get", "pod", "doomed").stdout.splitlines()[1].split()
        assert row[:3] == ["doomed", "0/1", "Init:Error"], row
    finally:
        delete_and_wait(cluster, lab, created)


def test_a_failing_init_container_is_restarted_under_on_failure(lab: Lab, cluster: MasterCluster) -> None:
    obj = pod("retry", image=IMAGE)
    obj["spec"]["restartPolicy"] = "OnFailure"
    obj["spec"]["initContainers"] = [shell("flaky", "exit 1")]
    created = create(cluster, obj)
    try:
        wait_until(lambda: entry(cluster, "retry", "flaky").get("restartCount", 0) >= 1, 60, interval=0.3,
                   what="the failing init container restarted")
        now = status(cluster, "retry")
        assert now["phase"] == "Pending" and container_name(created, "main") not in names_on(lab)
        wait_until(lambda: berth(cluster, "get", "pod", "retry").stdout.splitlines()[1].split()[2]
                   == "Init:CrashLoopBackOff", 60, interval=0.3, what="Init:CrashLoopBackOff")
    finally:
        delete_and_wait(cluster, lab, created)
