"""A pod's status on its host: pure, from the host's listing and what this round's actions did.

The only place a pod's status is made. The planner (planner.py) decides; the executor
(executor.py) acts; this reads the listing and the outcomes and says what a user sees:
each container's state and restart count, the pod's phase, its Ready condition and
address. A failed action shows as the container's waiting reason, as a kubelet shows it;
so does the back-off after a failure to get an image (ImagePullBackOff, pulls.py).
A pod with init containers also gets their `initContainerStatuses` and an Initialized
condition; it is Pending until they all completed (Failed if one failed under
restartPolicy Never), and until then its app containers wait, PodInitializing.
"""

from __future__ import annotations

from berth.objects import Obj
from master.objects.conditions import condition, with_condition
from master.runtime.actions import (
    FindAddress,
    MakeSandbox,
    MountVolumes,
    Outcome,
    ReplaceContainer,
    RestartContainer,
    RestartUnhealthy,
    RunContainer,
)
from master.runtime.driver import ContainerState
from master.runtime.planner import (
    InitProgress,
    Listing,
    SoftState,
    init_policy,
    init_progress,
    previous_status,
    pull_backoff,
    restartable,
    verdict_on,
)
from master.runtime.pulls import pull_waiting
from master.runtime.volumes import FAILED_MOUNT


def _initializing() -> Obj:
    """The state of a container whose turn has not come (a fresh dict: entries are written out apart)."""
    return {"waiting": {"reason": "PodInitializing"}}


def pod_status(pod: Obj, listing: Listing, outcomes: list[Outcome], soft: SoftState, host_ip: str,
               timestamp: str) -> Obj:
    """`outcomes`: this round's, of this pod's actions; `timestamp`: for a changed condition."""
    uid, spec = pod["metadata"]["uid"], pod["spec"]
    per_container = RunContainer | RestartContainer | ReplaceContainer | RestartUnhealthy
    by_container = {o.action.container["name"]: o for o in outcomes if isinstance(o.action, per_container)}
    before_containers = MountVolumes | MakeSandbox  # a failure of either: no container is made
    sandbox_failed = next((o for o in outcomes if isinstance(o.action, before_containers) and not o.ok), None)
    containers = listing.of_pod(uid)
    progress = init_progress(pod, containers)
    inits = [_init_entry(pod, container, progress, containers.get(container["name"]),
                         by_container.get(container["name"]), sandbox_failed, soft)
             for container in spec.get("initContainers") or []]
    entries = []
    for container in spec["containers"]:
        name = container["name"]
        previous = previous_status(pod, name)
        if (uid, name) in soft.busy and previous.get("state"):
            entries.append(previous)  # its restart is under way: as the round that began it wrote it
            continue
        entry = _fresh(container, previous)
        if sandbox_failed is not None:
            entry["state"] = _waiting(sandbox_failed)
        elif not progress.complete:
            entry["state"] = _initializing()
        else:
            _container_state(entry, pod, containers.get(name), by_container.get(name), soft)
        entries.append(entry)
    status = _pod_level(pod, entries, progress, outcomes, host_ip, timestamp)
    if inits:
        status = _initialized(pod, {**status, "initContainerStatuses": inits}, progress, timestamp)
    return status


def _fresh(container: Obj, previous: Obj) -> Obj:
    """A container's entry before its state is known: what the stored one counted and last saw."""
    entry: Obj = {"name": container["name"], "image": container["image"],
                  "restartCount": int(previous.get("restartCount") or 0), "ready": False}
    if "lastState" in previous:
        entry["lastState"] = previous["lastState"]
    return entry


