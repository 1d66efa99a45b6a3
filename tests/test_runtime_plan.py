"""Planning one host: desired pods against listed containers, pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from berth.containers import CONTAINER, MANAGED, NAMESPACE, POD_NAME, POD_UID, SANDBOX
from master.controllers.event_reaper import expired
from master.reports.probes import Verdict
from master.runtime.actions import (
    Action,
    FindAddress,
    ForgetPod,
    MakeSandbox,
    Outcome,
    RemoveContainer,
    RemoveSandbox,
    ReplaceContainer,
    RestartContainer,
    RestartUnhealthy,
    RunContainer,
    StopPod,
)
from master.runtime.driver import ContainerState
from master.runtime.events import status_events
from master.runtime.executor import outcome_events
from master.runtime.planner import Backoff, Listing, SoftState, plan_host
from master.runtime.pulls import PullFailure, PullKey, after_round
from master.runtime.status import pod_status

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


@dataclass
class Round:
    actions: list[Action]
    statuses: dict[str, dict]
    outcomes: list[Outcome]

    def kinds(self) -> list[str]:
        """The actions that change the host (FindAddress, a read, left out), by type."""
        return [type(a).__name__ for a in self.actions if not isinstance(a, FindAddress)]


def plan(pods: list[dict], observed: list[ContainerState], now: float = 1000.0, verdicts: dict | None = None,
         busy: frozenset = frozenset(), fail: dict[type, str] | None = None, address: str = "",
         finished: list[Outcome] | None = None, pulls: dict[PullKey, PullFailure] | None = None) -> Round:
    """One round, pure: the plan, every action done (or failed, for the types in `fail`: their
    failure's reason; handed to the background, for stops and liveness restarts), each address
    read answering `address`, and the statuses that follow (`finished`: background work done;
    `pulls`: the leader's record of images that could not be had)."""
    soft = SoftState(now, BACKOFF, verdicts or {}, busy, pulls or {})
    listing = Listing.of(observed)
    actions = plan_host(pods, listing, soft)
    outcomes = [Outcome.failed(a, (fail or {})[type(a)], "it failed") if type(a) in (fail or {})
                else Outcome(a, value=address if isinstance(a, FindAddress) else "",
                             background=isinstance(a, RestartUnhealthy | StopPod)) for a in actions]
    outcomes += finished or []
    statuses = {p["metadata"]["uid"]: pod_status(p, listing, [o for o in outcomes
                                                              if getattr(o.action, "pod", None) is p],
                                                 soft, "10.0.0.1", "t")
                for p in pods if not p["metadata"].get("deletionTimestamp")}
    return Round(actions, statuses, outcomes)


def test_a_new_pod_gets_a_sandbox_then_its_containers() -> None:
    result = plan([pod("a", "u1", containers=("web", "side"))], [])
    assert [(type(a).__name__, getattr(a, "container", {}).get("name")) for a in result.actions] == [
        ("MakeSandbox", None), ("RunContainer", "web"), ("RunContainer", "side"), ("FindAddress", None)]
    status = result.statuses["u1"]
    assert status["phase"] == "Pending" and status["hostIP"] == "10.0.0.1"
    creating = {"waiting": {"reason": "ContainerCreating"}}
    assert [s["state"] for s in status["containerStatuses"]] == [creating, creating]


def test_a_running_pod_needs_nothing_and_is_ready() -> None:
    result = plan([pod("a", "u1")], [state("u1", None), state("u1", "main")], address="10.88.0.5")
    assert result.kinds() == []
    status = result.statuses["u1"]
    assert status["phase"] == "Running" and status["containerStatuses"][0]["ready"] is True
    assert status["podIP"] == "10.88.0.5"
    known = pod("a", "u1")
    known["status"]["podIP"] = "10.88.0.5"  # an address once known is not asked again
    assert plan([known], [state("u1", None), state("u1", "main")]).actions == []
    assert status["conditions"] == [{"type": "Ready", "status": "True", "reason": "ContainersReady",
                                     "lastTransitionTime": "t"}]


def test_exited_containers_follow_the_restart_policy_with_back_off() -> None:
    exited = [state("u1", None), state("u1", "main", "exited", 1, finished=995.0)]
    waiting = plan([pod("a", "u1", restarts=0)], exited)  # 5 s after exiting; back-off is 10 s
    assert waiting.kinds() == []
    assert waiting.statuses["u1"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    later = plan([pod("a", "u1", restarts=0)], exited, now=1006.0)
    assert later.kinds() == ["RestartContainer"]
    assert later.statuses["u1"]["containerStatuses"][0]["restartCount"] == 1
    assert plan([pod("a", "u1", restarts=3)], exited, now=1006.0).kinds() == []  # 80 s after 3 restarts
    assert BACKOFF.delay(3) == 80 and BACKOFF.delay(10) == 300
    done = [state("u2", None), state("u2", "main", "exited", 0)]
    assert plan([pod("b", "u2", "OnFailure")], done).statuses["u2"]["phase"] == "Succeeded"
    failed = [state("u3", None), state("u3", "main", "exited", 3)]
    result = plan([pod("c", "u3", "Never")], failed)
    assert result.kinds() == [] and result.statuses["u3"]["phase"] == "Failed"
    rebooted = [state("u4", None), state("u4", "main", "created")]  # a host that restarted
    assert plan([pod("d", "u4", "Never")], rebooted).kinds() == ["RestartContainer"]


def test_what_no_pod_owns_is_removed_containers_first() -> None:
    result = plan([], [state("gone", None), state("gone", "main")])
    assert [(type(a), a.target) for a in result.actions] == [  # type: ignore[union-attr] - removals
        (RemoveContainer, "id-gone-main"), (RemoveSandbox, "berth-default-pod-gone-gone")]


def test_probe_verdicts_restart_the_unhealthy_and_gate_ready() -> None:
    probed = pod("a", "u1")
    probed["spec"]["containers"][0].update(livenessProbe={"exec": {"command": ["true"]}},
                                           readinessProbe={"tcpSocket": {"port": 80}})
    running = [state("u1", None), state("u1", "main")]  # started_at "100"
    not_yet = plan([probed], running)
    assert not_yet.kinds() == [] and not_yet.statuses["u1"]["containerStatuses"][0]["ready"] is False
    ready = plan([probed], running, verdicts={("u1", "main", "readiness"): Verdict(True, "100")})
    assert ready.statuses["u1"]["containerStatuses"][0]["ready"] is True
    sick = {("u1", "main", "liveness"): Verdict(False, "100", "liveness probe failed: exec exited 1")}
    result = plan([probed], running, verdicts=sick)
    assert result.kinds() == ["RestartUnhealthy"]
    entry = result.statuses["u1"]["containerStatuses"][0]
    # the bug: RESTARTS 1 and an empty startedAt while the old container was still stopping.
    # Now: still the running start it is (being stopped), not ready, not counted yet
    assert entry["state"] == {"running": {"startedAt": "100"}} and entry["ready"] is False
    assert entry["restartCount"] == 0 and "lastState" not in entry
    killing = outcome_events(Outcome(result.actions[0], background=True))
    assert [(reason, warning) for reason, _, warning in killing] == [("Killing", False)]
    stale = {("u1", "main", "liveness"): Verdict(False, "99")}  # about an earlier start: not acted on
    assert plan([probed], running, verdicts=stale).kinds() == []
    # while the restart runs in the background: the same verdict again, but no second restart,
    # and the status stays as written when it began
    probed["status"] = result.statuses["u1"]
    busy = frozenset({("u1", "main")})
    meanwhile = plan([probed], running, verdicts=sick, busy=busy)
    assert meanwhile.kinds() == [] and meanwhile.statuses["u1"]["containerStatuses"][0] == entry
    # done: the host lists the new start, and the restart is counted once, with why
    again = [state("u1", None), ContainerState(**{**running[1].__dict__, "started_at": "200"})]
    done = plan([probed], again, verdicts=sick, finished=[Outcome(result.actions[0])])
    entry = done.statuses["u1"]["containerStatuses"][0]
    assert done.kinds() == [] and entry["state"] == {"running": {"startedAt": "200"}}
    assert entry["restartCount"] == 1 and entry["lastState"]["terminated"]["reason"] == "Unhealthy"
    told = status_events(probed["status"], done.statuses["u1"])
    assert [reason for reason, _, _ in told] == ["Started"]


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
    assert [e[0] for e in status_events(running, killed)] == ["Started"]  # Killing: when it began
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
    assert stopping.kinds() == ["StopPod"] and stopping.statuses == {}
    gone = plan([going], [])  # stopped and removed (by the background stop): only the object is left
    assert gone.kinds() == ["ForgetPod"]


def test_failed_actions_show_in_the_status_or_as_an_event() -> None:
    """A kubelet's waiting reasons: what the engine said, and a restart not counted that did not happen."""
    exited = [state("u1", None), state("u1", "main", "exited", 1, finished=900.0)]
    refused = plan([pod("a", "u1", restarts=2)], exited, fail={RestartContainer: "RunContainerError"})
    entry = refused.statuses["u1"]["containerStatuses"][0]
    assert entry["restartCount"] == 2 and entry["lastState"]["terminated"]["exitCode"] == 1
    assert entry["state"] == {"waiting": {"reason": "RunContainerError", "message": "it failed"}}
    no_sandbox = plan([pod("b", "u2", containers=("web", "side"))], [],
                      fail={MakeSandbox: "CreatePodSandboxError", RunContainer: "CreatePodSandboxError"})
    status = no_sandbox.statuses["u2"]
    assert {s["state"]["waiting"]["reason"] for s in status["containerStatuses"]} == {"CreatePodSandboxError"}
    not_run = plan([pod("c", "u3")], [state("u3", None)], fail={RunContainer: "CreateContainerConfigError"})
    assert not_run.statuses["u3"]["containerStatuses"][0]["state"]["waiting"]["reason"] \
        == "CreateContainerConfigError"
    # what no status shows becomes an event: an orphan that would not go, a stop that failed
    orphan = Outcome.failed(RemoveContainer("id-x"), "FailedRemove", "device busy")
    assert outcome_events(orphan) == [("FailedRemove", "removing id-x: device busy", True)]
    going = pod("d", "u4")
    stop = Outcome.failed(StopPod(going), "FailedKillPod", "no such pod")
    assert outcome_events(stop) == [("FailedKillPod", "no such pod", True)]
    assert outcome_events(Outcome(ForgetPod(going))) == []
    assert outcome_events(Outcome.failed(RunContainer(going, going["spec"]["containers"][0]),
                                         "RunContainerError", "x")) == []  # the status shows it
    assert outcome_events(Outcome(StopPod(going), background=True)) == []


def test_a_container_made_from_another_image_is_made_afresh() -> None:
    """A pod's image is the one spec field that may change: the container is replaced, counted
    as a restart; a container from before the image label is left alone."""
    from berth.containers import IMAGE

    old = state("u1", "main")
    labelled = ContainerState(**{**old.__dict__, "labels": {**old.labels, IMAGE: "busybox:old"}})
    result = plan([pod("a", "u1")], [state("u1", None), labelled])
    assert result.kinds() == ["ReplaceContainer"]
    entry = result.statuses["u1"]["containerStatuses"][0]
    assert entry["restartCount"] == 1 and entry["lastState"]["terminated"]["reason"] == "ImageChanged"
    told = status_events(pod("a", "u1")["status"], result.statuses["u1"])
    assert [reason for reason, _, _ in told] == ["Killing", "Started"]
    current = ContainerState(**{**old.__dict__, "labels": {**old.labels, IMAGE: "busybox"}})
    assert plan([pod("a", "u1")], [state("u1", None), current]).kinds() == []
    assert plan([pod("a", "u1")], [state("u1", None), old]).kinds() == []  # made before the label


# --- init containers --------------------------------------------------------------------

def init_pod(policy: str = "Always", stored: dict[str, dict] | None = None, restarts: int = 0) -> dict:
    """A pod with init containers `i1`, `i2` and app container `main`; `stored`: the init
    containers' states as a previous round wrote them."""
    obj = pod("p", "u1", policy)
    obj["spec"]["initContainers"] = [{"name": n, "image": "busybox"} for n in ("i1", "i2")]
    obj["status"]["initContainerStatuses"] = [{"name": n, "restartCount": restarts, "state": s}
                                              for n, s in (stored or {}).items()]
    return obj


DONE = {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": "100", "finishedAt": "101"}}
MADE = state("u1", None)  # the pod's sandbox, on the host


def test_init_containers_run_one_at_a_time_before_the_app_containers() -> None:
    """The table of Kubernetes' init rules, one round each: (host listing, stored init states,
    restartPolicy, clock) -> (actions, phase, STATUS column)."""
    from berth.cli.columns import pod_status as status_column

    cases = [
        # nothing made yet: the sandbox, then only the first init container
        ([], {}, "Always", 1000.0, [("MakeSandbox", None), ("RunContainer", "i1")], "Pending", "Init:0/2"),
        # the first runs: wait for it
        ([MADE, state("u1", "i1")], {}, "Always", 1000.0, [], "Pending", "Init:0/2"),
        # the first succeeded: the second
        ([MADE, state("u1", "i1", "exited", 0)], {}, "Always", 1000.0, [("RunContainer", "i2")],
         "Pending", "Init:1/2"),
        # both succeeded: the app containers
        ([MADE, state("u1", "i1", "exited", 0), state("u1", "i2", "exited", 0)], {}, "Always", 1000.0,
         [("RunContainer", "main")], "Pending", "ContainerCreating"),
        # the app runs and the init containers were cleaned up: their stored status stands, no re-run
        ([MADE, state("u1", "main")], {"i1": DONE, "i2": DONE}, "Always", 1000.0, [], "Running", "Running"),
        # ... and the sandbox made afresh (the host lost it): the app containers only
        ([], {"i1": DONE, "i2": DONE}, "Always", 1000.0, [("MakeSandbox", None), ("RunContainer", "main")],
         "Pending", "ContainerCreating"),
        # a later one on the host shows the earlier one completed, even with no status stored
        ([MADE, state("u1", "i2")], {}, "Always", 1000.0, [], "Pending", "Init:1/2"),
        # failed under Never: the pod fails, the app never starts
        ([MADE, state("u1", "i1", "exited", 0), state("u1", "i2", "exited", 3, finished=990.0)], {},
         "Never", 2000.0, [], "Failed", "Init:Error"),
        # ... and stays failed once the host no longer shows it, even its sandbox: nothing is made again
        ([MADE], {"i1": DONE, "i2": {"terminated": {"exitCode": 3, "reason": "Error"}}}, "Never", 2000.0,
         [], "Failed", "Init:Error"),
        ([], {"i1": DONE, "i2": {"terminated": {"exitCode": 3, "reason": "Error"}}}, "Never", 2000.0,
         [], "Failed", "Init:Error"),
        # failed under Always (or OnFailure): backing off, then started again; the next waits
        ([MADE, state("u1", "i1", "exited", 1, finished=995.0)], {}, "Always", 1000.0, [], "Pending",
         "Init:CrashLoopBackOff"),
        ([MADE, state("u1", "i1", "exited", 1, finished=995.0)], {}, "OnFailure", 1006.0,
         [("RestartContainer", "i1")], "Pending", "Init:0/2"),
        # left created by a host that rebooted: started again, even under Never
        ([MADE, state("u1", "i1", "created")], {}, "Never", 1000.0, [("RestartContainer", "i1")],
         "Pending", "Init:0/2"),
    ]
    for observed, stored, policy, now, actions, phase, column in cases:
        obj = init_pod(policy, stored)
        result = plan([obj], observed, now=now)
        made = [(type(a).__name__, getattr(a, "container", {}).get("name")) for a in result.actions
                if not isinstance(a, FindAddress)]
        status = result.statuses["u1"]
        where = (observed, stored, policy, now)
        assert (made, status["phase"]) == (actions, phase), where
        assert status_column({**obj, "status": status}, datetime.now(UTC)) == column, where
        if phase != "Running" and column.startswith("Init:"):
            assert [s["state"] for s in status["containerStatuses"]] == [
                {"waiting": {"reason": "PodInitializing"}}], where


def test_init_container_statuses_say_how_each_ran() -> None:
    first_done = [MADE, state("u1", "i1", "exited", 0, finished=150.0)]
    result = plan([init_pod()], first_done)
    status = result.statuses["u1"]
    i1, i2 = status["initContainerStatuses"]
    assert i1["state"] == {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": "100",
                                          "finishedAt": "150.0"}} and i1["ready"] is True
    assert i2["state"] == {"waiting": {"reason": "PodInitializing"}} and i2["ready"] is False
    assert {c["type"]: c for c in status["conditions"]}["Initialized"] == {
        "type": "Initialized", "status": "False", "reason": "ContainersNotInitialized",
        "message": "containers with incomplete status: [i2]", "lastTransitionTime": "t"}
    running = plan([init_pod()], [MADE, state("u1", "i1", "exited", 0), state("u1", "i2")])
    i2 = running.statuses["u1"]["initContainerStatuses"][1]
    assert i2["state"] == {"running": {"startedAt": "100"}} and i2["ready"] is False
    told = status_events(status, running.statuses["u1"])
    assert told == [("Started", "Started container i2", False)]
    # all done: Initialized turns True, at this round's time
    done = init_pod(stored={"i1": DONE, "i2": DONE})
    done["status"]["conditions"] = status["conditions"]
    after = plan([done], [MADE, state("u1", "main")]).statuses["u1"]
    assert {c["type"]: c for c in after["conditions"]}["Initialized"] == {
        "type": "Initialized", "status": "True", "lastTransitionTime": "t"}
    assert after["initContainerStatuses"] == done["status"]["initContainerStatuses"]
    # a pod without init containers gets neither
    plain = plan([pod("a", "u2")], [state("u2", None), state("u2", "main")]).statuses["u2"]
    assert "initContainerStatuses" not in plain and [c["type"] for c in plain["conditions"]] == ["Ready"]


def test_a_failing_init_container_is_restarted_with_back_off_and_counted() -> None:
    failed = [MADE, state("u1", "i1", "exited", 2, finished=900.0)]
    looping = {"i1": {"waiting": {"reason": "CrashLoopBackOff"}}}
    backing_off = plan([init_pod(stored=looping, restarts=3)], failed, now=950.0)  # 80 s after 3 restarts
    entry = backing_off.statuses["u1"]["initContainerStatuses"][0]
    assert backing_off.kinds() == [] and entry["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert entry["lastState"]["terminated"]["exitCode"] == 2
    again = plan([init_pod(stored=looping, restarts=3)], failed, now=981.0)
    assert again.kinds() == ["RestartContainer"]
    assert again.statuses["u1"]["initContainerStatuses"][0]["restartCount"] == 4
    refused = plan([init_pod()], failed, fail={RestartContainer: "RunContainerError"})
    entry = refused.statuses["u1"]["initContainerStatuses"][0]
    assert entry["state"]["waiting"]["reason"] == "RunContainerError" and entry["restartCount"] == 0
    not_run = plan([init_pod()], [MADE], fail={RunContainer: "CreateContainerConfigError"})
    assert not_run.statuses["u1"]["initContainerStatuses"][0]["state"]["waiting"]["reason"] \
        == "CreateContainerConfigError"


# --- images that cannot be had ------------------------------------------------------------

def test_an_image_that_cannot_be_had_waits_with_back_off_and_is_no_crash_loop() -> None:
    """Kubelet's image errors, round after round: (clock, listing, how this round's attempt ends) ->
    (actions, waiting reason, events). The leader's record (pulls.after_round) carries each round's
    failures to the next; the back-off is the restart one's, 10 s doubling."""
    from berth.cli.columns import pod_status as status_column

    failed = ("Failed", 'Failed to pull image "busybox": it failed', True)
    backoff = ("BackOff", 'Back-off pulling image "busybox"', False)
    cases = [
        (1000.0, [], {RunContainer: "ErrImagePull"}, ["MakeSandbox", "RunContainer"], "ErrImagePull",
         [failed]),
        (1005.0, [MADE], {}, [], "ImagePullBackOff", [backoff]),  # 10 s after the first failure
        (1009.0, [MADE], {}, [], "ImagePullBackOff", []),  # told once as it began
        (1011.0, [MADE], {RunContainer: "ErrImagePull"}, ["RunContainer"], "ErrImagePull", [failed]),
        (1025.0, [MADE], {}, [], "ImagePullBackOff", [backoff]),  # 20 s after the second
        (1032.0, [MADE], {}, ["RunContainer"], "ContainerCreating", []),  # the image came: made
    ]
    obj, record = pod("a", "u1"), {}
    for now, observed, fail, kinds, reason, events in cases:
        result = plan([obj], observed, now=now, fail=fail, pulls=record)
        status = result.statuses["u1"]
        [entry] = status["containerStatuses"]
        where = (now, kinds)
        assert (result.kinds(), entry["state"]["waiting"]["reason"]) == (kinds, reason), where
        assert status_events(obj["status"], status) == events, where
        assert entry["restartCount"] == 0 and status["phase"] == "Pending", where  # never made: no crash
        assert status_column({**obj, "status": status}, datetime.now(UTC)) == reason, where
        record = after_round(record, result.outcomes, now)
        obj = {**obj, "status": status}
    assert record == {}  # made: forgotten
    between = plan([obj], [MADE], now=1000.0, pulls={("u1", "main"): PullFailure(
        "busybox", "ErrImagePull", "connection refused", 2, 990.0)}).statuses["u1"]
    assert between["containerStatuses"][0]["state"] == {"waiting": {
        "reason": "ImagePullBackOff",
        "message": 'Back-off pulling image "busybox": ErrImagePull: connection refused'}}


def test_image_errors_follow_the_image_the_pod_names_and_never_pull_is_told_as_such() -> None:
    failure = {("u1", "main"): PullFailure("busybox", "ErrImagePull", "no such host", 3, 995.0)}
    assert plan([pod("a", "u1")], [MADE], pulls=failure).kinds() == []
    changed = pod("a", "u1")
    changed["spec"]["containers"][0]["image"] = "busybox:fixed"  # another image: tried at once
    assert plan([changed], [MADE], pulls=failure).kinds() == ["RunContainer"]
    # a container made afresh for a new image that cannot be had: the old one is gone, then back-off
    from berth.containers import IMAGE

    old = state("u1", "main")
    labelled = ContainerState(**{**old.__dict__, "labels": {**old.labels, IMAGE: "busybox:old"}})
    replaced = plan([pod("a", "u1")], [MADE, labelled], fail={ReplaceContainer: "ErrImagePull"})
    entry = replaced.statuses["u1"]["containerStatuses"][0]
    assert replaced.kinds() == ["ReplaceContainer"] and entry["state"]["waiting"]["reason"] == "ErrImagePull"
    assert entry["restartCount"] == 0
    record = after_round({}, replaced.outcomes, 1000.0)
    assert record[("u1", "main")].failures == 1
    later = plan([pod("a", "u1")], [MADE], now=1004.0, pulls=record)
    assert later.kinds() == [] and \
        later.statuses["u1"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "ImagePullBackOff"
    # another image failing starts the count again; any other failure forgets (the image was there)
    refused = plan([changed], [MADE], fail={RunContainer: "ErrImagePull"}).outcomes
    again = after_round(failure, refused, 1000.0)
    assert (again[("u1", "main")].image, again[("u1", "main")].failures) == ("busybox:fixed", 1)
    other = plan([changed], [MADE], fail={RunContainer: "RunContainerError"}).outcomes
    assert after_round(again, other, 1000.0) == {}
    # imagePullPolicy Never: ErrImageNeverPull, told once, and it stays so between the attempts
    never = pod("n", "u1")
    never["spec"]["containers"][0]["imagePullPolicy"] = "Never"
    first = plan([never], [MADE], fail={RunContainer: "ErrImageNeverPull"})
    status = first.statuses["u1"]
    assert status["containerStatuses"][0]["state"] == {"waiting": {"reason": "ErrImageNeverPull",
                                                                   "message": "it failed"}}
    assert status_events(never["status"], status) == [("ErrImageNeverPull", "it failed", True)]
    waiting = plan([{**never, "status": status}], [MADE], now=1005.0,
                   pulls=after_round({}, first.outcomes, 1000.0))
    assert waiting.kinds() == [] and waiting.statuses["u1"] == status
    assert status_events(status, waiting.statuses["u1"]) == []


def test_an_init_container_whose_image_cannot_be_had_holds_up_the_pod() -> None:
    from berth.cli.columns import pod_status as status_column

    first = plan([init_pod()], [], fail={RunContainer: "ErrImagePull"})
    assert first.kinds() == ["MakeSandbox", "RunContainer"]
    record = after_round({}, first.outcomes, 1000.0)
    obj = {**init_pod(), "status": first.statuses["u1"]}
    assert status_column(obj, datetime.now(UTC)) == "Init:ErrImagePull"
    later = plan([obj], [MADE], now=1005.0, pulls=record)
    assert later.kinds() == [] and status_column({**obj, "status": later.statuses["u1"]},
                                                 datetime.now(UTC)) == "Init:ImagePullBackOff"
    assert later.statuses["u1"]["phase"] == "Pending"
    assert plan([obj], [MADE], now=1011.0, pulls=record).kinds() == ["RunContainer"]
