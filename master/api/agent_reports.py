"""The agents' reports: heartbeats, probe verdicts, runtime events, pods' usage. Soft state, never a
Raft write.

Every master takes them. The leader lands them in its books (master/reports/books.py);
a follower answers the agent itself and hands the report to its relay, which passes it
on in the next signed batch (master/reports/relay.py, `RELAY_PATH` here). A follower
with no masters' key (no Raft password) forwards each report as it comes (forward.py).
"""

from __future__ import annotations

import logging
import time
from typing import Annotated, Literal

from flask import Blueprint, Response, jsonify, request
from pydantic import Field, StringConstraints

from master.api.auth import authorize
from master.api.body import validated
from master.api.context import ApiContext, context, principal
from master.api.forward import to_leader
from master.autoscaling.metrics import ContainerUsage, Latency, PodSample
from master.errors import ApiError, not_found
from master.heartbeat_rate import interval_to_tell
from master.objects.fields import Bytes, DnsLabel
from master.objects.kinds import Strict
from master.peer_auth import verify
from master.reports.books import ProbeReport, ReportSink, known_nodes
from master.reports.probes import Verdict
from master.reports.relay import MAX_BATCH, RELAY_PATH

log = logging.getLogger(__name__)
bp = Blueprint("agent_reports", __name__)
PEER_PATHS = frozenset({RELAY_PATH})  # signed by a master (peer_auth), not a bearer token


class HeartbeatBody(Strict):
    cpuPercent: float = Field(ge=0, le=100)
    memoryUsed: Bytes
    # the agent's latest check of its container engine (agent/runtime_health.py): false makes the
    # node NotReady with reason RuntimeNotReady (master/liveness.py)
    runtimeReady: bool = True
    runtimeMessage: str = Field(default="", max_length=512)


class ProbeResult(Strict):
    podUID: str = Field(min_length=1, max_length=64)
    container: DnsLabel
    probe: Literal["liveness", "readiness"]
    healthy: bool
    startedAt: str = Field(max_length=64)
    message: str = Field(default="", max_length=512)

    def report(self) -> ProbeReport:
        return self.podUID, self.container, self.probe, Verdict(self.healthy, self.startedAt, self.message)


class ProbeResults(Strict):
    results: list[ProbeResult] = Field(max_length=10_000)


class ContainerUsageReport(Strict):
    cpuMillicores: int = Field(ge=0, le=10_000_000)
    memoryBytes: int = Field(ge=0, le=1 << 50)


class LatencyReport(Strict):
    p90Milliseconds: float = Field(ge=0, le=3_600_000)
    requests: int = Field(ge=0, le=1_000_000_000)


class PodMetricsReport(Strict):
    """One pod's sample, as master/autoscaling/metrics.py's PodSample (the agent's clock)."""

    uid: str = Field(min_length=1, max_length=64)
    timestamp: float = Field(ge=0, le=1e11)
    window: float = Field(gt=0, le=3600)
    containers: dict[DnsLabel, ContainerUsageReport] = Field(default_factory=dict, max_length=64)
    responseTimes: dict[Annotated[str, StringConstraints(max_length=256)], LatencyReport] = Field(
        default_factory=dict, max_length=16)
    custom: dict[Annotated[str, StringConstraints(min_length=1, max_length=128)], float] = Field(
        default_factory=dict, max_length=64)

    def sample(self) -> PodSample:
        usage = {name: ContainerUsage(c.cpuMillicores, c.memoryBytes) for name, c in self.containers.items()}
        latency = {path: Latency(t.p90Milliseconds, t.requests) for path, t in self.responseTimes.items()}
        return PodSample(self.uid, self.timestamp, self.window, usage, latency, dict(self.custom))


class PodMetricsReports(Strict):
    pods: list[PodMetricsReport] = Field(max_length=5000)


class RuntimeEventReport(Strict):
    container: str = Field(max_length=253)  # "" for the agent's own "listening" (stream (re)started)
    action: str = Field(min_length=1, max_length=32)
    exitCode: int | None = Field(default=None, ge=-(2**31), le=2**31 - 1)


class RuntimeEventReports(Strict):
    events: list[RuntimeEventReport] = Field(min_length=1, max_length=1000)


class RelayedHeartbeat(HeartbeatBody):
    node: DnsLabel
    ageSeconds: float = Field(ge=0, le=60)


class RelayedProbes(ProbeResults):
    node: DnsLabel


class RelayedPodMetrics(PodMetricsReports):
    node: DnsLabel


class RelayedBatch(Strict):
    heartbeats: list[RelayedHeartbeat] = Field(default_factory=list, max_length=MAX_BATCH)
    probes: list[RelayedProbes] = Field(default_factory=list, max_length=MAX_BATCH)
    runtimeEvents: list[DnsLabel] = Field(default_factory=list, max_length=MAX_BATCH)
    podMetrics: list[RelayedPodMetrics] = Field(default_factory=list, max_length=MAX_BATCH)


def _sink(ctx: ApiContext) -> ReportSink | None:
    """Where this master puts a report: its books while it leads, else its relay (503 while the
    relay cannot reach the leader: the agent tries another master). None: no relay (no masters'
    key), so the request itself goes to the leader."""
    if ctx.store.is_leader():
        return ctx.books
    if ctx.relay is None:
        return None
    if not ctx.relay.accepting():
        raise ApiError(503, "Unavailable",
                       "this master cannot pass reports to the leader; use another master")
    return ctx.relay


