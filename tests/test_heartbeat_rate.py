"""The heartbeat interval scaled with the cluster's size (master/heartbeat_rate.py): the pure rule,
the node grace that follows it, the lifecycle applying it, the agent obeying what the masters tell,
and real masters telling it (leader and followers alike) to the real agent's heartbeat loop."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from agent.config import AgentConfig
from agent.main import MAX_TOLD_INTERVAL, MIN_TOLD_INTERVAL, heartbeat_until, told_interval
from agent.masters import Masters as AgentMasters
from master.config import MasterConfig
from master.controllers.node_lifecycle import NodeLifecycle
from master.heartbeat_rate import GraceMemory, heartbeat_interval, interval_to_tell, node_grace
from master.objects.conditions import ready_condition
from master.reports.heartbeats import HeartbeatBook
from tests.harness import GI, TOKENS, MasterCluster, add_node
from tests.test_isolation import NOW, FakeStore, node

CLUSTER_SETTINGS = {"controllers": ["node-lifecycle"], "node_grace_seconds": 1.0,
                    "max_heartbeats_per_second": 1}  # 1 beat/s in all: 3 nodes beat every 3 s
NODES = ("hr0", "hr1", "hr2")


@pytest.mark.parametrize(("nodes", "per_second", "interval"), [
    (0, 500, 1.0),
    (3, 500, 1.0),
    (500, 500, 1.0),  # today's 1 s up to max_heartbeats_per_second nodes
    (501, 500, 1.1),  # then stretched, rounded up to a tenth
    (1000, 500, 2.0),
    (1500, 500, 3.0),
    (5000, 500, 10.0),  # Kubernetes' kubelet renews its Lease every 10 s
    (20000, 500, 10.0),  # never longer than MAX_INTERVAL
    (1000, 50, 10.0),  # Nomad's default rate
    (3, 1, 3.0),
    (-1, 500, 1.0),
])
def test_the_interval_keeps_the_cluster_within_its_heartbeat_rate(nodes: int, per_second: float,
                                                                 interval: float) -> None:
    assert heartbeat_interval(nodes, per_second) == interval


@pytest.mark.parametrize(("nodes", "per_second", "told"), [
    (3, 500, None),  # a small cluster: nothing told, each agent keeps its own interval
    (500, 500, None),
    (501, 500, 1.1),
    (5000, 500, 10.0),
    (3, 1, 3.0),
])
def test_only_a_stretched_interval_is_told(nodes: int, per_second: float, told: float | None) -> None:
    assert interval_to_tell(nodes, per_second) == told


@pytest.mark.parametrize(("interval", "base", "grace"), [
    (1.0, 3.0, 3.0),  # the configured grace at the 1 s interval
    (2.0, 3.0, 6.0),
    (10.0, 3.0, 30.0),
    (10.0, 1.5, 15.0),
    (1.0, 0.0, 0.0),
])
def test_the_grace_stretches_with_the_interval(interval: float, base: float, grace: float) -> None:
    assert node_grace(interval, base) == grace


@pytest.mark.parametrize(("steps", "expected"), [
    ([(3.0, 0.0)], [3.0]),
    ([(3.0, 0.0), (30.0, 1.0)], [3.0, 30.0]),  # longer: at once
    ([(30.0, 0.0), (3.0, 1.0)], [30.0, 30.0]),  # shorter: not yet, agents beat at the old interval
    ([(30.0, 0.0), (3.0, 29.0), (3.0, 31.0)], [30.0, 30.0, 3.0]),  # after a whole longer grace
    ([(30.0, 0.0), (30.0, 20.0), (3.0, 40.0), (3.0, 50.5)], [30.0, 30.0, 30.0, 3.0]),  # from last wanted
])
def test_the_grace_shrinks_only_once_the_longer_one_has_passed(steps: list[tuple[float, float]],
                                                                expected: list[float]) -> None:
    memory = GraceMemory()
    assert [memory.grace(wanted, now) for wanted, now in steps] == expected


@pytest.mark.parametrize(("answer", "expected"), [
    ({"ok": True, "heartbeatIntervalSeconds": 10.0}, 10.0),
    ({"ok": True, "heartbeatIntervalSeconds": 2}, 2.0),
    ({"ok": True}, 1.0),  # an older master tells none: the configured interval
    ({"heartbeatIntervalSeconds": "10"}, 1.0),
    ({"heartbeatIntervalSeconds": True}, 1.0),
    ({"heartbeatIntervalSeconds": None}, 1.0),
    ({"heartbeatIntervalSeconds": float("nan")}, 1.0),
    ({"heartbeatIntervalSeconds": 0}, MIN_TOLD_INTERVAL),  # no master makes an agent flood them
    ({"heartbeatIntervalSeconds": -5}, MIN_TOLD_INTERVAL),
    ({"heartbeatIntervalSeconds": 1e9}, MAX_TOLD_INTERVAL),  # nor fall silent
    ({"heartbeatIntervalSeconds": float("inf")}, MAX_TOLD_INTERVAL),
    (None, 1.0),
    ([10], 1.0),
])
def test_the_agent_takes_the_told_interval_within_bounds(answer: Any, expected: float) -> None:
    assert told_interval(answer, 1.0) == expected


@pytest.mark.parametrize(("per_second", "ready"), [(1.0, True), (100.0, False)])
def test_the_lifecycle_gives_silent_nodes_the_stretched_grace(per_second: float, ready: bool) -> None:
    """Three nodes last heard 2 s ago, base grace 1 s: at 1 beat/s in all they beat every 3 s, so they
    have 3 s of grace and stay Ready; at 100/s they beat every second and are NotReady."""
    store = FakeStore(node("a"), node("b"), node("c"))
    book = HeartbeatBook()
    controller = NodeLifecycle(store, book, 1.0, lambda: NOW, per_second)  # type: ignore[arg-type]
    book.reset([], time.monotonic())
    for name in ("a", "b", "c"):
        book.record(name, {}, time.monotonic() - 2.0)
    controller.reconcile()
    assert [ready_condition(store.get("Node", "", n)) for n in ("a", "b", "c")] == [ready] * 3
    assert controller.grace == (3.0 if ready else 1.0)


@pytest.mark.parametrize("value", [0, 0.5, 100_001, -1])
def test_the_rate_setting_is_checked(value: float) -> None:
    base = {"name": "m1", "raft_address": "127.0.0.1:1", "api_address": "127.0.0.1:2", "data_dir": "/tmp/x",
            "tokens_file": "/tmp/t", "insecure_raft_without_password": True}
    with pytest.raises(ValueError, match="max_heartbeats_per_second"):
        MasterConfig(**base, max_heartbeats_per_second=value)


class Waits(threading.Event):
    """The agent's stop event, recording how long each wait between two beats was asked to last; it
    does not wait (the beats go back to back), and it is set after `beats` waits."""

    def __init__(self, beats: int) -> None:
        super().__init__()
        self.asked: list[float] = []
        self.beats = beats

    def wait(self, timeout: float | None = None) -> bool:
        self.asked.append(float(timeout or 0))
        if len(self.asked) > self.beats:
            self.set()
        return self.is_set()


class ScriptedMasters:
    """Answers the agent's heartbeats with the intervals scripted, one per beat."""

    def __init__(self, intervals: list[float | None]) -> None:
        self.intervals = list(intervals)

    def call(self, method: str, path: str, body: Any = None, content_type: str | None = None) -> Any:
        told = self.intervals.pop(0) if self.intervals else None
        return {"ok": True, "podsRevision": 1, **({} if told is None else {"heartbeatIntervalSeconds": told})}


