"""One bad object never stops a controller's round for the others (issue 9, items 3 and 10).

The API's schemas now refuse what once broke the controllers, so these put garbage straight
into a store (as an old journal could hold it) and run one round of each controller.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from berth.objects import Obj
from master.controllers.node_lifecycle import NodeLifecycle
from master.controllers.scheduling import SchedulingController
from master.controllers.taint_eviction import TaintEviction
from master.errors import ApiError
from master.liveness import READY, with_ready
from master.objects.conditions import ready_condition
from master.objects.isolation import reraise
from master.reports.heartbeats import HeartbeatBook
from master.runtime.controller import RuntimeController
from master.runtime.ssh import CommandResult, Host, SshError
from master.scheduler import build_snapshot
from master.store.commands import Command
from master.store.state import ClusterState, Outcome

NOW = "2026-11-30T00:00:00.000000Z"


class FakeStore:
    """What the controllers ask of a master's store, over a plain ClusterState."""

    def __init__(self, *objects: Obj) -> None:
        self.state = ClusterState()
        for number, obj in enumerate(objects, 1):
            meta = {"resourceVersion": number, "uid": f"uid-{number}", **obj["metadata"]}
            self.state.objects.setdefault(obj["kind"], {})[(meta.get("namespace", ""), meta["name"])] = {
                **obj, "metadata": meta}
        self.state.revision = len(objects)

    def read(self, reader: Any) -> tuple[Any, int]:
        return reader(self.state), self.state.revision

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self.state.get(kind, namespace, name)

    stored = get  # nothing sealed here

    def propose_all(self, commands: list[Command], timeout: float | None = None) -> list[Outcome | ApiError]:
        outcomes = [self.state.apply(command)[0] for command in commands]
        return [o.error or o for o in outcomes]

    def add_listener(self, _listener: Any) -> None:
        pass

    def is_leader(self) -> bool:
        return True

    def barrier(self) -> None:
        pass


def node(name: str, **status: Any) -> Obj:
    return {"kind": "Node", "metadata": {"name": name}, "spec": {"address": "10.0.0.1"},
            "status": {**with_ready({}, READY, NOW), "allocatable": {"cpu": 4000, "memory": 8 << 30},
                       **status}}


def pod(name: str, node_name: str | None = None, limits: Obj | None = None, cpu: str = "100m") -> Obj:
    spec: Obj = {"containers": [{"name": "main", "image": "localhost/busybox:lab", "command": ["sleep", "1"],
                                 "resources": {"requests": {"cpu": cpu}, "limits": limits or {}}}],
                 "restartPolicy": "Always", "terminationGracePeriodSeconds": 30}
    if node_name:
        spec["nodeName"] = node_name
    return {"kind": "Pod", "metadata": {"name": name, "namespace": "default", "creationTimestamp": NOW},
            "spec": spec}


GARBAGE_NODES = [
    node("bad-conditions", conditions=["x"]),  # an agent's PATCH once stored this: read as not Ready
    node("bad-allocatable", allocatable={"cpu": "lots", "memory": "1Ti"}),
    {"kind": "Node", "metadata": {"name": "bad-status"}, "spec": {"address": "10.0.0.2"}, "status": "x"},
]


def test_the_scheduler_places_pods_beside_a_broken_node_and_pod(caplog: pytest.LogCaptureFixture) -> None:
    store = FakeStore(*GARBAGE_NODES, node("good"), pod("fine"), pod("huge", cpu="9" * 400))
    controller = SchedulingController(store, lambda: NOW, lambda: "u")  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING):
        controller.reconcile()
        controller.reconcile()
    assert store.get("Pod", "default", "fine")["spec"]["nodeName"] == "good"
    assert "nodeName" not in store.get("Pod", "default", "huge")["spec"]
    left_out = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
    assert sorted(m.split(" (")[0] for m in left_out) == [  # each once, not once per round
        "scheduler: left out Node bad-allocatable", "scheduler: left out Node bad-status",
        "scheduler: left out Pod default/huge"]
    with pytest.raises((AttributeError, ValueError)):  # the pure default: a bad object is an error
        build_snapshot(GARBAGE_NODES, [], reraise)


def test_node_lifecycle_turns_the_good_nodes_beside_a_broken_one() -> None:
    silent = node("silent")
    store = FakeStore(*GARBAGE_NODES, silent)  # bad-conditions is not Ready already: left as it is
    book = HeartbeatBook()
    controller = NodeLifecycle(store, book, grace=0.0, now=lambda: NOW)  # type: ignore[arg-type]
    book.reset(["silent", "bad-status"], time.monotonic() - 1)  # the term began (ReportBooks.new_term)
    controller.reconcile()  # a grace of 0: silence is NotReady at once
    assert ready_condition(store.get("Node", "", "silent")) is False
    assert ready_condition(store.get("Node", "", "bad-status")) is False  # its garbage status replaced