def _known(ctx: ApiContext, name: str) -> None:
    if ctx.store.get("Node", "", name) is None:
        raise not_found("Node", "", name)


@bp.post("/api/v1/nodes/<name>/heartbeat")
def heartbeat(name: str) -> Response | tuple[Response, int]:
    authorize(principal(), "update", "Node", name, subresource="heartbeat")
    usage = validated(HeartbeatBody).model_dump()
    ctx = context()
    sink = _sink(ctx)
    if sink is None:
        answer = to_leader(ctx, "POST", request.path)
        if ctx.metrics is not None and answer[1] == 200:
            ctx.metrics.heartbeats_passed_on(1)
        return answer
    _known(ctx, name)
    sink.heartbeat(name, usage)
    if ctx.metrics is not None:
        ctx.metrics.heartbeat_received("agent")
    # the agent lists its node's pods again only when this moved (master/reports/pod_revisions.py);
    # it beats again after the interval the cluster's size gives (master/heartbeat_rate.py)
    answer = {"ok": True, "podsRevision": ctx.books.pod_revisions.of(name)}
    told = interval_to_tell(ctx.store.count("Node"), ctx.max_heartbeats_per_second)
    return jsonify(answer if told is None else {**answer, "heartbeatIntervalSeconds": told})


@bp.post("/api/v1/nodes/<name>/probes")
def probe_results(name: str) -> Response | tuple[Response, int]:
    """An agent's current probe verdicts for the containers on its node."""
    authorize(principal(), "update", "Node", name, subresource="probes")
    reports = [r.report() for r in validated(ProbeResults).results]
    ctx = context()
    sink = _sink(ctx)
    if sink is None:
        return to_leader(ctx, "POST", request.path)
    mine = sink.probe_results(name, reports)
    return jsonify({"recorded": len(mine), "ignored": len(reports) - len(mine)})


@bp.post("/api/v1/nodes/<name>/runtime-events")
def runtime_events(name: str) -> Response | tuple[Response, int]:
    """Changes the agent saw among Berth's containers on its node (agent/runtime_events.py):
    the runtime lists that host in its next round (master/runtime/attention.py)."""
    authorize(principal(), "update", "Node", name, subresource="runtime-events")
    events = validated(RuntimeEventReports).events
    ctx = context()
    sink = _sink(ctx)
    if sink is None:
        return to_leader(ctx, "POST", request.path)
    _known(ctx, name)
    log.debug("node %s: runtime events %s", name, [(e.container, e.action) for e in events])
    sink.runtime_events(name)
    return jsonify({"recorded": len(events)})


@bp.post("/api/v1/nodes/<name>/metrics")
def pod_metrics(name: str) -> Response | tuple[Response, int]:
    """An agent's batch of its pods' usage (agent/metrics.py), for the autoscaler: it replaces the
    node's last one; only pods bound to the node count (an agent cannot resize others' workloads)."""
    authorize(principal(), "update", "Node", name, subresource="metrics")
    samples = [p.sample() for p in validated(PodMetricsReports).pods]
    ctx = context()
    sink = _sink(ctx)
    if sink is None:
        return to_leader(ctx, "POST", request.path)
    _known(ctx, name)
    mine = sink.pod_metrics(name, samples)
    return jsonify({"recorded": len(mine), "ignored": len(samples) - len(mine)})


@bp.post(RELAY_PATH)
def relayed_reports() -> Response:
    """A follower's batch of its agents' latest reports (master/reports/relay.py)."""
    ctx = context()
    now, header = time.time(), request.headers.get("Authorization")
    nonce = None if ctx.peer_key is None else verify(ctx.peer_key, header, request.get_data(cache=True),
                                                     ctx.store.self_address, now)
    if nonce is None:
        raise ApiError(401, "Unauthorized", "a master's signature is required", "Authorization")
    if not ctx.peer_nonces.first_time(nonce, now):
        raise ApiError(401, "Unauthorized", "this signed batch was received before: a replay",
                       "Authorization")
    if not ctx.store.is_leader():
        raise ApiError(503, "NotLeader", "this master is not the leader; send to the leader")
    batch = validated(RelayedBatch)
    named = ({b.node for b in batch.heartbeats} | {p.node for p in batch.probes} | set(batch.runtimeEvents)
             | {m.node for m in batch.podMetrics})
    known = known_nodes(ctx.store, named)
    heard = time.monotonic()
    recorded = {"heartbeats": 0, "probeResults": 0, "runtimeEvents": 0, "podMetrics": 0}
    for beat in batch.heartbeats:
        if beat.node in known:
            ctx.books.heartbeat(beat.node, beat.model_dump(exclude={"node", "ageSeconds"}),
                                heard - beat.ageSeconds)
            recorded["heartbeats"] += 1
    if ctx.metrics is not None:
        ctx.metrics.heartbeat_received("relay", recorded["heartbeats"])
    for probes in batch.probes:
        if probes.node in known:
            mine = ctx.books.probe_results(probes.node, [r.report() for r in probes.results])
            recorded["probeResults"] += len(mine)
    for node in batch.runtimeEvents:
        if node in known:
            ctx.books.runtime_events(node)
            recorded["runtimeEvents"] += 1
    for metrics in batch.podMetrics:
        if metrics.node in known:
            samples = [p.sample() for p in metrics.pods]
            recorded["podMetrics"] += len(ctx.books.pod_metrics(metrics.node, samples))
    return jsonify({"recorded": recorded, "unknown": sorted(named - known)})
