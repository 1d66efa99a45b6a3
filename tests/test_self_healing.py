"""Self-healing's pure decisions: lost-node taints, default tolerations, the SSH verdict, what the
taint evictor does with it, the runtime's cleaning of a returning host, and the agent's self-fence."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from agent.engine import running
from agent.fencing import SelfFence, opted_out
from agent.runtime_health import RuntimeHealth, failure_text
from master.controllers.taint_eviction import TaintEviction
from master.liveness import lost_pod_status, wanted_lifecycle_taints
from master.objects.tolerations import (
    NOT_READY,
    RETURNING,
    UNREACHABLE,
    lifecycle_keys,
    with_default_tolerations,
    with_lifecycle_taints,
)
from master.reports.host_checks import AGENT_NOT_HEARTBEATING, HOST_UNREACHABLE, RUNTIME_FAILING, HostChecks
from master.runtime.controller import _cleaned
from master.runtime.driver import ContainerState
from master.runtime.host_check import evict_now, held, judge
from master.runtime.planner import Listing
from tests.test_isolation import NOW, FakeStore, node, pod


@pytest.mark.parametrize(("ready", "current", "wanted"), [
    ("Unknown", (), (UNREACHABLE,)),  # silent
    ("Unknown", (UNREACHABLE,), (UNREACHABLE,)),
    ("Unknown", (NOT_READY,), (UNREACHABLE,)),  # the agent said its runtime failed, then fell silent
    ("False", (), (NOT_READY,)),  # the agent says its runtime fails
    ("False", (UNREACHABLE,), (NOT_READY,)),  # heard again, and its runtime still fails
    ("Unknown", (RETURNING,), (UNREACHABLE,)),  # lost again while returning
    ("True", (UNREACHABLE,), (RETURNING,)),  # back: no new work until the runtime cleaned it
    ("True", (NOT_READY,), (RETURNING,)),  # the runtime works again: cleaned first, as a return
    ("True", (RETURNING,), (RETURNING,)),  # the runtime takes it off, not the lifecycle
    ("True", (), ()),
])
def test_lifecycle_taints(ready: str, current: tuple[str, ...], wanted: tuple[str, ...]) -> None:
    assert wanted_lifecycle_taints(ready, current) == wanted


def test_lifecycle_taints_keep_the_admins_own() -> None:
    spec = {"address": "a", "taints": [{"key": "dedicated", "effect": "NoSchedule"},
                                       {"key": UNREACHABLE, "effect": "NoExecute"}]}
    changed = with_lifecycle_taints(spec, (RETURNING,))
    assert changed["taints"] == [{"key": "dedicated", "effect": "NoSchedule"},
                                 {"key": RETURNING, "effect": "NoSchedule"}]
    assert lifecycle_keys({"spec": changed}) == (RETURNING,)


@pytest.mark.parametrize(("own", "added"), [
    ([], [NOT_READY, UNREACHABLE]),
    ([{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 600}],
     [NOT_READY]),
    ([{"operator": "Exists"}], []),  # tolerates everything already
    ([{"key": UNREACHABLE, "operator": "Exists", "effect": "NoSchedule"}], [NOT_READY, UNREACHABLE]),
])
def test_default_tolerations_fill_what_the_pod_does_not_say(own: list, added: list[str]) -> None:
    spec = with_default_tolerations({"containers": [], "tolerations": own}, 5)
    extra = spec["tolerations"][len(own):]
    assert [t["key"] for t in extra] == added
    assert all(t == {"key": t["key"], "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}
               for t in extra)
    assert with_default_tolerations(spec, 5) == spec  # the same every time it is written


def test_a_pod_on_a_lost_node_is_unknown_and_not_ready() -> None:
    running = pod("p", "h1")
    running["status"] = {"phase": "Running", "containerStatuses": [{"name": "main", "ready": True}],
                         "conditions": [{"type": "Ready", "status": "True"}]}
    lost = lost_pod_status(running, NOW)
    assert lost is not None and lost["phase"] == "Unknown" and lost["reason"] == "NodeLost"
    assert lost["containerStatuses"][0]["ready"] is False
    assert next(c for c in lost["conditions"] if c["type"] == "Ready")["status"] == "False"
    assert lost_pod_status({**running, "status": lost}, NOW) is None  # already said
    done = {**running, "status": {"phase": "Succeeded"}}
    assert lost_pod_status(done, NOW) is None


def _state(uid: str, container: str, state: str, sandbox: bool = False) -> ContainerState:
    labels = {"berth.pod-uid": uid, "berth.container": container}
    if sandbox:
        labels = {"berth.pod-uid": uid, "berth.sandbox": "true"}
    return ContainerState(f"id-{uid}-{container}", f"n-{uid}-{container}", labels, state, 0, "", "")


def _bound(name: str, uid: str) -> dict[str, Any]:
    made = pod(name, "h1")
    made["metadata"]["uid"] = uid
    return made


@pytest.mark.parametrize(("listing", "reachable", "kind", "alive"), [
    (None, False, HOST_UNREACHABLE, set()),
    (None, True, RUNTIME_FAILING, set()),
    ([("a", "running"), ("b", "running")], True, AGENT_NOT_HEARTBEATING, {"a", "b"}),
    ([("a", "running"), ("b", "exited")], True, AGENT_NOT_HEARTBEATING, {"a"}),
    ([], True, AGENT_NOT_HEARTBEATING, set()),
])
def test_the_ssh_verdict(listing: list | None, reachable: bool, kind: str, alive: set[str]) -> None:
    pods = [_bound("pa", "a"), _bound("pb", "b")]
    seen = None if listing is None else Listing.of(
        [s for uid, state in listing for s in (_state(uid, "", "running", sandbox=True),
                                                _state(uid, "main", state))])
    verdict = judge(pods, seen, None if seen else "boom", reachable)
    assert (verdict.kind, set(verdict.alive)) == (kind, alive)
    assert evict_now(verdict, True) is (kind == HOST_UNREACHABLE)
    assert evict_now(verdict, False) is False
    assert held(verdict, pods[0]) is ("a" in alive)


def _tainted_node() -> dict[str, Any]:
    lost = node("h1")
    lost["spec"]["taints"] = [{"key": UNREACHABLE, "effect": "NoExecute"}]
    return lost


def _tolerating(name: str, seconds: int | None) -> dict[str, Any]:
    made = pod(name, "h1")
    made["spec"]["tolerations"] = [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute",
                                    **({"tolerationSeconds": seconds} if seconds is not None else {})}]
    return made


def test_the_taint_evictor_follows_the_ssh_verdict() -> None:
    store = FakeStore(_tainted_node(), _tolerating("patient", 300), _tolerating("forever", None),
                      _tolerating("alive", 300))
    checks = HostChecks()
    evictor = TaintEviction(store, lambda: NOW, lambda: "u", checks=checks)  # type: ignore[arg-type]
    evictor.reconcile()  # no verdict yet: the tolerations run
    assert not any(store.get("Pod", "default", n)["metadata"].get("deletionTimestamp")
                   for n in ("patient", "forever", "alive"))
    alive_uid = store.get("Pod", "default", "alive")["metadata"]["uid"]
    checks.record("h1", judge([store.get("Pod", "default", "alive")], Listing.of(
        [_state(alive_uid, "", "running", sandbox=True), _state(alive_uid, "main", "running")]), None, True))
    evictor.reconcile()  # the host answers: nothing goes early
    assert not store.get("Pod", "default", "patient")["metadata"].get("deletionTimestamp")
    checks.record("h1", judge([], None, "no route to host", reachable=False))
    evictor.reconcile()  # the host is gone: bounded tolerations need not be waited out
    assert store.get("Pod", "default", "patient")["metadata"].get("deletionTimestamp") == NOW
    assert store.get("Pod", "default", "alive")["metadata"].get("deletionTimestamp") == NOW
    assert not store.get("Pod", "default", "forever")["metadata"].get("deletionTimestamp")


def test_a_returning_host_loses_its_taint_only_once_clean() -> None:
    back = node("h1")
    back["metadata"] = {"name": "h1", "resourceVersion": 7}
    back["spec"]["taints"] = [{"key": RETURNING, "effect": "NoSchedule"}]
    mine = _bound("mine", "m")
    stale = Listing.of([_state("gone", "", "exited", sandbox=True), _state("m", "main", "running")])
    assert _cleaned(back, [mine], stale) == []  # a copy of a pod moved elsewhere is still there
    clean = Listing.of([_state("m", "", "running", sandbox=True), _state("m", "main", "running")])
    [untaint] = _cleaned(back, [mine], clean)
    assert untaint.obj["spec"]["taints"] == [] and untaint.expected_rv == 7
    assert _cleaned(node("h2"), [], clean) == []  # never lost: nothing to take off


class FakeEngine:
    def __init__(self, runtime: str, containers: list[tuple[str, str]]) -> None:
        self.runtime, self.containers, self.commands = runtime, containers, []

    def __call__(self, argv: list[str]) -> str:
        self.commands.append(argv)
        labels = {cid: {"berth.managed": "true", "berth.pod-uid": uid} for cid, uid in self.containers}
        if argv[1] == "ps" and self.runtime == "podman":
            return json.dumps([{"Id": cid, "Pid": 100 + i, "Labels": labels[cid]}
                               for i, (cid, _) in enumerate(self.containers)])
        if argv[1] == "ps":
            return "\n".join(cid for cid, _ in self.containers)
        if argv[1] == "inspect":
            return json.dumps([{"Id": cid, "State": {"Running": True, "Pid": 100},
                                "Config": {"Labels": labels[cid]}} for cid in argv[3:]])
        return ""


@pytest.mark.parametrize("runtime", ["podman", "docker"])
def test_the_self_fence_stops_once_after_the_silence_and_keeps_opted_out_pods(runtime: str) -> None:
    clock = [100.0]
    engine = FakeEngine(runtime, [("c1", "u1"), ("c2", "u2"), ("c3", "u3")])
    fence = SelfFence(runtime, 15.0, run=engine, clock=lambda: clock[0])
    fence.pods([{"metadata": {"uid": "u2", "annotations": {"berth.io/self-fence": "false"}}},
                {"metadata": {"uid": "u1"}}])
    clock[0] += 14.9
    assert fence.no_answer() is None and engine.commands == []  # not yet: a short outage stops nothing
    clock[0] += 0.2
    done = fence.no_answer()
    assert done is not None and done.stopped == 2
    assert engine.commands[-1] == [runtime, "stop", "--time=10", "--", "c1", "c3"]
    ran = len(engine.commands)
    assert fence.no_answer() is None and len(engine.commands) == ran  # once: it waits for a master
    assert fence.contact() == done and fence.contact() == done  # until reported
    fence.reported()
    assert fence.contact() is None
    clock[0] += 10
    assert fence.no_answer() is None  # the clock started again at the contact
    fence.contact()
    clock[0] += 60  # a pause: the first attempt after it fails (its request outlived its timeout) ...
    assert fence.no_answer() is None and len(engine.commands) == ran
    fence.contact()  # ... and the next is answered: nothing was stopped
    clock[0] += 60
    assert fence.no_answer() is None and fence.no_answer() is not None  # two in a row past the time
    assert SelfFence(runtime, 0, run=engine, clock=lambda: clock[0] + 1e6).no_answer() is None  # 0: off


@pytest.mark.parametrize("runtime", ["podman", "docker"])
def test_a_fence_not_yet_reported_outlives_a_restart_of_the_agent(runtime: str, tmp_path: Path) -> None:
    """The leader restarts an agent that answers SSH but not heartbeats, as one just healed from a
    partition may: the fence it did while cut off is still reported, once, by the new one."""
    clock = [100.0]
    engine = FakeEngine(runtime, [("c1", "u1")])
    record = tmp_path / "fenced.json"
    fence = SelfFence(runtime, 15.0, run=engine, clock=lambda: clock[0], record=record)
    clock[0] += 20
    assert fence.no_answer() is None
    done = fence.no_answer()
    assert done is not None and record.exists()
    again = SelfFence(runtime, 15.0, run=engine, clock=lambda: clock[0], record=record)  # restarted
    assert again.contact() == done
    again.reported()
    assert not record.exists()
    assert SelfFence(runtime, 15.0, run=engine, clock=lambda: clock[0], record=record).contact() is None


def test_self_fence_helpers() -> None:
    assert opted_out([{"metadata": {"uid": "a", "annotations": {"berth.io/self-fence": "False"}}},
                      {"metadata": {"uid": "b", "annotations": {"berth.io/self-fence": "true"}}}]) == {"a"}
    engine = FakeEngine("docker", [("x", "u")])
    assert [(c.id, c.pod_uid, c.pid) for c in running("docker", engine)] == [("x", "u", 100)]
    assert running("docker", FakeEngine("docker", [])) == []  # nothing listed: nothing inspected


@pytest.mark.parametrize("runtime", ["podman", "docker"])
def test_the_runtime_check_needs_two_failures_in_a_row_and_one_success(runtime: str) -> None:
    engine, broken = FakeEngine(runtime, [("c1", "u1")]), [False]

    def run(argv: list[str]) -> str:
        if broken[0]:
            raise subprocess.CalledProcessError(125, argv, "", "Error: database is locked\n")
        return engine(argv)

    health = RuntimeHealth(runtime, 0.0, run=run)  # no period: each check asks the engine afresh
    assert health.check() and health.report() == {"runtimeReady": True}
    broken[0] = True
    assert not health.check() and health.report() == {"runtimeReady": True}  # one failure: a blip
    assert not health.check()
    said = f"{runtime} does not list containers: exit status 125: Error: database is locked"
    assert health.report() == {"runtimeReady": False, "runtimeMessage": said}
    broken[0] = False
    assert health.check() and health.report() == {"runtimeReady": True} and health.failures == 0
    broken[0] = True
    assert not health.check() and health.report() == {"runtimeReady": True}  # counted afresh


def test_runtime_failures_are_told_briefly() -> None:
    assert failure_text(subprocess.TimeoutExpired(["podman"], 10)) == "no answer in 10 s"
    assert failure_text(FileNotFoundError(2, "No such file", "podman")).startswith("FileNotFoundError")
    assert len(failure_text(subprocess.CalledProcessError(1, ["p"], "", "x" * 5000))) == 400
