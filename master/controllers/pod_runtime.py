"""Leader-only, level-triggered: what runs on each Ready host is made to match the pods bound there.

Per round, for every Ready node that may have changed (runtime/attention.py: store
changes, the agents' runtime events and probe verdicts, unsettled pods, a resync
period) at once, a thread each, bounded, the leader lists Berth's containers over SSH
and plans (runtime/plan.py). Before the first action on
any host it commits a barrier through Raft (_Fence): only a leader that still holds a
majority in its term can, so an old leader cut off from the others starts and stops
nothing. The pods' new statuses are written together, each only if it changed.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from berth.containers import sandbox_name
from berth.objects import Obj
from master.controllers.leader_loop import LeaderLoop
from master.errors import ApiError
from master.events import event_name, record_event
from master.liveness import ready_condition
from master.objects.isolation import each
from master.probes import Key, ProbeBook, Verdict
from master.runtime.attention import Attention, pod_settled
from master.runtime.driver import Driver
from master.runtime.env import EnvError, resolve_env
from master.runtime.events import status_events
from master.runtime.nodes import node_driver, node_host
from master.runtime.plan import Action, Backoff, plan_host
from master.runtime.ssh import Host, SshError, SshPool
from master.store.commands import Command, Delete, UpdateStatus
from master.store.replicated import Store
from master.store.state import WatchEvent

log = logging.getLogger(__name__)
COMPONENT = "runtime"


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


def grace_left(pod: Obj) -> int:
    """Seconds of a graceful delete's grace period still to run (0 when it is over)."""
    meta = pod["metadata"]
    try:
        since = datetime.fromisoformat(meta["deletionTimestamp"])
    except (KeyError, ValueError):
        return 0
    elapsed = (datetime.now(UTC) - since).total_seconds()
    return max(0, math.ceil(int(meta.get("deletionGracePeriodSeconds") or 0) - elapsed))


