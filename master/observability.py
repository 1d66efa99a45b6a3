"""One master's Prometheus metrics: the families, their registry, and what is read at scrape time.

Each master has its own `CollectorRegistry` (never prometheus_client's global one), so several
masters in one process, as the tests run them, never mix their counts. What happens (requests,
Raft applies, scheduling attempts, controller rounds, heartbeats, the runtime's SSH commands) is
counted as it happens, by the part that does it, through a `MasterMetrics` it was given; what is
(the Raft indexes, the nodes and pods by state, the loops' pending work) is read when scraped
(`ClusterCollector`), from this master's own replica, so every master answers for itself and a
scrape costs one read of the store's two kinds.

Label values come from fixed sets (verbs, kinds, action types, controller names), never from a
request's text: whoever can reach the API must not be able to grow a registry. Imports nothing of
the master above the objects' pure helpers, so the store and the loops may use it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from berth.objects import Obj
from master.objects.conditions import ready_status

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # the text format generate_latest writes (Prometheus 2 and 3 read it)
# Kubernetes' apiserver buckets, shortened: a request is milliseconds, a write one Raft round or more
API_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
RAFT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ROUND_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SSH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
SCHEDULE_RESULTS = ("scheduled", "unschedulable", "error")  # kube-scheduler's schedule_attempts_total
HEARTBEAT_SOURCES = ("agent", "relay")  # posted here by an agent; landed here from a follower's batch
NODE_CONDITIONS = ("Ready", "NotReady", "Unknown")
POD_PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")


def node_conditions(nodes: Iterable[Obj]) -> dict[str, int]:
    """Nodes by their Ready condition, as `kubectl get nodes` shows it: True is Ready, False is
    NotReady, and Unknown or none yet (a node never heard from) is Unknown."""
    counts = dict.fromkeys(NODE_CONDITIONS, 0)
    for node in nodes:
        status = ready_status(node)
        counts["Ready" if status == "True" else "NotReady" if status == "False" else "Unknown"] += 1
    return counts


def pod_phases(pods: Iterable[Obj]) -> dict[str, int]:
    """Pods by `status.phase`; a pod without one yet, or with a phase no Kubernetes names, is
    Pending or Unknown, so the label's values stay Kubernetes' five."""
    counts = dict.fromkeys(POD_PHASES, 0)
    for pod in pods:
        counts[_phase(pod)] += 1
    return counts


def _phase(pod: Obj) -> str:
    status = pod.get("status")
    phase = status.get("phase") if isinstance(status, dict) else None
    if phase is None:
        return "Pending"
    return phase if phase in POD_PHASES else "Unknown"


@dataclass(frozen=True)
class RequestLabels:
    """A request as the API metrics count it: each a value from a fixed set (api/prometheus.py)."""

    verb: str
    resource: str
    subresource: str
    code: str


class MasterMetrics:
    """The families a master counts as things happen, in a registry of its own."""

    def __init__(self) -> None:
        registry = self.registry = CollectorRegistry()
        self.api_requests = Counter(
            "berth_api_requests_total", "API requests by Kubernetes' verb, resource, subresource and HTTP "
            "code (as kube-apiserver's apiserver_request_total)", ["verb", "resource", "subresource", "code"],
            registry=registry)
        self.api_duration = Histogram(
            "berth_api_request_duration_seconds", "Time from a request's start to its answer's last byte; "
            "streams (watch, logs, a session's output) are left out: their length is the client's",
            ["verb", "resource", "subresource"], buckets=API_BUCKETS, registry=registry)
        self.raft_apply = Histogram(
            "berth_raft_apply_duration_seconds", "Time from a write's proposal on this master to its "
            "apply here (group commit and the Raft round)", buckets=RAFT_BUCKETS, registry=registry)
        self.schedule_attempts = Counter(
            "berth_scheduler_schedule_attempts_total", "Pods the scheduler tried to place, by result "
            "(scheduled: its binding committed; unschedulable: it fits no node; error: the write or "
            "the round failed)", ["result"], registry=registry)
        self.scheduling_duration = Histogram(
            "berth_scheduler_scheduling_duration_seconds", "One scheduling round that had pods to place: "
            "snapshot, placement and the commit of its bindings", buckets=ROUND_BUCKETS, registry=registry)
        self.controller_rounds = Histogram(
            "berth_controller_round_duration_seconds", "One round of a leader loop", ["controller"],
            buckets=ROUND_BUCKETS, registry=registry)
        self.heartbeats_received = Counter(
            "berth_heartbeats_received_total", "Agents' heartbeats taken by this master: posted by an "
            "agent (source agent) or landed from a follower's relayed batch (source relay)", ["source"],
            registry=registry)
        self.heartbeats_relayed = Counter(
            "berth_heartbeats_relayed_total", "Heartbeats this follower passed on to the leader (in "
            "signed batches the leader accepted, or forwarded one by one)", registry=registry)
        self.ssh_commands = Histogram(
            "berth_runtime_ssh_command_duration_seconds", "A runtime action's commands on a host over SSH "
            "(verb: the action's type, or ListContainers for a round's look), as kubelet's "
            "runtime_operations_duration_seconds", ["verb"], buckets=SSH_BUCKETS, registry=registry)
        for result in SCHEDULE_RESULTS:
            self.schedule_attempts.labels(result)
        for source in HEARTBEAT_SOURCES:
            self.heartbeats_received.labels(source)

    # --- what the parts report ------------------------------------------------------------
    def request(self, labels: RequestLabels, seconds: float | None) -> None:
        """One request answered; `seconds` None for a stream (counted, not timed)."""
        self.api_requests.labels(labels.verb, labels.resource, labels.subresource, labels.code).inc()
        if seconds is not None:
            self.api_duration.labels(labels.verb, labels.resource, labels.subresource).observe(seconds)

    def raft_applied(self, seconds: float) -> None:
        self.raft_apply.observe(seconds)

    def scheduled(self, result: str, pods: int = 1) -> None:
        if pods:
            self.schedule_attempts.labels(result).inc(pods)

    def scheduling_round(self, seconds: float) -> None:
        self.scheduling_duration.observe(seconds)

    def controller_round(self, controller: str, seconds: float) -> None:
        self.controller_rounds.labels(controller).observe(seconds)

    def heartbeat_received(self, source: str, count: int = 1) -> None:
        if count:
            self.heartbeats_received.labels(source).inc(count)

    def heartbeats_passed_on(self, count: int) -> None:
        if count:
            self.heartbeats_relayed.inc(count)

    def ssh_command(self, verb: str, seconds: float) -> None:
        self.ssh_commands.labels(verb).observe(seconds)

    # --- what a scrape reads ---------------------------------------------------------------
    def register(self, collector: Any) -> None:
        self.registry.register(collector)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


# Where a part was given no master's metrics (a loop driven round by round in a test, a benchmark's
# store): counted here and read by no one.
UNOBSERVED = MasterMetrics()

Depth = Callable[[], int]
Objects = Callable[[], tuple[list[Obj], list[Obj]]]  # (nodes, pods)


class ClusterCollector:
    """What a scrape reads from this master's own state: its Raft position, its replica's nodes and
    pods by state, and how much work each of its leader loops has waiting.

    `status()`: the store's (Store.status: PySyncObj's getStatus); `objects()`: the Nodes and Pods
    as this master has applied them (read under the apply lock, counted after it);
    `queues()`: (loop name, its depth) for each of this master's leader loops."""

    def __init__(self, status: Callable[[], dict[str, Any]], objects: Objects,
                 queues: Callable[[], list[tuple[str, Depth]]]) -> None:
        self.status = status
        self.objects = objects
        self.queues = queues

    def describe(self) -> list[Metric]:
        return []  # families are made at each scrape; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        status = self.status()
        yield _gauge("berth_raft_commit_index", "The highest log index this master knows committed",
                     status.get("commit_idx"))
        yield _gauge("berth_raft_applied_index", "The highest log index this master has applied",
                     status.get("last_applied"))
        yield _gauge("berth_raft_term", "This master's current Raft term", status.get("raft_term"))
        yield _gauge("berth_raft_is_leader", "1 while this master leads, else 0",
                     1 if status.get("state") == 2 else 0)
        nodes, pods = self.objects()
        yield _labelled("berth_nodes", "Nodes by their Ready condition (NotReady: False; Unknown: silent "
                        "or never heard from)", "condition", node_conditions(nodes))
        yield _labelled("berth_pods", "Pods by status.phase", "phase", pod_phases(pods))
        depth = GaugeMetricFamily("berth_controller_queue_depth", "Work a leader loop has waiting: the "
                                  "items its last round left for the next (pods to place, hosts to look "
                                  "at), else 1 while a wake-up waits for a round; 0 on a follower",
                                  labels=["controller"])
        for name, waiting in self.queues():
            depth.add_metric([name], waiting())
        yield depth


def _gauge(name: str, documentation: str, value: Any) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=float(value or 0))


def _labelled(name: str, documentation: str, label: str, counts: dict[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for value, count in counts.items():
        family.add_metric([value], count)
    return family
