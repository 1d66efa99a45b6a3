"""What to do on one host: pure, from the pods bound to it, the host's listing and soft state.

Desired: the pods bound to the node. Observed: the containers the host's engine lists
with Berth's labels. Out come typed actions (actions.py): make a pod's sandbox, run a
missing container, restart an exited one when its restartPolicy says so and its
back-off has passed, restart one its liveness probe failed, stop a deleted pod, remove
what belongs to no pod, ask for a pod's address. Back-off is computed from the stored
status (restart count) and the engine's exit time, so it survives a leader change; a
container whose image could not be had waits out the same back-off from the leader's
record of its failures (pulls.py) before it is tried again.
A pod's init containers come first, one at a time (init_progress): its app containers
get no action until every init container exited 0.
What the pod's status becomes is status.py's, from this listing and the outcomes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from berth.containers import NAMESPACE, POD_NAME, POD_UID, sandbox_name
from berth.objects import Obj
from master.objects.isolation import Broken, reraise
from master.reports.probes import Key, Verdict
from master.runtime.actions import (
    Action,
    FindAddress,
    ForgetPod,
    MakeSandbox,
    MountVolumes,
    RemoveContainer,
    RemoveSandbox,
    ReplaceContainer,
    RestartContainer,
    RestartUnhealthy,
    RunContainer,
    StopPod,
)
from master.runtime.driver import ContainerState
from master.runtime.pulls import PullFailure, PullKey


@dataclass(frozen=True)
class Backoff:
    base: float = 10.0  # Kubernetes: 10 s, doubling, at most 5 minutes
    limit: float = 300.0

    def delay(self, restarts: int) -> float:
        return min(self.limit, self.base * 2 ** min(restarts, 30))


@dataclass(frozen=True)
class SoftState:
    """What the leader knows beside the store: the clocks, the agents' latest probe verdicts
    (master/reports/probes.py), the (pod uid, container) pairs whose restart or stop runs in the
    background ((uid, "") for a whole pod): they get no action and keep their status; and the
    containers whose image could not be had (pulls.py)."""

    now: float  # wall-clock seconds: the engine's clock for exit times
    backoff: Backoff = Backoff()
    verdicts: dict[Key, Verdict] = field(default_factory=dict)
    busy: frozenset[tuple[str, str]] = frozenset()
    pulls: dict[PullKey, PullFailure] = field(default_factory=dict)
    # pods whose volumes the host must be given (again): uid -> the digest of what they hold now
    volumes_due: dict[str, str] = field(default_factory=dict)


@dataclass
class Listing:
    """A host's listing grouped by pod: which have a sandbox, and their containers by name."""

    sandboxes: set[str] = field(default_factory=set)
    containers: dict[str, dict[str, ContainerState]] = field(default_factory=dict)
    all: list[ContainerState] = field(default_factory=list)

    @staticmethod
    def of(observed: list[ContainerState]) -> Listing:
        listing = Listing(all=observed)
        for state in observed:
            if state.sandbox:
                listing.sandboxes.add(state.pod_uid)
            elif state.container:
                listing.containers.setdefault(state.pod_uid, {})[state.container] = state
        return listing

    def has_sandbox(self, uid: str) -> bool:
        return uid in self.sandboxes

    def of_pod(self, uid: str) -> dict[str, ContainerState]:
        """A pod's containers; none while it has no sandbox (a half-made pod is made afresh)."""
        return self.containers.get(uid, {}) if uid in self.sandboxes else {}

    def on_host(self, uid: str) -> bool:
        return uid in self.sandboxes or uid in self.containers


def previous_status(pod: Obj, name: str) -> Obj:
    """The stored status of one of the pod's containers, init or app ({} before it had one;
    names are unique across both)."""
    status = pod.get("status") or {}
    for entry in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        if entry.get("name") == name:
            return entry
    return {}


def init_policy(pod: Obj) -> str:
    """The restart policy an init container follows: one that succeeded is never run again, so
    Always means OnFailure for it (as in Kubernetes)."""
    return "Never" if pod["spec"].get("restartPolicy", "Always") == "Never" else "OnFailure"


@dataclass(frozen=True)
class InitProgress:
    """How far a pod's init containers got. `current`: the first not done (None: all done, the app
    containers' turn); `failed`: it failed under restartPolicy Never, so the pod failed for good."""

    done: frozenset[str]
    current: Obj | None = None
    failed: bool = False

    @property
    def complete(self) -> bool:
        return self.current is None


def _succeeded(state: ContainerState | None) -> bool:
    return state is not None and state.state == "exited" and state.exit_code == 0


def init_progress(pod: Obj, containers: dict[str, ContainerState]) -> InitProgress:
    """Which init containers are done, from the host's listing and the stored status (pure).

    Done: exited 0 on the host; or gone from the host (cleaned up, or the sandbox made afresh)
    with a stored status that says it completed; or followed on the host by a later init or app
    container (only a completed one lets the next start). So init containers that completed are
    never run again, even when the host no longer shows them."""
    spec = pod["spec"]
    inits = spec.get("initContainers") or []
    reached = max((index for index, c in enumerate(inits) if c["name"] in containers), default=-1)
    if any(c["name"] in containers for c in spec["containers"]):
        reached = len(inits)
    done: set[str] = set()
    for index, container in enumerate(inits):
        name = container["name"]
        state = containers.get(name)
        recorded = (previous_status(pod, name).get("state") or {}).get("terminated")
        if index < reached or _succeeded(state) or (state is None and recorded
                                                     and recorded.get("exitCode") == 0):
            done.add(name)
            continue
        exited = (state.state == "exited" and state.exit_code != 0) if state is not None else bool(recorded)
        return InitProgress(frozenset(done), container, failed=exited and init_policy(pod) == "Never")
    return InitProgress(frozenset(done))


