"""`berth wait` as a user runs it, against three masters running the scheduler and the workload
controllers, with the fake kubelet (berth/lab/fake_kubelet.py) playing the hosts: a bound pod
becomes Ready, unless its image has "missing" in its name; a deleted pod goes at once. The
output is a pipe here: plain lines, no control character."""

from __future__ import annotations

import os
import re
import select
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from berth.lab.fake_kubelet import FakeKubelet, started_status
from tests.harness import (
    GI,
    TOKENS,
    MasterCluster,
    add_node,
    berth,
    berth_process,
    control_characters,
    pod,
    wait_until,
)
from tests.test_workloads_masters import NS, SETTINGS, create, deployment, get

CLUSTER_SETTINGS = SETTINGS
MISSING = "localhost/missing:1"


@pytest.fixture(scope="module")
def hosts(cluster: MasterCluster) -> Iterator[MasterCluster]:
    for index in range(2):
        add_node(cluster, f"w{index}", cpu=64000, memory=256 * GI)
    with FakeKubelet([m.api_url for m in cluster.masters], TOKENS["admin"][1], ca_file=cluster.ca_file,
                     never_ready=lambda image: "missing" in image):
        yield cluster


def run(cluster: MasterCluster, *args: str) -> subprocess.CompletedProcess:
    result = berth(cluster, *args)
    assert not control_characters(result.stdout + result.stderr), (result.stdout, result.stderr)
    return result


def ready(pod_obj: dict[str, Any]) -> str | None:
    """Its Ready condition's status (None: the kubelet has not reported it yet)."""
    return next((c["status"] for c in (pod_obj.get("status") or {}).get("conditions") or []
                 if c["type"] == "Ready"), None)


def started(cluster: MasterCluster, name: str) -> dict[str, Any]:
    """The pod once the fake kubelet gave it its status (after that, it writes it no more)."""
    def reported() -> dict[str, Any] | None:
        found = get(cluster, f"{NS}/pods/{name}")
        return found if ready(found) else None

    return wait_until(reported, 30, what=f"pod {name} started")


def delete(cluster: MasterCluster, *paths: str) -> None:
    for path in paths:
        cluster.session().delete(cluster.url(0, f"{NS}/{path}"), timeout=10)


def through_a_terminal(cluster: MasterCluster, *args: str) -> str:
    """What the CLI shows on a terminal (a pty) until it exits (exit status 1 expected)."""
    terminal, far_end = os.openpty()
    shown = berth_process(cluster, *args, stdin=far_end, stdout=far_end, stderr=far_end,
                          start_new_session=True)
    os.close(far_end)
    screen = b""
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready_now, _, _ = select.select([terminal], [], [], 1)
            if not ready_now:
                continue
            try:
                chunk = os.read(terminal, 65536)
            except OSError:  # EIO: the far end closed, the command ended
                break
            if not chunk:
                break
            screen += chunk
        assert shown.wait(timeout=30) == 1, screen
    finally:
        shown.kill()
        shown.wait(timeout=10)
        os.close(terminal)
    return screen.decode(errors="replace")


def test_a_pod_made_ready_meets_the_condition(hosts: MasterCluster) -> None:
    create(hosts, pod("wait-late", image=MISSING))  # the kubelet leaves it Pending, not Ready
    try:
        late = started(hosts, "wait-late")
        assert ready(late) == "False"
        waiting = berth_process(hosts, "wait", "--for=condition=Ready", "pod/wait-late", "--timeout", "60s",
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            # as a kubelet would once the image came: Running and Ready (before or after the CLI listed)
            answer = hosts.session().put(hosts.url(0, f"{NS}/pods/wait-late/status"), timeout=10, json={
                "metadata": {"resourceVersion": late["metadata"]["resourceVersion"]},
                "status": started_status(late, ready=True)})
            assert answer.status_code == 200, answer.text
            out, err = waiting.communicate(timeout=60)
        finally:
            if waiting.poll() is None:
                waiting.kill()
                waiting.communicate()
        assert (waiting.returncode, out) == (0, "pod/wait-late condition met\n"), err
        assert not control_characters(out + err)
        phase = run(hosts, "wait", "--for=jsonpath={.status.phase}=Running", "pod/wait-late",
                    "--timeout", "20s")
        assert (phase.returncode, phase.stdout) == (0, "pod/wait-late condition met\n"), phase.stderr
    finally:
        delete(hosts, "pods/wait-late")


def test_a_pod_never_ready_times_out_with_kubectls_words(hosts: MasterCluster) -> None:
    create(hosts, pod("wait-stuck", image=MISSING))
    try:
        started(hosts, "wait-stuck")
        stuck = run(hosts, "wait", "--for=condition=Ready", "pod/wait-stuck", "--timeout", "2s")
        assert stuck.returncode == 1, (stuck.stdout, stuck.stderr)
        assert stuck.stderr == "error: timed out waiting for the condition on pods/wait-stuck\n"
        assert stuck.stdout == ""
        unready = run(hosts, "wait", "--for=condition=Ready=False", "pod/wait-stuck", "--timeout", "20s")
        assert (unready.returncode, unready.stdout) == (0, "pod/wait-stuck condition met\n"), unready.stderr
        missing = run(hosts, "wait", "--for=condition=Ready", "pod/wait-nobody", "--timeout", "2s")
        assert missing.returncode == 1 and 'pods "wait-nobody" not found' in missing.stderr
        bad = run(hosts, "wait", "--for=Ready", "pod/wait-stuck")
        assert bad.returncode == 2 and "Invalid value for --for" in bad.stderr
        on_screen = through_a_terminal(hosts, "wait", "--for=condition=Ready", "pod/wait-stuck",
                                       "--timeout", "2s")
        assert "\x1b[" in on_screen and "waiting for condition=Ready on pods:" in on_screen  # live there
        assert "error: timed out waiting for the condition on pods/wait-stuck" in on_screen
    finally:
        delete(hosts, "pods/wait-stuck")


def test_wait_for_delete_and_a_deployment_available_by_selector(hosts: MasterCluster) -> None:
    create(hosts, deployment("wait-web", 2))
    try:
        available = run(hosts, "wait", "--for=condition=Available", "deployment/wait-web", "--timeout", "60s")
        assert (available.returncode, available.stdout) == (0, "deployment/wait-web condition met\n"), \
            available.stderr
        pods = run(hosts, "wait", "--for=condition=Ready", "pods", "-l", "app=wait-web", "--timeout", "60s")
        assert pods.returncode == 0, pods.stderr
        lines = pods.stdout.splitlines()
        assert len(lines) == 2
        assert all(re.fullmatch(r"pod/wait-web-\S+ condition met", line) for line in lines), lines
        names = [line.split()[0] for line in lines]
        delete(hosts, "deployments/wait-web")
        gone = run(hosts, "wait", "--for=delete", *names, "--timeout", "60s")
        assert gone.returncode == 0, gone.stderr
        assert sorted(gone.stdout.splitlines()) == sorted(f"{name} deleted" for name in names)
        again = run(hosts, "wait", "--for=delete", names[0], "--timeout", "0s")  # gone already: at once
        assert (again.returncode, again.stdout) == (0, f"{names[0]} deleted\n")
    finally:
        delete(hosts, "deployments/wait-web")