def _init_entry(pod: Obj, container: Obj, progress: InitProgress, state: ContainerState | None,
                outcome: Outcome | None, sandbox_failed: Outcome | None, soft: SoftState) -> Obj:
    """One init container's status. One that completed and is gone from the host keeps the status
    that says so (inferred Completed when a later container shows it ran and none was stored)."""
    name = container["name"]
    previous = previous_status(pod, name)
    if state is None and name in progress.done:
        recorded = (previous.get("state") or {}).get("terminated") or {}
        if recorded.get("exitCode") == 0:
            return previous
        return {**_fresh(container, previous), "ready": True,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
    if state is None and progress.failed and container is progress.current:
        return previous  # it failed for good and is gone from the host: as stored
    entry = _fresh(container, previous)
    if sandbox_failed is not None and name not in progress.done:
        entry["state"] = _waiting(sandbox_failed)
    elif state is None and container is not progress.current:
        entry["state"] = _initializing()  # its turn has not come
    else:
        _container_state(entry, pod, state, outcome, soft, init=True)
        terminated = (entry["state"] or {}).get("terminated") or {}
        entry["ready"] = "terminated" in entry["state"] and terminated.get("exitCode") == 0
    return entry


def _waiting(outcome: Outcome) -> Obj:
    """A container that cannot be made yet: the reason a kubelet gives, its volumes' trouble shown
    as kubelet shows it (ContainerCreating, the FailedMount events telling why)."""
    if isinstance(outcome.action, MountVolumes):
        return {"waiting": {"reason": "ContainerCreating", "message": f"{FAILED_MOUNT}: {outcome.message}"}}
    return {"waiting": {"reason": outcome.reason, "message": outcome.message}}


def _container_state(entry: Obj, pod: Obj, state: ContainerState | None, outcome: Outcome | None,
                     soft: SoftState, init: bool = False) -> None:
    """Fill in `entry`'s state (and restart count, last state) from the listing and the outcome.
    `init`: an init container's (restarted only on failure; not ready while it runs; shown
    PodInitializing until the host lists it, as a kubelet shows it)."""
    action = outcome.action if outcome is not None else None
    if isinstance(action, RunContainer) or state is None:
        failure = pull_backoff(soft, pod["metadata"]["uid"], _container(pod, entry["name"]))
        entry["state"] = (_waiting(outcome) if outcome is not None and not outcome.ok
                          else pull_waiting(failure) if outcome is None and failure is not None
                          else _initializing() if init else {"waiting": {"reason": "ContainerCreating"}})
        return
    if isinstance(action, ReplaceContainer) and outcome is not None:
        if outcome.ok:  # made afresh from the new image
            entry["restartCount"] += 1
            entry["lastState"] = {"terminated": {"reason": "ImageChanged", "startedAt": state.started_at,
                                                 "message": f"image was {action.old_image}"}}
            entry["state"] = {"running": {"startedAt": ""}}
        else:
            entry["state"] = _waiting(outcome)
        return
    if isinstance(action, RestartUnhealthy) and outcome is not None:
        if outcome.background:  # begun: the process runs on while it is stopped, no longer ready
            entry["state"] = {"running": {"startedAt": state.started_at}}
            return
        if outcome.ok:  # done (a later round): counted once, and the listing says how it runs now
            entry["restartCount"] += 1
            entry["lastState"] = {"terminated": {"reason": "Unhealthy", "message": action.message,
                                                 "startedAt": action.started_at}}
    if state.state == "running":
        entry["state"] = {"running": {"startedAt": state.started_at}}
        if init:
            return
        ready = verdict_on(soft.verdicts, pod["metadata"]["uid"], entry["name"], "readiness", state)
        probed = bool(_container(pod, entry["name"]).get("readinessProbe"))
        entry["ready"] = not probed or (ready is not None and ready.healthy)
        return
    # exited, or created/stopped (as after the host rebooted)
    terminated = {"exitCode": state.exit_code, "startedAt": state.started_at, "finishedAt": state.finished_at,
                  "reason": "Completed" if state.exit_code == 0 else "Error"}
    policy = init_policy(pod) if init else pod["spec"].get("restartPolicy", "Always")
    if not restartable(policy, state):
        entry["state"] = {"terminated": terminated}
        return
    entry["lastState"] = {"terminated": terminated}
    if isinstance(action, RestartContainer) and outcome is not None and outcome.ok:
        entry["restartCount"] += 1
        entry["state"] = {"running": {"startedAt": ""}}
    elif outcome is not None and not outcome.ok:
        entry["state"] = _waiting(outcome)
    else:
        message = f"back-off {soft.backoff.delay(entry['restartCount']):g}s restarting the failed container"
        entry["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message": message}}


def _container(pod: Obj, name: str) -> Obj:
    """One of the pod's containers, init or app (names are unique across both)."""
    spec = pod["spec"]
    return next(c for c in [*(spec.get("initContainers") or []), *spec["containers"]] if c["name"] == name)


def _waiting_to_be_made(entry: Obj) -> bool:
    """Being made, or never made because it cannot be (its image, its env): kubelet's phase counts
    a container waiting with no earlier run as Pending, not Running."""
    waiting = entry["state"].get("waiting")
    return waiting is not None and (waiting.get("reason") == "ContainerCreating" or "lastState" not in entry)


def _pod_level(pod: Obj, entries: list[Obj], progress: InitProgress, outcomes: list[Outcome], host_ip: str,
               timestamp: str) -> Obj:
    finished = [e for e in entries if "terminated" in e["state"]]
    if not progress.complete:  # init containers still to run, or one that failed for good
        phase = "Failed" if progress.failed else "Pending"
    elif len(finished) == len(entries):
        phase = "Failed" if any(e["state"]["terminated"]["exitCode"] != 0 for e in finished) else "Succeeded"
    elif any(_waiting_to_be_made(e) for e in entries):
        phase = "Pending"
    else:  # every container made: running, restarting or backing off
        phase = "Running"
    ready = phase == "Running" and all(e["ready"] for e in entries)
    kept = {k: v for k, v in (pod.get("status") or {}).items() if k not in ("reason", "message")}  # NodeLost
    # startTime: the first round that wrote the pod's status, as kubelet's acknowledgement, kept after
    status = {"startTime": timestamp, **kept, "phase": phase, "hostIP": host_ip, "containerStatuses": entries}
    address = next((o.value for o in outcomes if isinstance(o.action, FindAddress)), None)
    if address is not None:
        status["podIP"] = address
    previous = condition(pod, "Ready")
    if previous is None or (previous.get("status") == "True") != ready:
        status = with_condition(status, {"type": "Ready", "status": "True" if ready else "False",
                                         "reason": "ContainersReady" if ready else "ContainersNotReady",
                                         "lastTransitionTime": timestamp})
    return status


def _initialized(pod: Obj, status: Obj, progress: InitProgress, timestamp: str) -> Obj:
    """The Initialized condition of a pod with init containers: False, naming those not done,
    until every one completed. Its time changes only when its status does."""
    if progress.complete:
        wanted: Obj = {"type": "Initialized", "status": "True"}
    else:
        waiting = [c["name"] for c in pod["spec"]["initContainers"] if c["name"] not in progress.done]
        wanted = {"type": "Initialized", "status": "False", "reason": "ContainersNotInitialized",
                  "message": f"containers with incomplete status: [{' '.join(waiting)}]"}
    previous = condition(pod, "Initialized")
    if previous is not None and {k: v for k, v in previous.items() if k != "lastTransitionTime"} == wanted:
        return status
    since = (previous.get("lastTransitionTime") if previous is not None
             and previous.get("status") == wanted["status"] else None) or timestamp
    return with_condition(status, {**wanted, "lastTransitionTime": since})
