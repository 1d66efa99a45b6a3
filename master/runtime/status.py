"""A pod's status on its host: pure, from the host's listing and what this round's actions did.

The only place a pod's status is made. The planner (planner.py) decides; the executor
(executor.py) acts; this reads the listing and the outcomes and says what a user sees:
each container's state and restart count, the pod's phase, its Ready condition and
address. A failed action shows as the container's waiting reason, as a kubelet shows it.
"""

from __future__ import annotations

from berth.objects import Obj
from master.objects.conditions import condition, with_condition
from master.runtime.actions import (
    FindAddress,
    MakeSandbox,
    Outcome,
    ReplaceContainer,
    RestartContainer,
    RestartUnhealthy,
    RunContainer,
)
from master.runtime.driver import ContainerState
from master.runtime.planner import Listing, SoftState, previous_status, restartable, verdict_on


def pod_status(pod: Obj, listing: Listing, outcomes: list[Outcome], soft: SoftState, host_ip: str,
               timestamp: str) -> Obj:
    """`outcomes`: this round's, of this pod's actions; `timestamp`: for a changed condition."""
    uid, spec = pod["metadata"]["uid"], pod["spec"]
    per_container = RunContainer | RestartContainer | ReplaceContainer | RestartUnhealthy
    by_container = {o.action.container["name"]: o for o in outcomes if isinstance(o.action, per_container)}
    sandbox_failed = next((o for o in outcomes if isinstance(o.action, MakeSandbox) and not o.ok), None)
    containers = listing.of_pod(uid)
    entries = []
    for container in spec["containers"]:
        name = container["name"]
        previous = previous_status(pod, name)
        if (uid, name) in soft.busy and previous.get("state"):
            entries.append(previous)  # its restart is under way: as the round that began it wrote it
            continue
        entry: Obj = {"name": name, "image": container["image"],
                      "restartCount": int(previous.get("restartCount") or 0), "ready": False}
        if "lastState" in previous:
            entry["lastState"] = previous["lastState"]
        if sandbox_failed is not None:
            entry["state"] = _waiting(sandbox_failed)
        else:
            _container_state(entry, pod, containers.get(name), by_container.get(name), soft)
        entries.append(entry)
    return _pod_level(pod, entries, outcomes, host_ip, timestamp)


def _waiting(outcome: Outcome) -> Obj:
    return {"waiting": {"reason": outcome.reason, "message": outcome.message}}


def _container_state(entry: Obj, pod: Obj, state: ContainerState | None, outcome: Outcome | None,
                     soft: SoftState) -> None:
    """Fill in `entry`'s state (and restart count, last state) from the listing and the outcome."""
    action = outcome.action if outcome is not None else None
    if isinstance(action, RunContainer) or state is None:
        entry["state"] = (_waiting(outcome) if outcome is not None and not outcome.ok
                          else {"waiting": {"reason": "ContainerCreating"}})
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
        ready = verdict_on(soft.verdicts, pod["metadata"]["uid"], entry["name"], "readiness", state)
        probed = bool(_container(pod, entry["name"]).get("readinessProbe"))
        entry["ready"] = not probed or (ready is not None and ready.healthy)
        return
    # exited, or created/stopped (as after the host rebooted)
    terminated = {"exitCode": state.exit_code, "finishedAt": state.finished_at,
                  "reason": "Completed" if state.exit_code == 0 else "Error"}
    if not restartable(pod["spec"].get("restartPolicy", "Always"), state):
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
    return next(c for c in pod["spec"]["containers"] if c["name"] == name)


def _pod_level(pod: Obj, entries: list[Obj], outcomes: list[Outcome], host_ip: str, timestamp: str) -> Obj:
    finished = [e for e in entries if "terminated" in e["state"]]
    if len(finished) == len(entries):
        phase = "Failed" if any(e["state"]["terminated"]["exitCode"] != 0 for e in finished) else "Succeeded"
    elif any(e["state"].get("waiting", {}).get("reason") == "ContainerCreating" for e in entries):
        phase = "Pending"
    else:  # every container made: running, restarting or backing off
        phase = "Running"
    ready = phase == "Running" and all(e["ready"] for e in entries)
    status = {**(pod.get("status") or {}), "phase": phase, "hostIP": host_ip, "containerStatuses": entries}
    address = next((o.value for o in outcomes if isinstance(o.action, FindAddress)), None)
    if address is not None:
        status["podIP"] = address
    previous = condition(pod, "Ready")
    if previous is None or (previous.get("status") == "True") != ready:
        status = with_condition(status, {"type": "Ready", "status": "True" if ready else "False",
                                         "reason": "ContainersReady" if ready else "ContainersNotReady",
                                         "lastTransitionTime": timestamp})
    return status
