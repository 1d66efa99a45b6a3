"""Node liveness: unit rules, then real agents heartbeating real masters."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from master.liveness import READY, SILENT, runtime_not_ready, transitions, with_ready
from master.objects.conditions import ready_condition, ready_status
from master.reports.heartbeats import HeartbeatBook
from tests.harness import TOKENS, MasterCluster, berth, wait_until

GRACE = 1.5


def node(name: str, ready: bool | None) -> dict:
    status = {} if ready is None else with_ready({}, READY if ready else SILENT, "t")
    return {"metadata": {"name": name}, "status": status}


def test_only_transitions_are_reported() -> None:
    book = HeartbeatBook()
    book.reset(["a", "b", "c"], now=100.0)
    book.record("a", {}, at=100.5)
    nodes = [node("a", None), node("b", True), node("c", False)]
    # within the grace: a becomes Ready (heard), b stays Ready (not heard yet, still in grace)
    assert [(n["metadata"]["name"], r) for n, r in transitions(nodes, book, 101.0, GRACE)] == [
        ("a", READY)]
    # after the grace without a word from b: NotReady; c is NotReady already: nothing to write
    later = transitions([node("a", True), node("b", True), node("c", False)], book, 101.9, GRACE)
    assert [(n["metadata"]["name"], r) for n, r in later] == [("b", SILENT)]


def test_a_runtime_the_agent_says_fails_makes_the_node_not_ready_not_unknown() -> None:
    book = HeartbeatBook()
    book.reset(["a"], now=100.0)
    book.record("a", {"runtimeReady": False, "runtimeMessage": "podman: exit status 125"}, at=100.5)
    [(_, readiness)] = transitions([node("a", True)], book, 101.0, GRACE)
    assert readiness == runtime_not_ready("podman: exit status 125")
    assert (readiness.status, readiness.reason) == ("False", "RuntimeNotReady")
    stored = {"metadata": {"name": "a"}, "status": with_ready({}, readiness, "t")}
    assert transitions([stored], book, 101.0, GRACE) == []  # said once: nothing more to write
    book.record("a", {"runtimeReady": True}, at=101.2)
    assert transitions([stored], book, 101.3, GRACE) == [(stored, READY)]
    assert transitions([stored], book, 103.0, GRACE) == [(stored, SILENT)]  # then silent: Unknown


def test_a_new_term_restarts_every_timer() -> None:
    book = HeartbeatBook()
    book.record("a", {}, at=0.0)
    book.reset(["a"], now=50.0)  # leadership gained long after a's last heartbeat elsewhere
    assert transitions([node("a", True)], book, 51.0, GRACE) == []
    status = with_ready({"conditions": [{"type": "Disk", "status": "True"}]}, SILENT, "t")
    assert ready_condition({"status": status}) is False and len(status["conditions"]) == 2
    assert ready_status({"status": status}) == "Unknown"


def start_agent(cluster: MasterCluster, tmp_path: Path) -> subprocess.Popen:
    token = tmp_path / "token"
    token.write_text(TOKENS["agent"][1])
    return subprocess.Popen(
        [sys.executable, "-m", "agent.main", "--name", "h1", "--address", "10.250.0.11",
         "--no-pod-network", "--token-file", str(token), "--heartbeat-interval", "0.3",
         "--ca-file", str(cluster.ca_file),
         *[arg for m in cluster.masters for arg in ("--master", m.api_url)]],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        cwd=Path(__file__).resolve().parent.parent)


def ready_on(cluster: MasterCluster, index: int) -> bool | None:
    response = cluster.session().get(cluster.url(index, "/api/v1/nodes/h1"), timeout=3)
    return ready_condition(response.json()) if response.status_code == 200 else None


def heartbeats_heard(cluster: MasterCluster, count: int) -> bool:
    """True once the leader has heard `count` more heartbeats of h1 (its age fell `count` times)."""
    ages: list[float] = []
    heard = [0]

    def one_more() -> bool:
        item = cluster.session().get(cluster.url(0, "/api/v1/metrics/nodes"), timeout=3).json()["items"]["h1"]
        heard[0] += bool(ages) and item["secondsSinceHeartbeat"] < ages[-1]
        ages.append(item["secondsSinceHeartbeat"])
        return heard[0] >= count

    return bool(wait_until(one_more, 30, interval=0.1, what=f"{count} more heartbeats"))


@pytest.mark.parametrize("own_cluster", [{"node_grace_seconds": GRACE}], indirect=True)
def test_agent_death_makes_the_node_not_ready_and_restart_ready_again(
    own_cluster: MasterCluster, tmp_path: Path,
) -> None:
    agent = start_agent(own_cluster, tmp_path)
    try:
        wait_until(lambda: ready_on(own_cluster, 0) is True, 30, what="node Ready")
        revision = own_cluster.status(0)["revision"]
        heard = heartbeats_heard(own_cluster, 5)  # the positive signal: five more heartbeats arrived
        assert heard and own_cluster.status(0)["revision"] == revision, "a heartbeat was written to Raft"
        table = berth(own_cluster, "get", "nodes").stdout.splitlines()
        assert table[0].split() == ["NAME", "STATUS", "ROLES", "CPU", "MEMORY", "AGE"]
        assert table[1].split()[:2] == ["h1", "Ready"] and "%" in table[1]  # usage from the leader
        top = berth(own_cluster, "top", "nodes", servers=[own_cluster.masters[2].api_url])
        assert top.returncode == 0 and "ago" in top.stdout.splitlines()[1], top.stderr
        agent.send_signal(signal.SIGKILL)
        agent.wait(timeout=10)
        wait_until(lambda: ready_on(own_cluster, 1) is False, 30, what="node NotReady")
        stale = berth(own_cluster, "top", "nodes").stdout.splitlines()[1].split()
        assert stale[:4] == ["h1", "<unknown>", "<unknown>", "<unknown>"] and "ago" in stale  # not "now"
        agent = start_agent(own_cluster, tmp_path)
        wait_until(lambda: ready_on(own_cluster, 2) is True, 30, what="node Ready again")
    finally:
        agent.kill()
        agent.wait()


@pytest.mark.parametrize("own_cluster", [{"node_grace_seconds": GRACE}], indirect=True)
def test_leader_sigkill_does_not_flap_nodes(own_cluster: MasterCluster, tmp_path: Path) -> None:
    agent = start_agent(own_cluster, tmp_path)
    try:
        wait_until(lambda: ready_on(own_cluster, 0) is True, 30, what="node Ready")
        leader = own_cluster.leader_index()
        survivor = (leader + 1) % 3
        since = own_cluster.status(survivor)["revision"]
        events: list[dict] = []
        url = own_cluster.url(survivor, f"/api/v1/watch?kind=Node&since={since}&timeoutSeconds=8")

        def watch() -> None:
            with own_cluster.session().get(url, stream=True, timeout=20) as stream:
                for line in stream.iter_lines():  # one at a time: the first bookmark says it listens
                    events.append(json.loads(line))

        watcher = threading.Thread(target=watch)
        watcher.start()
        wait_until(lambda: events, 15, what="the watch's first bookmark")  # it is listening
        own_cluster.kill(leader)
        watcher.join(timeout=30)
        flaps = [e for e in events if e["type"] == "MODIFIED" and ready_condition(e["object"]) is False]
        assert flaps == []
        assert ready_on(own_cluster, survivor) is True
    finally:
        agent.kill()
        agent.wait()