def wants_restart(policy: str, exit_code: int) -> bool:
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)


def restartable(policy: str, state: ContainerState) -> bool:
    """Not finished for good: the policy wants it again, or it never exited (a host that
    rebooted leaves containers created or stopped, whatever their policy)."""
    return wants_restart(policy, state.exit_code) or state.state != "exited"


def finished_at(state: ContainerState) -> float:
    try:
        return float(state.finished_at)
    except ValueError:
        return 0.0


def verdict_on(verdicts: dict[Key, Verdict], uid: str, container: str, probe: str,
               state: ContainerState) -> Verdict | None:
    """The agent's verdict on this very start of the container (an older one is stale)."""
    verdict = verdicts.get((uid, container, probe))
    return verdict if verdict is not None and verdict.started_at == state.started_at else None


def pull_backoff(soft: SoftState, uid: str, container: Obj) -> PullFailure | None:
    """The container's last failure to get the image its pod names now, while the back-off after
    it lasts (None: try now). Another image than the one that failed is tried at once."""
    failure = soft.pulls.get((uid, container["name"]))
    if failure is None or failure.image != container["image"]:
        return None
    return failure if soft.now < failure.failed_at + soft.backoff.delay(failure.failures - 1) else None


def _make(pod: Obj, container: Obj, state: ContainerState | None, soft: SoftState) -> list[Action]:
    """A container the host lacks is run, one made from another image than its pod names now is
    made afresh; either waits while the back-off after a failure to get its image lasts."""
    if pull_backoff(soft, pod["metadata"]["uid"], container) is not None:
        return []
    if state is None:
        return [RunContainer(pod, container)]
    return [ReplaceContainer(pod, container, state.image)]


def plan_host(pods: list[Obj], listing: Listing, soft: SoftState, broken: Broken = reraise) -> list[Action]:
    """The actions for one host, in the order to run them: orphans' removals, then each pod's
    (its sandbox before its containers), then the address reads. A pod that cannot be planned
    goes to `broken` with no action (the others go on)."""
    actions: list[Action] = []
    desired = {p["metadata"]["uid"]: p for p in pods}
    # what belongs to no pod bound here: its containers first, then its sandbox
    for uid in sorted((listing.sandboxes | set(listing.containers)) - set(desired)):
        labels = next((s.labels for s in listing.all if s.pod_uid == uid), {})
        actions.extend(RemoveContainer(s.id or s.name) for s in listing.all
                       if s.pod_uid == uid and not s.sandbox)
        owner = {"metadata": {"namespace": labels.get(NAMESPACE, ""), "name": labels.get(POD_NAME, ""),
                              "uid": labels.get(POD_UID, uid)}}
        actions.append(RemoveSandbox(sandbox_name(owner), owner["metadata"]["uid"]))
    reads: list[Action] = []
    for uid, pod in desired.items():
        if pod["metadata"].get("deletionTimestamp"):
            actions.append(StopPod(pod) if listing.on_host(uid) else ForgetPod(pod))
            continue
        try:
            actions.extend(_plan_pod(pod, listing, soft))
        except Exception as err:
            broken(pod, err)
            continue
        if not (pod.get("status") or {}).get("podIP"):
            reads.append(FindAddress(pod))
    return actions + reads


def _plan_pod(pod: Obj, listing: Listing, soft: SoftState) -> list[Action]:
    uid, spec = pod["metadata"]["uid"], pod["spec"]
    policy = spec.get("restartPolicy", "Always")
    containers = listing.of_pod(uid)
    progress = init_progress(pod, containers)
    if progress.failed:
        return []  # an init container failed under restartPolicy Never: the pod failed, nothing runs again
    actions: list[Action] = [MountVolumes(pod, soft.volumes_due[uid])] if uid in soft.volumes_due else []
    if not listing.has_sandbox(uid):
        actions.append(MakeSandbox(pod))
    if progress.current is not None:
        return actions + _plan_init(pod, progress.current, containers.get(progress.current["name"]), soft)
    for container in spec["containers"]:
        name = container["name"]
        if (uid, name) in soft.busy and previous_status(pod, name).get("state"):
            continue  # its restart is under way
        state = containers.get(name)
        if state is None or (state.image and state.image != container["image"]):
            actions.extend(_make(pod, container, state, soft))
        elif state.state == "running":
            live = verdict_on(soft.verdicts, uid, name, "liveness", state)
            if container.get("livenessProbe") and live is not None and not live.healthy:
                actions.append(RestartUnhealthy(pod, container, live.message, state.started_at))
        elif restartable(policy, state):
            restarts = int(previous_status(pod, name).get("restartCount") or 0)
            if soft.now >= finished_at(state) + soft.backoff.delay(restarts):
                actions.append(RestartContainer(pod, container))
    return actions


def _plan_init(pod: Obj, container: Obj, state: ContainerState | None, soft: SoftState) -> list[Action]:
    """The one init container whose turn it is: run it, let it run, or after a failure (restartPolicy
    OnFailure or Always) start it again once its back-off passed, as the app containers' is."""
    if state is None:
        return _make(pod, container, state, soft)
    if state.state == "running":
        return []
    if state.image and state.image != container["image"]:
        return _make(pod, container, state, soft)  # its pod names another image now
    restarts = int(previous_status(pod, container["name"]).get("restartCount") or 0)
    if soft.now >= finished_at(state) + soft.backoff.delay(restarts):
        return [RestartContainer(pod, container)]
    return []
