"""Leader-only: each Node gets its pod subnet (`spec.podCIDR`) from `cluster_cidr`, as Kubernetes'
node IPAM controller gives them from `--cluster-cidr`.

Woken when a Node is added (or one is deleted: its subnet may be what a waiting node needs),
and every `period` seconds. Each round reads every Node, and gives each one without a subnet
the lowest free one (the pure choice is `master/network/ipam.py`), written with a Replace at
the resourceVersion read: a node changed meanwhile (its taints, an admin's edit) is a
conflict, and another round looks again at once. Only this loop sets a podCIDR (the API refuses
anyone else, the store refuses a change), and it is fenced: a new leader first commits a
barrier, so it never gives out a subnet the last leader gave in a write not yet applied here.
When the range is used up a node gets a `CIDRNotAvailable` Warning event, once a term, until
a subnet is freed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from berth.objects import Obj
from master.controllers.leader_loop import LeaderLoop
from master.errors import ApiError
from master.events import event_name, record_event
from master.network.ipam import CidrExhausted, assignments, cluster_network
from master.store.commands import Command, Replace
from master.store.replicated import Store
from master.store.state import ADDED, DELETED, WatchEvent

log = logging.getLogger(__name__)
COMPONENT = "node-ipam"
NOT_AVAILABLE = "CIDRNotAvailable"  # the reason Kubernetes' nodeipam gives


class NodeIpam(LeaderLoop):
    name = "node-ipam"
    fenced = True  # it gives out subnets from what it reads

    def __init__(self, store: Store, cluster_cidr: str, mask_size: int, now: Callable[[], str],
                 uid: Callable[[], str], period: float = 5.0) -> None:
        cluster_network(cluster_cidr, mask_size)  # raises ValueError: refused now, not every round
        super().__init__(store, period)
        self.cluster_cidr = cluster_cidr
        self.mask_size = mask_size
        self.now = now
        self.uid = uid
        self._told: set[str] = set()  # uids of the nodes told this term that no subnet is left
        store.add_listener(self._changed)

    def _changed(self, events: list[WatchEvent]) -> None:
        if any(e.kind == "Node" and e.type in (ADDED, DELETED) for e in events):
            self.wake()

    def started_leading(self) -> None:
        self._told.clear()

    def reconcile(self) -> None:
        listed, _ = self.store.read(lambda s: s.list("Node"))
        nodes = [n for n in listed if self._readable(n)]
        planned = assignments(nodes, self.cluster_cidr, self.mask_size)
        waiting = {n["metadata"].get("uid") for n, _ in planned}
        self._told &= waiting  # a node given a subnet, or gone, is told again if it waits again
        commands: list[Command] = []
        told: list[str | None] = []  # per command: the uid of the node its event tells, or None
        for node, outcome in planned:
            if isinstance(outcome, CidrExhausted):
                event = self._exhausted(node, outcome)
                if event is not None:
                    commands.append(event)
                    told.append(node["metadata"].get("uid"))
                continue
            spec = {**(node.get("spec") or {}), "podCIDR": outcome}
            commands.append(Replace({**node, "spec": spec}, node["metadata"]["resourceVersion"]))
            told.append(None)
        if not commands:
            return
        for command, uid, answer in zip(commands, told, self.store.propose_all(commands), strict=True):
            if isinstance(answer, ApiError):  # a conflict or no quorum: the next round looks again
                log.debug("node-ipam write refused: %s", answer.message)
                if answer.status == 409:  # the node changed since read (its taints): at once, not in 5 s
                    self.wake()
            elif uid is not None:
                self._told.add(uid)
            elif isinstance(command, Replace):
                given = command.obj
                log.info("node %s: podCIDR %s", given["metadata"]["name"], given["spec"]["podCIDR"])

    def _readable(self, node: Obj) -> bool:
        """A node whose spec is not a mapping (an old journal's garbage) is left out, told once."""
        if isinstance(node.get("spec"), dict):
            return True
        self.quarantine(node, TypeError(f"spec is {type(node.get('spec')).__name__}, not a mapping"))
        return False

    def _exhausted(self, node: Obj, err: CidrExhausted) -> Command | None:
        """The Warning event, and a log line, once a term for each node left without a subnet."""
        if node["metadata"].get("uid") in self._told:
            return None
        name = node["metadata"]["name"]
        message = f"node {name} has no pod subnet: {err}; delete a node or widen cluster_cidr"
        log.warning(message)
        existing = self.store.get("Event", "default", event_name(node, NOT_AVAILABLE))
        return record_event(existing, node, NOT_AVAILABLE, message, warning=True, component=COMPONENT,
                            uid=self.uid(), now=self.now())
