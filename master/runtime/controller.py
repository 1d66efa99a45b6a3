"""Leader-only, level-triggered: what runs on each Ready host is made to match the pods bound there.

Shaped like kubelet's pod workers, one round at a time. For every Ready node that may
have changed (attention.py: store changes, the agents' runtime events and probe
verdicts, unsettled pods, a resync period), a thread each, bounded, the leader lists
Berth's containers over SSH, plans (planner.py, pure), runs the actions (executor.py)
and computes each pod's status from the listing and the outcomes (status.py, pure).
Before the first action that changes any host it commits a barrier through Raft
(_Fence): only a leader that still holds a majority in its term can, so an old leader
cut off from the others starts and stops nothing. The round then writes, in one batch,
the statuses that changed, the deletions of forgotten pods and the events.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from berth.objects import Obj
from master.controllers.leader_loop import LeaderLoop
from master.errors import ApiError
from master.events import event_name, record_event
from master.objects.conditions import ready_condition
from master.objects.isolation import each
from master.objects.tolerations import RETURNING, lifecycle_keys, with_lifecycle_taints
from master.reports.probes import ProbeBook
from master.runtime.actions import ForgetPod, MountVolumes, Outcome, SweepVolumes, pod_uid
from master.runtime.attention import Attention, pod_settled
from master.runtime.events import status_events
from master.runtime.executor import LISTING, Background, Executor, grace_left, outcome_events
from master.runtime.nodes import node_driver, node_host
from master.runtime.planner import Backoff, Listing, SoftState, plan_host
from master.runtime.pulls import PullRecord
from master.runtime.ssh import SshError, SshPool
from master.runtime.status import pod_status
from master.runtime.volumes import has_volumes, named_objects, volume_digest
from master.store.commands import Command, Delete, Replace, UpdateStatus
from master.store.replicated import Store
from master.store.state import WatchEvent

log = logging.getLogger(__name__)
COMPONENT = "runtime"
SWEEP_EVERY = 60.0  # seconds between two sweeps of a host's pod directories


class _Fence:
    """One Raft barrier per round, committed when a host first needs acting on. Only a leader
    that still holds a majority in its term can commit it; an old leader cut off from the
    others (PySyncObj lets it believe it leads for a while) fails it and acts on no host.
    A round with nothing to do commits nothing."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._held: bool | None = None

    def holds(self) -> bool:
        with self._lock:
            if self._held is None:
                try:
                    self._store.barrier()
                    self._held = True
                except ApiError as err:
                    log.warning("not acting on hosts: %s", err.message)
                    self._held = False
            return self._held


def _cleaned(node: Obj, pods: list[Obj], listing: Listing) -> list[Command]:
    """A host back from being lost is `returning` (NoSchedule) until a look finds on it nothing but
    containers of pods bound to it: the copies of pods moved elsewhere meanwhile are gone before
    it takes new work (a look that removes them is followed by one that finds none)."""
    if RETURNING not in lifecycle_keys(node):
        return []
    mine = {p["metadata"]["uid"] for p in pods}
    if any(state.pod_uid not in mine for state in listing.all):
        return []
    spec = with_lifecycle_taints(node["spec"], tuple(k for k in lifecycle_keys(node) if k != RETURNING))
    return [Replace({**node, "spec": spec}, node["metadata"]["resourceVersion"])]


@dataclass
class _Look:
    """What one look at a host gave: the writes, and whether anything on it was changed."""

    commands: list[Command]
    acted: bool


