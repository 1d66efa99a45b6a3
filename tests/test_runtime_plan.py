"""Planning one host: desired pods against listed containers, pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from berth.containers import CONTAINER, MANAGED, NAMESPACE, POD_NAME, POD_UID, SANDBOX
from master.controllers.event_reaper import expired
from master.probes import Verdict
from master.runtime.driver import ContainerState
from master.runtime.events import status_events
from master.runtime.plan import Backoff, plan_host

BACKOFF = Backoff(base=10, limit=300)


def pod(name: str, uid: str, policy: str = "Always", containers: tuple[str, ...] = ("main",),
        restarts: int = 0) -> dict:
    return {"metadata": {"name": name, "namespace": "default", "uid": uid},
            "spec": {"restartPolicy": policy,
                     "containers": [{"name": c, "image": "busybox"} for c in containers]},
            "status": {"containerStatuses": [{"name": c, "restartCount": restarts} for c in containers]}}


def state(uid: str, container: str | None, status: str = "running", exit_code: int = 0,
          finished: float = 0.0) -> ContainerState:
    labels = {MANAGED: "true", POD_UID: uid, NAMESPACE: "default", POD_NAME: f"pod-{uid}"}
    if container is None:
        labels[SANDBOX] = "true"
    else:
        labels[CONTAINER] = container
    return ContainerState(id=f"id-{uid}-{container}", name=f"n-{uid}-{container}", labels=labels,
                          state=status, exit_code=exit_code, started_at="100", finished_at=str(finished))


def plan(pods: list[dict], observed: list[ContainerState], now: float = 1000.0, verdicts: dict | None = None):
    return plan_host(pods, observed, now, BACKOFF, "10.0.0.1", "t", verdicts)


def test_a_new_pod_gets_a_sandbox_then_its_containers() -> None:
    result = plan([pod("a", "u1", containers=("web", "side"))], [])
    assert [(a.verb, a.container and a.container["name"]) for a in result.actions] == [
        ("sandbox", None), ("run", "web"), ("run", "side")]
    status = result.statuses["u1"]
    assert status["phase"] == "Pending" and status["hostIP"] == "10.0.0.1"
    creating = {"waiting": {"reason": "ContainerCreating"}}
    assert [s["state"] for s in status["containerStatuses"]] == [creating, creating]


def test_a_running_pod_needs_nothing_and_is_ready() -> None:
    result = plan([pod("a", "u1")], [state("u1", None), state("u1", "main")])
    assert result.actions == []
    status = result.statuses["u1"]
    assert status["phase"] == "Running" and status["containerStatuses"][0]["ready"] is True
    assert status["conditions"] == [{"type": "Ready", "status": "True", "reason": "ContainersReady",
                                     "lastTransitionTime": "t"}]


def test_exited_containers_follow_the_restart_policy_with_back_off() -> None:
    exited = [state("u1", None), state("u1", "main", "exited", 1, finished=995.0)]
    waiting = plan([pod("a", "u1", restarts=0)], exited)  # 5 s after exiting; back-off is 10 s
    assert waiting.actions == []
    assert waiting.statuses["u1"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    later = plan([pod("a", "u1", restarts=0)], exited, now=1006.0)
    assert [a.verb for a in later.actions] == ["restart"]
    assert later.statuses["u1"]["containerStatuses"][0]["restartCount"] == 1
    assert plan([pod("a", "u1", restarts=3)], exited, now=1006.0).actions == []  # 80 s after 3 restarts
    assert BACKOFF.delay(3) == 80 and BACKOFF.delay(10) == 300
    done = [state("u2", None), state("u2", "main", "exited", 0)]
    assert plan([pod("b", "u2", "OnFailure")], done).statuses["u2"]["phase"] == "Succeeded"
    failed = [state("u3", None), state("u3", "main", "exited", 3)]
    result = plan([pod("c", "u3", "Never")], failed)
    assert result.actions == [] and result.statuses["u3"]["phase"] == "Failed"
    rebooted = [state("u4", None), state("u4", "main", "created")]  # a host that restarted
    assert [a.verb for a in plan([pod("d", "u4", "Never")], rebooted).actions] == ["restart"]


def test_what_no_pod_owns_is_removed_containers_first() -> None:
    result = plan([], [state("gone", None), state("gone", "main")])
    assert [(a.verb, a.target) for a in result.actions] == [
        ("remove", "id-gone-main"), ("remove-pod", "berth-default-pod-gone-gone")]


def test_probe_verdicts_restart_the_unhealthy_and_gate_ready() -> None:
    probed = pod("a", "u1")
    probed["spec"]["containers"][0].update(livenessProbe={"exec": {"command": ["true"]}},
                                           readinessProbe={"tcpSocket": {"port": 80}})
    running = [state("u1", None), state("u1", "main")]  # started_at "100"
    not_yet = plan([probed], running)
    assert not_yet.actions == [] and not_yet.statuses["u1"]["containerStatuses"][0]["ready"] is False
    ready = plan([probed], running, verdicts={("u1", "main", "readiness"): Verdict(True, "100")})
    assert ready.statuses["u1"]["containerStatuses"][0]["ready"] is True
    sick = {("u1", "main", "liveness"): Verdict(False, "100", "liveness probe failed: exec exited 1")}
    result = plan([probed], running, verdicts=sick)
    assert [a.verb for a in result.actions] == ["restart-unhealthy"]
    entry = result.statuses["u1"]["containerStatuses"][0]
    assert entry["restartCount"] == 1 and entry["lastState"]["terminated"]["reason"] == "Unhealthy"
    stale = {("u1", "main", "liveness"): Verdict(False, "99")}  # about an earlier start: not acted on
    assert plan([probed], running, verdicts=stale).actions == []
    # while the restart runs in the background: the same verdict again, but no second restart,
    # and the status stays as written when it began (restart counted once)
    probed["status"] = result.statuses["u1"]
    busy = frozenset({("u1", "main")})
    meanwhile = plan_host([probed], running, 1000.0, BACKOFF, "10.0.0.1", "t", sick, busy)
    assert meanwhile.actions == [] and meanwhile.statuses["u1"]["containerStatuses"][0] == entry


def test_status_changes_tell_events_and_old_events_expire() -> None:
    creating = {"containerStatuses": [{"name": "main", "restartCount": 0,
                                       "state": {"waiting": {"reason": "ContainerCreating"}}}]}
    running = {"containerStatuses": [{"name": "main", "restartCount": 0,
                                      "state": {"running": {"startedAt": "1"}}}]}
    assert status_events(creating, running) == [("Started", "Started container main", False)]
    assert status_events(running, running) == []
    killed = {"containerStatuses": [{"name": "main", "restartCount": 1,
                                     "state": {"running": {"startedAt": ""}},
                                     "lastState": {"terminated": {"reason": "Unhealthy", "message": "bad"}}}]}
    assert [e[0] for e in status_events(running, killed)] == ["Killing", "Started"]
    looping = {"containerStatuses": [{"name": "main", "restartCount": 1,
                                      "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}
    assert status_events(killed, looping) == [("BackOff", "Back-off restarting failed container main", True)]
    assert status_events(looping, looping) == []
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    event = {"metadata": {}, "lastTimestamp": "2026-01-01T10:59:59.000000Z"}
    assert expired(event, now - timedelta(hours=1))
    assert not expired({**event, "lastTimestamp": "2026-01-01T11:30:00Z"}, now - timedelta(hours=1))
    assert not expired({**event, "lastTimestamp": "yesterday"}, now)


def test_a_deleted_pod_is_stopped_while_on_the_host_then_forgotten() -> None:
    going = pod("a", "u1")
    going["metadata"]["deletionTimestamp"] = "2026-11-26T00:00:00Z"
    stopping = plan([going], [state("u1", None), state("u1", "main")])
    assert [a.verb for a in stopping.actions] == ["terminate"] and stopping.statuses == {}
    gone = plan([going], [])  # stopped and removed (by the background stop): only the object is left
    assert [a.verb for a in gone.actions] == ["forget"]
