"""Leader-only: a silent node is tried over SSH before its pods are moved, and its agent restarted.

Heartbeats tell only that an agent went silent, not why. Every `period` this loop tries each
silent host (Ready Unknown; not one whose agent itself says its engine fails) over a pool of its
own (short timeouts: a gone host costs seconds, not a minute) and lists Berth's containers there;
`runtime/host_check.judge` turns that into a verdict, kept in the leader's soft state
(reports/host_checks.py) for the taint evictor:
- the host answers and its pods run: the agent failed, not the host. The pods stay, and the
  agent is restarted with `agent_restart_command` (systemd on real hosts, the lab's supervisor),
  once the node has been silent RESTART_AFTER seconds and then at most every RESTART_EVERY, with
  an AgentRestarted event on the Node. The wait lets an agent restarting on its own come back: one
  restarted by a rolling upgrade outlasts the 3 s grace, and restarting it again at once killed the
  new agent as it started (every agent of upgrade.yml started twice, 3-4 s apart);
- the host answers but its engine does not: nothing is confirmed, the tolerations run;
- SSH fails: the host is gone, and pods with a bounded toleration go at once.
The verdict is also the Node's `HostCheck` condition (written when it changes), which `berth
describe node` shows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from berth.objects import Obj
from master.controllers.leader_loop import LeaderLoop
from master.errors import ApiError
from master.events import event_name, record_event
from master.objects.conditions import condition, ready_condition, ready_status, with_condition
from master.objects.isolation import each
from master.reports.host_checks import (
    AGENT_NOT_HEARTBEATING,
    HOST_UNREACHABLE,
    RUNTIME_FAILING,
    HostChecks,
    HostVerdict,
)
from master.runtime.host_check import judge
from master.runtime.nodes import node_driver, node_host
from master.runtime.planner import Listing
from master.runtime.ssh import SshError, SshPool
from master.store.commands import Command, UpdateStatus
from master.store.replicated import Store

log = logging.getLogger(__name__)
COMPONENT = "node-check"
RESTART_EVERY = 20.0  # seconds between two restarts of one host's agent
RESTART_AFTER = 10.0  # seconds a node is seen silent before its agent is restarted
CONDITION = "HostCheck"


def host_condition(verdict: HostVerdict | None, now: str) -> Obj:
    if verdict is None:
        return {"type": CONDITION, "status": "True", "reason": "AgentHeartbeating",
                "message": "the agent heartbeats", "lastTransitionTime": now}
    return {"type": CONDITION, "status": "False" if verdict.kind == HOST_UNREACHABLE else "True",
            "reason": verdict.kind, "message": verdict.message[:1000], "lastTransitionTime": now}


def restart_due(now: float, silent_since: float, last_restart: float | None) -> bool:
    """Whether a silent node's agent is restarted now (monotonic seconds)."""
    if now - silent_since < RESTART_AFTER:
        return False
    return last_restart is None or now - last_restart >= RESTART_EVERY


