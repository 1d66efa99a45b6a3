"""What the agents report, kept on the leader as soft state, and how each report lands there.

Heartbeats (usage and liveness), probe verdicts and runtime events never become Raft
writes: the leader keeps the latest of each in memory, and a new leader starts them
afresh (`new_term`), as Nomad and Kubernetes do with heartbeats. A report reaches the
leader either directly (an agent talking to it) or relayed by a follower (relay.py);
both land through `ReportBooks`, so the two paths cannot differ.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from master.autoscaling.metrics import PodSample
from master.reports.heartbeats import HeartbeatBook
from master.reports.host_checks import HostChecks
from master.reports.pod_metrics import MetricsBook
from master.reports.pod_revisions import PodRevisions
from master.reports.probes import ProbeBook, Verdict
from master.store.replicated import Store

ProbeReport = tuple[str, str, str, Verdict]  # (pod uid, container, probe, verdict)


class HostMarks(Protocol):
    """Which hosts the runtime looks at next (master/runtime/attention.py): reports mark them."""

    def mark(self, nodes: Iterable[str]) -> None: ...

    def mark_all(self) -> None: ...


class ReportSink(Protocol):
    """Where a master puts an agent's report: the leader's books, or a follower's relay."""

    def heartbeat(self, node: str, usage: dict[str, Any], at: float | None = None) -> None: ...

    def probe_results(self, node: str, reports: list[ProbeReport]) -> list[ProbeReport]:
        """Keeps the verdicts on pods bound to `node` (and returns them): an agent cannot restart
        another node's pods."""
        ...

    def runtime_events(self, node: str) -> None: ...

    def pod_metrics(self, node: str, samples: list[PodSample]) -> list[PodSample]:
        """Keeps the samples of pods bound to `node` (and returns them)."""
        ...


@dataclass
class ReportBooks:
    attention: HostMarks  # the runtime's: a report that may change what runs on a host marks it
    store: Store  # to know which pods are bound to a node
    heartbeats: HeartbeatBook = field(default_factory=HeartbeatBook)
    probes: ProbeBook = field(default_factory=ProbeBook)
    pod_revisions: PodRevisions = field(default_factory=PodRevisions)  # answered with each heartbeat
    host_checks: HostChecks = field(default_factory=HostChecks)  # what SSH said of NotReady hosts
    metrics: MetricsBook = field(default_factory=MetricsBook)  # the pods' usage, read by the autoscaler

    def new_term(self, nodes: list[str]) -> None:
        """This master became the leader: what an earlier leader heard is not known here, so every
        node gets a full grace from now, every host is looked at, and the agents' verdicts are
        awaited afresh (they report within seconds)."""
        self.heartbeats.reset(nodes, time.monotonic())
        self.probes.reset()
        self.host_checks.reset()
        self.metrics.reset()
        self.attention.mark_all()

    # --- on the leader: where each report lands (a ReportSink) --------------------------------
    def heartbeat(self, node: str, usage: dict[str, Any], at: float | None = None) -> None:
        self.heartbeats.record(node, usage, at)

    def probe_results(self, node: str, reports: list[ProbeReport]) -> list[ProbeReport]:
        """A changed report draws the runtime to the host."""
        mine = bound_to(self.store, node, reports)
        verdicts = {(uid, container, probe): verdict for uid, container, probe, verdict in mine}
        if self.probes.record(node, verdicts):
            self.attention.mark([node])
        return mine

    def runtime_events(self, node: str) -> None:
        """Something changed among Berth's containers there: the runtime lists the host next round."""
        self.attention.mark([node])

    def pod_metrics(self, node: str, samples: list[PodSample]) -> list[PodSample]:
        """The node's batch of its pods' metrics, kept for the pods bound to it (and returned): an
        agent cannot speak for another node's pods, whose workloads the autoscaler would resize."""
        bound = bound_uids(self.store, node) if samples else set()
        mine = [sample for sample in samples if sample.uid in bound]
        self.metrics.record(node, mine)
        return mine


def bound_uids(store: Store, node: str) -> set[str]:
    pods, _ = store.read(lambda state: state.select("Pod", node=node))
    return {p["metadata"]["uid"] for p in pods}


def bound_to(store: Store, node: str, reports: list[ProbeReport]) -> list[ProbeReport]:
    if not reports:
        return []
    bound = bound_uids(store, node)
    return [r for r in reports if r[0] in bound]


def known_nodes(store: Store, names: set[str]) -> set[str]:
    found, _ = store.read(lambda state: {n for n in names if state.get("Node", "", n)})
    return found