def test_taint_eviction_evicts_beside_a_broken_pod() -> None:
    tainted = node("tainted")
    tainted["spec"]["taints"] = [{"key": "gone", "effect": "NoExecute"}]
    broken = pod("broken", "tainted")
    broken["spec"]["tolerations"] = [{"key": "gone", "operator": "Exists", "tolerationSeconds": "soon"}]
    store = FakeStore(tainted, broken, pod("victim", "tainted"))
    TaintEviction(store, lambda: NOW, lambda: "u").reconcile()  # type: ignore[arg-type]
    assert store.get("Pod", "default", "victim")["metadata"].get("deletionTimestamp") == NOW
    assert not store.get("Pod", "default", "broken")["metadata"].get("deletionTimestamp")


class FakePool:
    """A host that has nothing running and starts whatever it is asked to."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []

    def run(self, host: Host, argv: list[str], timeout: float | None = None,
            stdin: bytes | None = None) -> CommandResult:
        self.commands.append(argv)
        listing = "[]" if argv[1:3] == ["ps", "--all"] else ""
        return CommandResult(tuple(argv), 0, listing.encode(), b"")


def test_the_runtime_starts_the_good_pod_beside_one_it_cannot_start() -> None:
    """A 400-digit CPU limit once raised OverflowError in the driver and lost the whole round."""
    bad = pod("bad", "h1", limits={"cpu": "9" * 400})
    store = FakeStore(*GARBAGE_NODES, node("h1"), pod("good", "h1"), bad)
    pool = FakePool()
    controller = RuntimeController(store, pool, lambda: NOW, lambda: "u")  # type: ignore[arg-type]
    try:
        controller.started_leading()
        controller.reconcile()
    finally:
        controller.stop()
    started = [argv for argv in pool.commands if argv[1] == "run"]
    assert [argv[argv.index("--name") + 1].split("-")[2] for argv in started] == ["good"]
    assert store.get("Pod", "default", "good")["status"]["phase"] == "Pending"  # until listed running
    waiting = store.get("Pod", "default", "bad")["status"]["containerStatuses"][0]["state"]["waiting"]
    assert waiting["reason"] == "RunContainerError" and "CPU quantity" in waiting["message"]
    events = [e for e in store.state.list("Event") if e["involvedObject"]["name"] == "bad"]
    assert [e["reason"] for e in events] == ["Failed"]


class TroubledPool(FakePool):
    """A host whose listing fails (`failing` set) or cannot be reached (`unreachable` set)."""

    def __init__(self) -> None:
        super().__init__()
        self.failing = self.unreachable = False

    def run(self, host: Host, argv: list[str], timeout: float | None = None,
            stdin: bytes | None = None) -> CommandResult:
        if self.unreachable:
            raise SshError(f"{host}: connection refused")
        if self.failing and argv[1:3] == ["ps", "--all"]:
            return CommandResult(tuple(argv), 125, b"", b"database is locked")
        return super().run(host, argv, timeout, stdin)


def test_a_host_the_runtime_cannot_look_at_is_told_on_its_node_once() -> None:
    """Every SSH result is checked: a failed listing or an unreachable host is a Warning on the
    Node, written when it is news, not every round while it lasts."""
    store, pool = FakeStore(node("h1")), TroubledPool()
    controller = RuntimeController(store, pool, lambda: NOW, lambda: "u")  # type: ignore[arg-type]

    def warnings() -> list[tuple[str, int]]:
        return sorted((e["reason"], e["count"]) for e in store.state.list("Event")
                      if e["involvedObject"]["kind"] == "Node")

    try:
        pool.failing = True
        for _ in range(3):  # each round looks again (the host is unsettled), and says it once
            controller.attention.mark(["h1"])
            controller.reconcile()
        assert warnings() == [("FailedListContainers", 1)]
        pool.failing, pool.unreachable = False, True
        controller.attention.mark(["h1"])
        controller.reconcile()
        pool.unreachable = False
        controller.attention.mark(["h1"])
        controller.reconcile()  # looked at again: the trouble is over
        pool.failing = True
        controller.attention.mark(["h1"])
        controller.reconcile()  # news again
        assert warnings() == [("FailedListContainers", 2), ("HostUnreachable", 1)]
    finally:
        controller.stop()
