"""The agent's own Prometheus metrics, served on a local port as node_exporter serves a host's.

Not the pods' usage the agent reports to the masters (metrics.py) nor the applications' metrics it
scrapes from pods (app_metrics.py): these say how the agent itself fares. Heartbeats (how long the
masters took to answer, and how each ended), probe results by probe and result (kubelet's
prober_probe_total), and the data path's reloads (each `nft -f` of the host's table) and their
failures.

Served in plain HTTP on `prometheus_address:prometheus_port` (127.0.0.1:9101 unless set; port 0:
off). The families hold counts and timings only, no name of a pod or a container, and loopback
keeps them on the host: a Prometheus server reaches them through whatever the host runs for that
(a node_exporter-style local scrape, or an SSH tunnel), or the address is set to one that server
reaches. The registry is the agent's own, never prometheus_client's global one.
"""

from __future__ import annotations

import logging
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from berth.version import release

log = logging.getLogger(__name__)
HEARTBEAT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.5, 5.0)
HEARTBEAT_RESULTS = ("accepted", "refused", "unanswered")
PROBES = ("liveness", "readiness")
PROBE_RESULTS = ("successful", "failed")  # kubelet's prober_probe_total


class AgentMetrics:
    """The agent's families in a registry of its own. A part given none makes its own, counted and
    served by no one (a test's probe runner or pod network)."""

    def __init__(self) -> None:
        registry = self.registry = CollectorRegistry()
        self.heartbeat_duration = Histogram(
            "berth_agent_heartbeat_duration_seconds", "Time from sending a heartbeat to a master's answer",
            buckets=HEARTBEAT_BUCKETS, registry=registry)
        self.heartbeats = Counter(
            "berth_agent_heartbeats_total", "Heartbeats sent, by how they ended (accepted; refused by a "
            "master; unanswered by every master)", ["result"], registry=registry)
        self.probe_results = Counter(
            "berth_agent_probe_results_total", "Probe attempts on this host's containers, by probe and "
            "result", ["probe", "result"], registry=registry)
        self.datapath_reloads = Counter(
            "berth_agent_datapath_reloads_total", "The host's nftables table loaded anew (a Service, its "
            "endpoints, a network policy or a peer changed)", registry=registry)
        self.datapath_reload_failures = Counter(
            "berth_agent_datapath_reload_failures_total", "Loads of the host's nftables table the kernel "
            "refused (retried at the next sync)", registry=registry)
        # Kubernetes' kubernetes_build_info: what a rolling upgrade (ansible/upgrade.yml) waits for
        Gauge("berth_build_info", "1, labelled with the release this agent runs", ["version"],
              registry=registry).labels(release()).set(1)
        for result in HEARTBEAT_RESULTS:
            self.heartbeats.labels(result)
        for probe in PROBES:
            for result in PROBE_RESULTS:
                self.probe_results.labels(probe, result)
        self._server: WSGIServer | None = None

    def heartbeat(self, result: str, seconds: float | None = None) -> None:
        """One heartbeat ended (`result` one of HEARTBEAT_RESULTS); `seconds` once a master answered."""
        self.heartbeats.labels(result).inc()
        if seconds is not None:
            self.heartbeat_duration.observe(seconds)

    def probed(self, probe: str, ok: bool) -> None:
        """One attempt of a probe (`probe`: liveness or readiness, the ProbeRunner's own kinds)."""
        self.probe_results.labels(probe if probe in PROBES else "other", PROBE_RESULTS[0 if ok else 1]).inc()

    def reloaded(self, ok: bool) -> None:
        (self.datapath_reloads if ok else self.datapath_reload_failures).inc()

    def serve(self, address: str, port: int) -> int | None:
        """Serve the families on `address:port` in a thread of prometheus_client's; the port bound
        (port 0 here: any free one), or None when it cannot bind: the agent works on without it."""
        try:
            self._server, _ = start_http_server(port, addr=address, registry=self.registry)
        except OSError as err:
            log.warning("metrics: cannot serve on %s:%d (%s); going on without", address, port, err)
            return None
        bound = int(self._server.server_port)
        log.info("metrics on http://%s:%d/metrics", address, bound)
        return bound

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