class NodeCheck(LeaderLoop):
    name = "node-check"

    def __init__(self, store: Store, pool: SshPool, checks: HostChecks, now: Callable[[], str],
                 uid: Callable[[], str], restart_command: list[str], period: float = 1.0,
                 on_verdict: Callable[[], None] = lambda: None) -> None:
        super().__init__(store, period)
        self.pool = pool
        self.checks = checks
        self.now = now
        self.uid = uid
        self.restart_command = list(restart_command)
        self.on_verdict = on_verdict
        self._restarted: dict[str, float] = {}  # node -> when its agent was last restarted
        self._silent_since: dict[str, float] = {}  # node -> when this leader first saw it silent
        self._workers = ThreadPoolExecutor(8, thread_name_prefix="node-check")

    def started_leading(self) -> None:
        self.checks.reset()
        self._restarted.clear()
        self._silent_since.clear()

    def stop(self) -> None:
        super().stop()
        self._workers.shutdown(wait=False, cancel_futures=True)

    def reconcile(self) -> None:
        nodes, _ = self.store.read(lambda s: s.list("Node"))
        # silent nodes only: one whose agent says its engine fails (Ready False) is heard, not lost
        lost = [n for n, status in each(nodes, lambda n: (n, ready_status(n)), self.quarantine)
                if status == "Unknown"]
        for node in nodes:
            if ready_status(node) != "Unknown":
                self.checks.forget(node["metadata"]["name"])
                self._silent_since.pop(node["metadata"]["name"], None)
        names = [n["metadata"]["name"] for n in lost]
        for name in names:
            self._silent_since.setdefault(name, time.monotonic())
        pods, _ = self.store.read(lambda s: {name: s.select("Pod", node=name) for name in names})
        futures = [(node, self._workers.submit(self._check, node, pods[node["metadata"]["name"]]))
                   for node in lost]
        commands: list[Command] = []
        for node, future in futures:
            try:
                commands.extend(future.result())
            except Exception as err:
                self.quarantine(node, err)
        commands.extend(self._healed(n) for n in nodes if self._needs_heal(n))
        for node in nodes:
            commands.extend(self._fence_told(node))
        if lost:
            self.on_verdict()
        if commands:
            for answer in self.store.propose_all(commands):
                if isinstance(answer, ApiError):
                    log.debug("node check write refused: %s", answer.message)

    def _check(self, node: Obj, pods: list[Obj]) -> list[Command]:
        name = node["metadata"]["name"]
        host, driver = node_host(node), node_driver(node)
        try:
            listed = self.pool.run(host, driver.list_managed(), timeout=5)
        except SshError as err:
            verdict = judge(pods, None, str(err), reachable=False)
        else:
            if listed.ok:
                try:
                    verdict = judge(pods, Listing.of(driver.parse_list(listed.text())), None, reachable=True)
                except (ValueError, TypeError, AttributeError) as err:
                    verdict = judge(pods, None, f"unreadable listing: {err}", reachable=True)
            else:
                error = listed.stderr.decode(errors="replace").strip()[:300]
                verdict = judge(pods, None, error, reachable=True)
        self.checks.record(name, verdict)
        commands: list[Command] = []
        if verdict.kind != HOST_UNREACHABLE:
            commands.extend(self._restart_agent(node, host))
        now = self.now()
        previous = condition(node, CONDITION)
        if previous is None or previous.get("reason") != verdict.kind:
            log.info("node %s: %s", name, verdict.message)
            status = with_condition(node.get("status") or {}, host_condition(verdict, now))
            commands.append(UpdateStatus("Node", "", name, status, node["metadata"]["resourceVersion"]))
        return commands

    def _restart_agent(self, node: Obj, host: object) -> list[Command]:
        name, now = node["metadata"]["name"], time.monotonic()
        if not restart_due(now, self._silent_since.get(name, now), self._restarted.get(name)):
            return []
        self._restarted[name] = now
        try:
            argv = [arg.replace("{node}", name) for arg in self.restart_command]  # a DNS label, one argv item
            done = self.pool.run(host, argv, timeout=15)  # type: ignore[arg-type] - a Host
            outcome = "restarted its agent" if done.ok else \
                f"could not restart its agent: {done.stderr.decode(errors='replace').strip()[:300]}"
        except SshError as err:
            outcome = f"could not restart its agent: {err}"
        message = (f"node {name} stopped heartbeating but answers over SSH: {outcome} "
                   f"({self.restart_command[0]} ...)")
        log.warning(message)
        existing = self.store.get("Event", "default", event_name(node, "AgentRestarted"))
        return [record_event(existing, node, "AgentRestarted", message, warning=True, component=COMPONENT,
                             uid=self.uid(), now=self.now())]

    def _fence_told(self, node: Obj) -> list[Command]:
        """An agent that stopped its host's containers while cut off says so, once back, with its
        Node's SelfFenced condition (agent/fencing.py): told here as an event, then marked told."""
        fenced = condition(node, "SelfFenced")
        if fenced is None or fenced.get("status") != "True":
            return []
        message = str(fenced.get("message") or "the host stopped its containers")
        existing = self.store.get("Event", "default", event_name(node, "SelfFenced", message))
        told = {**fenced, "status": "False", "reason": "Reported"}
        status = with_condition(node.get("status") or {}, told)
        name, read_at = node["metadata"]["name"], node["metadata"]["resourceVersion"]
        return [UpdateStatus("Node", "", name, status, read_at),
                record_event(existing, node, "SelfFenced", message, warning=True, component=COMPONENT,
                             uid=self.uid(), now=self.now(), distinct=message)]

    @staticmethod
    def _needs_heal(node: Obj) -> bool:
        """A node Ready again whose HostCheck still tells of the trouble it had."""
        found = condition(node, CONDITION)
        return ready_condition(node) is True and found is not None and found.get("reason") in (
            HOST_UNREACHABLE, AGENT_NOT_HEARTBEATING, RUNTIME_FAILING)

    def _healed(self, node: Obj) -> Command:
        status = with_condition(node.get("status") or {}, host_condition(None, self.now()))
        return UpdateStatus("Node", "", node["metadata"]["name"], status, node["metadata"]["resourceVersion"])