class RuntimeController(LeaderLoop):
    name = "runtime"

    def __init__(self, store: Store, pool: SshPool, now: Callable[[], str], uid: Callable[[], str],
                 backoff: Backoff | None = None, probes: ProbeBook | None = None,
                 attention: Attention | None = None, period: float = 1.0, workers: int = 16) -> None:
        super().__init__(store, period)
        self.attention = attention or Attention()
        self.attention.subscribe(self.wake)
        self.uid = uid
        self.pool = pool
        self.probes = probes or ProbeBook()
        self.now = now
        self.backoff = backoff or Backoff()
        self._workers = ThreadPoolExecutor(workers, thread_name_prefix="runtime")
        # a graceful stop or a liveness restart waits up to the pod's grace: in the background,
        # not holding up the round; one at a time per key, (uid, container) or (uid, "") for a pod
        self._background_pool = ThreadPoolExecutor(workers, thread_name_prefix="runtime-stop")
        self._busy: set[tuple[str, str]] = set()
        self._busy_lock = threading.Lock()
        store.add_listener(self._changed)

    def _changed(self, events: list[WatchEvent]) -> None:
        """A changed pod draws attention to its node (a ConfigMap or Secret a container waits
        for does not need to: a waiting pod is unsettled, so its node is looked at every round)."""
        nodes = {e.obj["metadata"]["name"] if e.kind == "Node" else e.obj["spec"].get("nodeName")
                 for e in events if e.kind in ("Pod", "Node")}
        nodes.discard(None)
        if nodes:
            self.attention.mark(nodes)  # type: ignore[arg-type] - None discarded

    def started_leading(self) -> None:
        self.probes.reset()  # verdicts of an earlier term: the agents report afresh within seconds
        self.attention.mark_all()  # what an earlier leader saw is not known here

    def stop(self) -> None:
        super().stop()
        self._workers.shutdown(wait=False, cancel_futures=True)
        self._background_pool.shutdown(wait=False, cancel_futures=True)

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
        verdicts = self.probes.snapshot()
        due = self.attention.take_due(reachable, time.monotonic())
        futures = [(node, self._workers.submit(self._sync_node, node, bound.get(node["metadata"]["name"], []),
                                               verdicts, fence))
                   for node in ready if node["metadata"]["name"] in due]
        for node, future in futures:  # one host that fails the round must not stop the others
            try:
                commands.extend(future.result())
            except Exception as err:
                self.quarantine(node, err)
        commands.extend(self._events(pods, commands))
        if commands:
            refused = [a for a in self.store.propose_all(commands) if isinstance(a, ApiError)]
            for error in refused:
                log.debug("pod status write refused: %s", error.message)

    def _events(self, pods: list[Obj], commands: list[Command]) -> list[Command]:
        """What the status changes of this round tell (Started, Killing, BackOff, Failed)."""
        by_key = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in pods}
        now, made = self.now(), []

        def tell(command: UpdateStatus) -> None:
            pod = by_key[(command.namespace, command.name)]
            for reason, message, warning in status_events(pod.get("status"), command.status):
                made.append(self._record(pod, reason, message, warning, now))

        each([c for c in commands if isinstance(c, UpdateStatus)], tell, self.quarantine)
        return made

    def _record(self, pod: Obj, reason: str, message: str, warning: bool, now: str) -> Command:
        existing = self.store.get("Event", pod["metadata"]["namespace"], event_name(pod, reason))
        return record_event(existing, pod, reason, message, warning=warning, component=COMPONENT,
                            uid=self.uid(), now=now)

    # --- one host ---------------------------------------------------------------------------
    def _sync_node(self, node: Obj, pods: list[Obj], verdicts: dict[Key, Verdict],
                   fence: _Fence) -> list[Command]:
        name = node["metadata"]["name"]
        looked = self._look(node, pods, verdicts, fence)
        commands, acted = looked or ([], True)
        settled = not acted and not commands and all(pod_settled(p) for p in pods)
        self.attention.listed(name, time.monotonic(), settled)
        return commands

    def _look(self, node: Obj, pods: list[Obj], verdicts: dict[Key, Verdict],
              fence: _Fence) -> tuple[list[Command], bool] | None:
        """List the host and act on the difference: (the status writes, whether it acted), or
        None when the host could not be looked at."""
        name = node["metadata"]["name"]
        host, driver = node_host(node), node_driver(node)
        try:
            listing = self.pool.run(host, driver.list_managed(), timeout=30)
        except SshError as err:
            log.warning("node %s: %s", name, err)
            return None
        if not listing.ok:
            log.warning("node %s: listing containers failed: %s", name, listing.stderr[:300])
            return None
        with self._busy_lock:
            busy = frozenset(self._busy)  # a pod's own key (uid, "") names no container
        unplanned: list[Command] = []  # a pod that cannot be planned: an event when that is news

        def broken(pod: Obj, err: Exception) -> None:
            if self.quarantine(pod, err):
                unplanned.append(self._record(pod, "FailedSync", f"cannot plan this pod: {err}"[:1000],
                                              True, self.now()))

        plan = plan_host(pods, driver.parse_list(listing.text()), time.time(), self.backoff,
                         host.address, self.now(), verdicts, busy, broken)
        if plan.actions and not fence.holds():
            return None
        for action in plan.actions:
            try:
                self._act(name, host, driver, action, plan.statuses)
            except SshError as err:  # the host went away mid-round: the next round looks again
                log.warning("node %s: %s", name, err)
                return None
            except Exception as err:  # this pod's action failed: its status says so, the others go on
                self._action_failed(action, plan.statuses, err)
        deleted: list[Command] = [Delete("Pod", a.pod["metadata"]["namespace"], a.pod["metadata"]["name"],
                                         a.pod["metadata"]["resourceVersion"])
                                  for a in plan.actions if a.verb == "forget" and a.pod is not None]
        by_uid = {p["metadata"]["uid"]: p for p in pods}
        for uid, status in plan.statuses.items():
            if not status.get("podIP"):  # "" while its sandbox had none: ask again
                status["podIP"] = self._pod_ip(host, driver, by_uid[uid])
        return unplanned + deleted + [
            UpdateStatus("Pod", by_uid[uid]["metadata"]["namespace"], by_uid[uid]["metadata"]["name"], status,
                         by_uid[uid]["metadata"]["resourceVersion"])
            for uid, status in plan.statuses.items()
            if status != (by_uid[uid].get("status") or {})], bool(plan.actions)

    def _act(self, node: str, host: Host, driver: Driver, action: Action, statuses: dict[str, Obj]) -> None:
        if action.verb in ("remove", "remove-pod"):
            log.info("%s: removing %s (no pod bound here owns it)", host, action.target)
            self.pool.run(host, driver.remove(action.target) if action.verb == "remove"
                          else driver.remove_sandbox(action.target))
            return
        assert action.pod is not None
        pod, uid = action.pod, action.pod["metadata"]["uid"]
        if action.verb == "forget":
            return  # nothing on the host: the round deletes the object
        if action.verb == "terminate":
            self._in_background((uid, ""), node, lambda: self._terminate(host, driver, pod))
            return
        if action.verb == "sandbox":
            self.pool.run(host, driver.remove_sandbox(pod))  # a half-made one from an interrupted round
            for argv in (driver.create_sandbox(pod), driver.start_sandbox(pod)):
                result = self.pool.run(host, argv)
                if not result.ok:
                    self._fail_all(statuses[uid], "CreatePodSandboxError", result.stderr)
                    return
            return
        assert action.container is not None
        entry = next(s for s in statuses[uid]["containerStatuses"] if s["name"] == action.container["name"])
        if action.verb == "run":
            try:
                env = resolve_env(action.container, pod["metadata"]["namespace"], self.store.get)
            except EnvError as err:
                entry["state"] = {"waiting": {"reason": "CreateContainerConfigError", "message": str(err)}}
                return
            result = self.pool.run(host, driver.run_container(pod, action.container, env),
                                   stdin=env.env_file())  # Secret values: on stdin, never in argv
            if result.ok:
                log.info("%s: started %s", host, action.target)
            else:
                self.pool.run(host, driver.remove(action.target))  # created but not started: try afresh
                entry["state"] = {"waiting": {"reason": "RunContainerError",
                                              "message": result.stderr.decode(errors="replace")[:500]}}
        elif action.verb == "restart-unhealthy":
            self._in_background((uid, action.container["name"]), node,
                                lambda: self._restart_unhealthy(host, driver, pod, action.target))
        elif action.verb == "restart":
            result = self.pool.run(host, driver.start(action.target))
            if result.ok:
                log.info("%s: restarted %s (restart %d)", host, action.target, entry["restartCount"])
            else:
                entry["restartCount"] -= 1
                entry["state"] = {"waiting": {"reason": "RunContainerError",
                                              "message": result.stderr.decode(errors="replace")[:500]}}

    def _in_background(self, key: tuple[str, str], node: str, work: Callable[[], None]) -> None:
        """Run `work` off the round, once per key at a time; when it ends the node is looked at
        again (an SSH failure is logged: the next look sees what is left to do)."""
        with self._busy_lock:
            if key in self._busy:
                return
            self._busy.add(key)

        def run() -> None:
            try:
                work()
            except SshError as err:
                log.warning("node %s: %s", node, err)
            finally:
                with self._busy_lock:
                    self._busy.discard(key)
                self.attention.mark([node])

        self._background_pool.submit(run)

    def _terminate(self, host: Host, driver: Driver, pod: Obj) -> None:
        """Stop the pod's containers within what is left of its grace, then remove them; the next
        look at the host finds nothing of it and deletes the object ("forget")."""
        grace = grace_left(pod)
        log.info("%s: stopping pod %s/%s (grace %ds left)", host, pod["metadata"]["namespace"],
                 pod["metadata"]["name"], grace)
        self.pool.run(host, driver.stop_sandbox(pod, grace), timeout=grace + 60)
        removed = self.pool.run(host, driver.remove_sandbox(pod))
        if not removed.ok:
            log.warning("%s: removing %s failed: %r", host, sandbox_name(pod), removed.stderr[:200])

    def _restart_unhealthy(self, host: Host, driver: Driver, pod: Obj, target: str) -> None:
        """Stop (up to the pod's grace) and start a container its liveness probe failed; meanwhile
        the rounds go on, leaving its status as the round that began the restart wrote it."""
        grace = int(pod["spec"].get("terminationGracePeriodSeconds", 30))
        result = self.pool.run(host, driver.restart(target, grace), timeout=grace + 60)
        if result.ok:
            log.info("%s: restarted %s (liveness probe failed)", host, target)
        else:
            log.warning("%s: restarting %s failed: %r", host, target, result.stderr[:200])

    def _action_failed(self, action: Action, statuses: dict[str, Obj], err: Exception) -> None:
        """The pod's waiting reason carries the error (its Failed event follows from the status)."""
        if action.pod is None:
            self.quarantine({"kind": "Container", "metadata": {"name": action.target}}, err)
            return
        self.quarantine(action.pod, err)
        status = statuses.get(action.pod["metadata"]["uid"])
        if status is None:
            return
        for entry in status.get("containerStatuses") or []:
            if action.container is None or entry["name"] == action.container["name"]:
                entry["state"] = {"waiting": {"reason": "RunContainerError", "message": f"{err}"[:500]}}

    @staticmethod
    def _fail_all(status: Obj, reason: str, stderr: bytes) -> None:
        for entry in status["containerStatuses"]:
            entry["state"] = {"waiting": {"reason": reason, "message": stderr.decode(errors="replace")[:500]}}

    def _pod_ip(self, host: Host, driver: Driver, pod: Obj) -> str:
        """The pod's address inside its host ("" while it has no sandbox)."""
        current = (pod.get("status") or {}).get("podIP")
        if current:
            return current
        try:
            infra = self.pool.run(host, driver.sandbox_ip(pod), timeout=15)
            if not infra.ok or not infra.text().strip():
                return ""
            address = self.pool.run(host, driver.container_ip(infra.text().strip()), timeout=15)
        except SshError:
            return ""
        return address.text().strip() if address.ok else ""

