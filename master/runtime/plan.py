"""What to do on one host, and what each pod's status is: pure, from desired and observed state.

Desired: the pods bound to the node. Observed: the containers the host's runtime lists
with Berth's labels. Out come the actions (make a pod's sandbox, run a missing
container, restart an exited one when its restartPolicy says so and its back-off has
passed, remove what belongs to no pod) and each pod's status as it will be once they
are done. Back-off is computed from the status (restart count) and the runtime's exit
time, so it survives a leader change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from berth.containers import NAMESPACE, POD_NAME, POD_UID, container_name, sandbox_name
from berth.objects import Obj
from master.objects.conditions import condition, with_condition
from master.objects.isolation import Broken, reraise
from master.probes import Key, Verdict
from master.runtime.driver import ContainerState


@dataclass(frozen=True)
class Backoff:
    base: float = 10.0  # Kubernetes: 10 s, doubling, at most 5 minutes
    limit: float = 300.0

    def delay(self, restarts: int) -> float:
        return min(self.limit, self.base * 2 ** min(restarts, 30))


@dataclass(frozen=True)
class Action:
    # sandbox, run, restart, restart-unhealthy, terminate; remove (a container), remove-pod (orphans);
    # forget: a deleted pod with nothing left on the host (no host action: its object is deleted)
    verb: str
    pod: Obj | None = None
    container: Obj | None = None
    target: str = ""  # the runtime's name for what is acted on


@dataclass
class HostPlan:
    actions: list[Action] = field(default_factory=list)
    statuses: dict[str, Obj] = field(default_factory=dict)  # pod uid -> status once the actions ran


def _previous(pod: Obj, name: str) -> Obj:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == name:
            return status
    return {}


def wants_restart(policy: str, exit_code: int) -> bool:
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)


def _finished_at(state: ContainerState) -> float:
    try:
        return float(state.finished_at)
    except ValueError:
        return 0.0


def plan_host(pods: list[Obj], observed: list[ContainerState], now: float, backoff: Backoff,
              host_ip: str, timestamp: str, verdicts: dict[Key, Verdict] | None = None,
              busy: frozenset[tuple[str, str]] = frozenset(), broken: Broken = reraise) -> HostPlan:
    """`now`: wall-clock seconds, the runtime's clock for exit times; `timestamp`: for conditions;
    `verdicts`: the agents' latest probe results (master/probes.py); `busy`: (pod uid, container)
    the runtime is restarting in the background: no action, and their status stays as written.
    A pod that cannot be planned goes to `broken` with no action and no status (the others go on)."""
    result = HostPlan()
    desired = {p["metadata"]["uid"]: p for p in pods}
    by_pod: dict[str, dict[str, ContainerState]] = {}
    sandboxes: set[str] = set()
    for state in observed:
        if state.sandbox:
            sandboxes.add(state.pod_uid)
        elif state.container:
            by_pod.setdefault(state.pod_uid, {})[state.container] = state
    # what belongs to no pod bound here: remove it, its containers first, then its sandbox
    for uid in sorted((sandboxes | set(by_pod)) - set(desired)):
        labels = next((s.labels for s in observed if s.pod_uid == uid), {})
        for state in observed:
            if state.pod_uid == uid and not state.sandbox:
                result.actions.append(Action("remove", target=state.id or state.name))
        owner = {"metadata": {"namespace": labels.get(NAMESPACE, ""), "name": labels.get(POD_NAME, ""),
                              "uid": labels.get(POD_UID, uid)}}
        result.actions.append(Action("remove-pod", target=sandbox_name(owner)))
    for uid, pod in desired.items():
        if pod["metadata"].get("deletionTimestamp"):  # a graceful delete: stop, remove, then forget it
            on_host = uid in sandboxes or uid in by_pod
            result.actions.append(Action("terminate" if on_host else "forget", pod=pod))
            continue
        actions: list[Action] = []
        try:
            status = _plan_pod(pod, uid in sandboxes, by_pod.get(uid, {}), now, backoff, host_ip, timestamp,
                               verdicts or {}, actions, busy)
        except Exception as err:
            broken(pod, err)
            continue
        result.statuses[uid] = status
        result.actions.extend(actions)
    return result


def _verdict(verdicts: dict[Key, Verdict], uid: str, container: str, probe: str,
             state: ContainerState) -> Verdict | None:
    """The agent's verdict on this very start of the container (an older one is stale)."""
    verdict = verdicts.get((uid, container, probe))
    return verdict if verdict is not None and verdict.started_at == state.started_at else None