class RuntimeController(LeaderLoop):
    name = "runtime"

    def __init__(self, store: Store, pool: SshPool, now: Callable[[], str], uid: Callable[[], str],
                 backoff: Backoff | None = None, probes: ProbeBook | None = None,
                 attention: Attention | None = None, period: float = 1.0, workers: int = 16) -> None:
        super().__init__(store, period)
        self.attention = attention or Attention()
        self.attention.subscribe(self.wake)
        self.uid = uid
        self.probes = probes or ProbeBook()
        self.now = now
        self.backoff = backoff or Backoff()
        self._workers = ThreadPoolExecutor(workers, thread_name_prefix="runtime")
        # graceful stops and liveness restarts wait up to a pod's grace: not holding up the round
        self.background = Background(workers, lambda node: self.attention.mark([node]))
        self.executor = Executor(pool, store.get, self.background,
                                 lambda verb, seconds: self.observed.ssh_command(verb, seconds))
        self.pool = pool
        self._trouble: dict[str, str] = {}  # node -> the host trouble last told in an event
        # background work done, by pod uid, until a look at its host puts it in the pod's status
        self._finished: dict[str, list[Outcome]] = {}
        self.pulls = PullRecord()  # containers whose image could not be had, for their back-off
        # what each pod's volumes held when last set up on its host (volumes.volume_digest), by uid
        self._mounted: dict[str, str] = {}
        # (kind, namespace, name) of each ConfigMap and Secret a pod's volume holds -> its nodes
        self._held_by: dict[tuple[str, str, str], set[str]] = {}
        self._swept_at: dict[str, float] = {}  # node -> when its pods' directories were last swept
        store.add_listener(self._changed)

    def _changed(self, events: list[WatchEvent]) -> None:
        """A changed pod draws attention to its node (a ConfigMap or Secret a container waits
        for does not need to: a waiting pod is unsettled, so its node is looked at every round)."""
        nodes = {e.obj["metadata"]["name"] if e.kind == "Node" else e.obj["spec"].get("nodeName")
                 for e in events if e.kind in ("Pod", "Node")}
        held_by = self._held_by  # a ConfigMap or Secret a volume holds: its pods' hosts write it anew
        for event in events:
            if event.kind in ("ConfigMap", "Secret"):
                meta = event.obj["metadata"]
                nodes.update(held_by.get((event.kind, meta.get("namespace") or "", meta["name"]), ()))
        nodes.discard(None)
        if nodes:
            self.attention.mark(nodes)  # type: ignore[arg-type] - None discarded

    def queue_depth(self) -> int:
        """Hosts marked for a look at the next round (attention.py), beside the resync's."""
        return self.attention.marked() if self.leading else 0

    def stopped_leading(self) -> None:
        """Another master acts on the hosts now: this one's background work stops here."""
        self.background.cancel()
        self.pulls.clear()
        self._mounted.clear()
        self._swept_at.clear()

    def stop(self) -> None:
        super().stop()
        self._workers.shutdown(wait=False, cancel_futures=True)
        self.background.shutdown()

    def reconcile(self) -> None:
        fence = _Fence(self.store)
        (nodes, pods), _ = self.store.read(lambda s: (s.list("Node"), s.list("Pod")))
        bound: dict[str, list[Obj]] = {}
        for pod in pods:
            node = pod["spec"].get("nodeName")
            if node:
                bound.setdefault(node, []).append(pod)
        ready = [n for n, is_ready in each(nodes, lambda n: (n, ready_condition(n) is True), self.quarantine)
                 if is_ready]
        reachable = {n["metadata"]["name"] for n in ready}
        # pods being deleted on a host the runtime cannot reach: gone once their grace is over
        commands: list[Command] = [
            Delete("Pod", p["metadata"]["namespace"], p["metadata"]["name"], p["metadata"]["resourceVersion"])
            for p in pods if p["metadata"].get("deletionTimestamp")
            and p["spec"].get("nodeName") not in reachable and grace_left(p) == 0]
        commands.extend(self._background_done(self.background.drain(), pods))
        self.pulls.keep({p["metadata"]["uid"] for p in pods})
        soft = SoftState(time.time(), self.backoff, self.probes.snapshot(), self.background.busy(),
                         self.pulls.snapshot(), self._volumes_due(pods, reachable))
        due = self.attention.take_due(reachable, time.monotonic())
        futures = []
        for node in ready:
            if node["metadata"]["name"] not in due:
                continue
            mine = bound.get(node["metadata"]["name"], [])
            finished = [o for p in mine for o in self._finished.pop(p["metadata"]["uid"], [])]
            futures.append((node, self._workers.submit(self._sync_node, node, mine, soft, fence, finished)))
        for node, future in futures:  # one host that fails the round must not stop the others
            try:
                commands.extend(future.result())
            except Exception as err:
                self.quarantine(node, err)
        commands.extend(self._status_events(pods, commands))
        if commands:
            refused = [a for a in self.store.propose_all(commands) if isinstance(a, ApiError)]
            for error in refused:
                log.debug("pod status write refused: %s", error.message)

    def _volumes_due(self, pods: list[Obj], reachable: set[str]) -> dict[str, str]:
        """The pods whose volumes their host must be given (again), with the digest of what they
        hold now. What was set up is forgotten for a pod gone or on a host not Ready (a host that
        comes back may have lost its tmpfs mounts: they are made again)."""
        on_hosts = [p for p in pods if p["spec"].get("nodeName") in reachable and has_volumes(p)
                    and not p["metadata"].get("deletionTimestamp")]
        wanted = dict(each(on_hosts, lambda p: (p["metadata"]["uid"], volume_digest(p, self.store.stored)),
                           self.quarantine))  # versions alone: no Secret opened
        for uid in [u for u in self._mounted if u not in wanted]:
            del self._mounted[uid]
        held_by: dict[tuple[str, str, str], set[str]] = {}
        for pod in on_hosts:
            node, namespace = pod["spec"]["nodeName"], pod["metadata"]["namespace"]
            for kind, name in named_objects(pod):
                held_by.setdefault((kind, namespace, name), set()).add(node)
        self._held_by = held_by
        return {uid: digest for uid, digest in wanted.items() if self._mounted.get(uid) != digest}

    # --- one host ---------------------------------------------------------------------------
    def _sync_node(self, node: Obj, pods: list[Obj], soft: SoftState, fence: _Fence,
                   finished: list[Outcome]) -> list[Command]:
        """`finished`: background work on these pods done since the host's last look."""
        look = self._look(node, pods, soft, fence, finished)
        commands, acted = (look.commands, look.acted) if look is not None else ([], True)
        settled = not acted and not commands and all(pod_settled(p) for p in pods)
        self.attention.listed(node["metadata"]["name"], time.monotonic(), settled)
        return commands

    def _trouble_with(self, node: Obj, reason: str, message: str) -> _Look:
        """The host could not be looked at or acted on: a Warning on its Node when that is news
        (not every round while it lasts); the next round looks again."""
        name = node["metadata"]["name"]
        log.warning("node %s: %s: %s", name, reason, message)
        if self._trouble.get(name) == reason:
            return _Look([], acted=True)
        self._trouble[name] = reason
        return _Look([self._record(node, reason, message[:1000], True)], acted=True)

    def _look(self, node: Obj, pods: list[Obj], soft: SoftState, fence: _Fence,
              finished: list[Outcome]) -> _Look | None:
        """List the host, plan, act, and say what each pod's status is now; None when this
        master may not act (the fence failed), or the host's trouble (the next round looks again)."""
        name = node["metadata"]["name"]
        host, driver = node_host(node), node_driver(node)
        started = time.monotonic()
        try:
            listed = self.pool.run(host, driver.list_managed(), timeout=30)
        except SshError as err:
            return self._trouble_with(node, "HostUnreachable", f"the runtime cannot reach the host: {err}")
        finally:
            self.observed.ssh_command(LISTING, time.monotonic() - started)
        if not listed.ok:
            return self._trouble_with(node, "FailedListContainers", f"listing Berth's containers failed: "
                                      f"{listed.stderr.decode(errors='replace').strip()[:500]}")
        try:
            listing = Listing.of(driver.parse_list(listed.text()))
        except (ValueError, TypeError, AttributeError) as err:
            return self._trouble_with(node, "FailedListContainers",
                                      f"the engine's listing is unreadable: {err}")
        self._trouble.pop(name, None)
        unplanned: list[Command] = []  # a pod that cannot be planned: an event when that is news
        skipped: set[str] = set()

        def broken(pod: Obj, err: Exception) -> None:
            skipped.add(pod["metadata"]["uid"])
            if self.quarantine(pod, err):
                unplanned.append(self._record(pod, "FailedSync", f"cannot plan this pod: {err}"[:1000], True))

        actions = plan_host(pods, listing, soft, broken)
        if time.monotonic() - self._swept_at.get(name, -SWEEP_EVERY) >= SWEEP_EVERY:
            self._swept_at[name] = time.monotonic()
            actions.append(SweepVolumes(frozenset(p["metadata"]["uid"] for p in pods)))
        acting = any(a.changes_host for a in actions)
        if acting and not fence.holds():
            return None
        try:
            outcomes = self.executor.execute(name, host, driver, actions, self.quarantine)
        except SshError as err:  # the host went away mid-round
            return self._trouble_with(node, "HostUnreachable", f"the runtime lost the host mid-round: {err}")
        self.pulls.record(outcomes, time.time())  # after the attempts: the back-off counts from their end
        for outcome in outcomes:
            if isinstance(outcome.action, MountVolumes) and outcome.ok:
                self._mounted[outcome.action.pod["metadata"]["uid"]] = outcome.action.digest
        planned = [p for p in pods if p["metadata"]["uid"] not in skipped]
        writes = unplanned + self._writes(node, planned, listing, finished + outcomes, soft)
        return _Look(writes + _cleaned(node, pods, listing), acting)

    def _writes(self, node: Obj, pods: list[Obj], listing: Listing, outcomes: list[Outcome],
                soft: SoftState) -> list[Command]:
        """The one place pods' statuses are written: each pod planned this round whose status
        changed; deleted pods with nothing left, forgotten; failures no status shows, events."""
        by_pod: dict[str, list[Outcome]] = {}
        for outcome in outcomes:
            by_pod.setdefault(pod_uid(outcome.action) or "", []).append(outcome)
        commands: list[Command] = []
        host_ip, timestamp = node["spec"]["address"], self.now()
        for pod in pods:
            meta = pod["metadata"]
            mine = by_pod.get(meta["uid"], [])
            if any(isinstance(o.action, ForgetPod) for o in mine):
                commands.append(Delete("Pod", meta["namespace"], meta["name"], meta["resourceVersion"]))
                continue
            if meta.get("deletionTimestamp"):
                continue
            try:
                status = pod_status(pod, listing, mine, soft, host_ip, timestamp)
            except Exception as err:
                self.quarantine(pod, err)
                continue
            if status != (pod.get("status") or {}):
                commands.append(UpdateStatus("Pod", meta["namespace"], meta["name"], status,
                                             meta["resourceVersion"]))
        for outcome in outcomes:  # what no status shows
            pod = getattr(outcome.action, "pod", None)
            if pod is None or outcome.background:  # an orphan's (on the node), or work begun now
                commands.extend(self._record(pod or node, reason, message, warning)
                                for reason, message, warning in outcome_events(outcome))
        return commands

    def _background_done(self, finished: list[Outcome], pods: list[Obj]) -> list[Command]:
        """Background work done: a failure is an event on its pod now; a liveness restart done is
        kept for its pod's status, which the next look at its host writes (restart counted)."""
        made: list[Command] = []
        for outcome in finished:
            pod = getattr(outcome.action, "pod", None)
            if pod is None:
                continue
            made.extend(self._record(pod, reason, message, warning)
                        for reason, message, warning in outcome_events(outcome))
            self._finished.setdefault(pod["metadata"]["uid"], []).append(outcome)
        alive = {p["metadata"]["uid"] for p in pods}
        for uid in [u for u in self._finished if u not in alive]:
            del self._finished[uid]  # its pod is gone
        return made

    def _status_events(self, pods: list[Obj], commands: list[Command]) -> list[Command]:
        """What the status changes of this round tell (Started, Killing, BackOff, Failed)."""
        by_key = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in pods}
        made = []

        def tell(command: UpdateStatus) -> None:
            pod = by_key[(command.namespace, command.name)]
            for reason, message, warning in status_events(pod.get("status"), command.status):
                made.append(self._record(pod, reason, message, warning))

        each([c for c in commands if isinstance(c, UpdateStatus)], tell, self.quarantine)
        return made

    def _record(self, involved: Obj, reason: str, message: str, warning: bool) -> Command:
        namespace = involved["metadata"].get("namespace") or "default"
        existing = self.store.get("Event", namespace, event_name(involved, reason))
        return record_event(existing, involved, reason, message, warning=warning, component=COMPONENT,
                            uid=self.uid(), now=self.now())