def agent_config(name: str, cluster: MasterCluster | None = None) -> AgentConfig:
    masters = [m.api_url for m in cluster.masters] if cluster else ["https://127.0.0.1:1"]
    return AgentConfig(name=name, address="10.250.0.11", masters=masters, token_file="/dev/null",
                       heartbeat_interval=0.5)


def test_the_agent_waits_what_the_last_answer_told() -> None:
    waits = Waits(beats=4)
    heartbeat_until(ScriptedMasters([5.0, 10.0, None, 2.0]), agent_config("a"), waits)  # type: ignore[arg-type]
    # configured first; then each answer's; an answer telling none: back to the configured
    assert waits.asked == [0.5, 5.0, 10.0, 0.5, 2.0]


@pytest.fixture(scope="module")
def registered(cluster: MasterCluster) -> MasterCluster:
    for name in NODES:
        add_node(cluster, name, cpu=4000, memory=8 * GI)
    return cluster


def test_every_master_tells_the_interval_the_count_of_nodes_gives(registered: MasterCluster) -> None:
    """Leader and followers alike (a follower answers at once, from its own copy of the Nodes)."""
    admin = registered.session()
    count = len(admin.get(registered.url(0, "/api/v1/nodes?consistent=1"), timeout=10).json()["items"])
    assert count >= 3
    for index in range(3):
        answer = admin.post(registered.url(index, f"/api/v1/nodes/{NODES[index]}/heartbeat"),
                            json={"cpuPercent": 1.0, "memoryUsed": GI}, timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["heartbeatIntervalSeconds"] == float(count)  # at 1 beat/s in all


def test_the_real_agent_beats_at_the_interval_real_masters_tell(registered: MasterCluster) -> None:
    config = agent_config("h1", registered)  # the lab's agent token may beat for h1 only
    masters = AgentMasters(config.masters, TOKENS["agent"][1], ca_file=str(registered.ca_file))
    admin = registered.session()
    if admin.get(registered.url(0, "/api/v1/nodes/h1"), timeout=10).status_code == 404:
        add_node(registered, "h1", cpu=4000, memory=8 * GI)  # a fourth node (an earlier run's kept)
    waits = Waits(beats=3)
    heartbeat_until(masters, config, waits)
    assert waits.asked == [0.5, 4.0, 4.0, 4.0]  # 4 nodes at 1 beat/s in all