def _plan_pod(pod: Obj, has_sandbox: bool, containers: dict[str, ContainerState], now: float,
              backoff: Backoff, host_ip: str, timestamp: str, verdicts: dict[Key, Verdict],
              actions: list[Action], busy: frozenset[tuple[str, str]]) -> Obj:
    spec = pod["spec"]
    policy = spec.get("restartPolicy", "Always")
    if not has_sandbox:
        actions.append(Action("sandbox", pod=pod))
    statuses, finished, failed = [], 0, 0
    for container in spec["containers"]:
        name = container["name"]
        previous = _previous(pod, name)
        restarts = int(previous.get("restartCount") or 0)
        entry_name = container_name(pod, name)
        state = containers.get(name) if has_sandbox else None
        if (pod["metadata"]["uid"], name) in busy and previous.get("state"):
            statuses.append(previous)  # its restart is under way: as the round that began it wrote it
            continue
        entry: Obj = {"name": name, "image": container["image"], "restartCount": restarts, "ready": False}
        if "lastState" in previous:
            entry["lastState"] = previous["lastState"]
        if state is None:
            actions.append(Action("run", pod=pod, container=container, target=entry_name))
            entry["state"] = {"waiting": {"reason": "ContainerCreating"}}
        elif state.state == "running":
            uid = pod["metadata"]["uid"]
            live = _verdict(verdicts, uid, name, "liveness", state)
            if container.get("livenessProbe") and live is not None and not live.healthy:
                actions.append(Action("restart-unhealthy", pod=pod, container=container, target=entry_name))
                entry["restartCount"] = restarts + 1
                entry["lastState"] = {"terminated": {"reason": "Unhealthy", "message": live.message,
                                                     "startedAt": state.started_at}}
                entry["state"] = {"running": {"startedAt": ""}}
            else:
                entry["state"] = {"running": {"startedAt": state.started_at}}
                ready = _verdict(verdicts, uid, name, "readiness", state)
                entry["ready"] = not container.get("readinessProbe") or (ready is not None and ready.healthy)
        else:  # exited, or created/stopped (as after the host rebooted)
            terminated = {"exitCode": state.exit_code, "finishedAt": state.finished_at,
                          "reason": "Completed" if state.exit_code == 0 else "Error"}
            if not wants_restart(policy, state.exit_code) and state.state == "exited":
                entry["state"] = {"terminated": terminated}
                finished += 1
                failed += state.exit_code != 0
            elif now >= _finished_at(state) + backoff.delay(restarts):
                actions.append(Action("restart", pod=pod, container=container, target=entry_name))
                entry["restartCount"] = restarts + 1
                entry["lastState"] = {"terminated": terminated}
                entry["state"] = {"running": {"startedAt": ""}}
            else:
                entry["lastState"] = {"terminated": terminated}
                message = f"back-off {backoff.delay(restarts):g}s restarting the failed container"
                entry["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message": message}}
        statuses.append(entry)
    if finished == len(spec["containers"]):
        phase = "Failed" if failed else "Succeeded"
    elif any(s["state"].get("waiting", {}).get("reason") == "ContainerCreating" for s in statuses):
        phase = "Pending"
    else:  # every container made: running, restarting or backing off
        phase = "Running"
    ready = phase == "Running" and all(s["ready"] for s in statuses)
    status = {**(pod.get("status") or {}), "phase": phase, "hostIP": host_ip, "containerStatuses": statuses}
    previous = condition(pod, "Ready")
    if previous is None or (previous.get("status") == "True") != ready:
        status = with_condition(status, {"type": "Ready", "status": "True" if ready else "False",
                                         "reason": "ContainersReady" if ready else "ContainersNotReady",
                                         "lastTransitionTime": timestamp})
    return status

