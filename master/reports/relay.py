"""Followers answer agents' reports themselves and pass them to the leader in batches.

Only the leader's books count (books.py), yet agents talk to any master. Forwarding
every heartbeat as its own request cost a follower 3.1 ms and the leader 1.4 ms each
(bench/heartbeats.py); at 1,000 agents that left the leader no time to answer. A
follower instead keeps the latest report of each kind from each node (a heartbeat,
a set of probe verdicts, the fact that runtime events came) and sends them all every
`period` as one request signed with the masters' key (master/peer_auth.py). The
delay this adds (a fraction of a second) is small against the node grace and the
runtime's round. This is the one way reports reach the leader from a follower, the
pods' usage batches included.

A follower that cannot hand its batches to the leader says so: while the last flush
failed, `accepting()` is false, the report endpoints answer 503, and the agent moves on
to another master, instead of being told "ok" by a master whose reports reach nobody.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests

from master.autoscaling.metrics import PodSample
from master.json_codec import compact
from master.observability import UNOBSERVED, MasterMetrics
from master.peer_auth import sign
from master.reports.books import ProbeReport, ReportBooks, bound_to, bound_uids
from master.reports.pod_metrics import sample_json
from master.store.replicated import Store

log = logging.getLogger(__name__)

RELAY_PATH = "/api/v1/internal/reports"
MAX_BATCH = 5000  # heartbeats, probe verdicts and nodes with events per request: ~0.5 MB


@dataclass
class Pending:
    """What a follower holds for the leader: per node, the latest of each kind, with the
    monotonic time it came in."""

    heartbeats: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    probes: dict[str, tuple[float, list[ProbeReport]]] = field(default_factory=dict)
    runtime_events: dict[str, float] = field(default_factory=dict)
    pod_metrics: dict[str, tuple[float, list[PodSample]]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.heartbeats or self.probes or self.runtime_events or self.pod_metrics)

    def fresh(self, now: float, max_age: float) -> Pending:
        return Pending({n: b for n, b in self.heartbeats.items() if now - b[0] <= max_age},
                       {n: p for n, p in self.probes.items() if now - p[0] <= max_age},
                       {n: at for n, at in self.runtime_events.items() if now - at <= max_age},
                       {n: m for n, m in self.pod_metrics.items() if now - m[0] <= max_age})

    def chunks(self) -> list[Pending]:
        """Split into batches of at most MAX_BATCH entries (a probe verdict counts one)."""
        out, current, size = [], Pending(), 0
        entries = ([("heartbeats", n, b, 1) for n, b in self.heartbeats.items()]
                   + [("probes", n, p, max(1, len(p[1]))) for n, p in self.probes.items()]
                   + [("runtime_events", n, at, 1) for n, at in self.runtime_events.items()]
                   + [("pod_metrics", n, m, max(1, len(m[1]))) for n, m in self.pod_metrics.items()])
        for kind, node, value, weight in entries:
            if size and size + weight > MAX_BATCH:
                out.append(current)
                current, size = Pending(), 0
            getattr(current, kind)[node] = value
            size += weight
        return [*out, current]

    def merge_older(self, unsent: Pending) -> None:
        """Put back what a failed flush did not deliver, unless something newer came meanwhile."""
        for kind in ("heartbeats", "probes", "runtime_events", "pod_metrics"):
            mine = getattr(self, kind)
            for node, value in getattr(unsent, kind).items():
                mine.setdefault(node, value)


def batch_body(pending: Pending, now: float) -> bytes:
    """The request body, times as ages at `now` (monotonic clocks differ between masters)."""
    def age(at: float) -> float:
        return round(max(0.0, now - at), 3)

    body = {
        "heartbeats": [{"node": node, "ageSeconds": age(at), **usage}
                       for node, (at, usage) in pending.heartbeats.items()],
        "probes": [{"node": node, "results": [
            {"podUID": uid, "container": container, "probe": probe, "healthy": verdict.healthy,
             "startedAt": verdict.started_at, "message": verdict.message}
            for uid, container, probe, verdict in reports]} for node, (_, reports) in pending.probes.items()],
        "runtimeEvents": sorted(pending.runtime_events),
        "podMetrics": [{"node": node, "pods": [sample_json(s) for s in samples]}
                       for node, (_, samples) in pending.pod_metrics.items()],
    }
    return compact(body)


class ReportRelay:
    def __init__(self, store: Store, books: ReportBooks, peer_apis: dict[str, str], key: bytes,
                 period: float = 0.2, timeout: float = 2.0, max_age: float = 5.0,
                 ca_file: str | None = None, metrics: MasterMetrics | None = None) -> None:
        """Reports older than `max_age` when a flush finally succeeds are dropped, not sent. `ca_file`:
        the cluster's CA, which the leader's certificate is verified with; `metrics`: the master's,
        told the heartbeats the leader accepted."""
        self.store = store
        self.metrics = metrics or UNOBSERVED
        self.books = books
        self.peer_apis = peer_apis
        self.key = key
        self.period = period
        self.timeout = timeout
        self.max_age = max_age
        self._lock = threading.Lock()
        self._pending = Pending()
        self._failing = False
        self._session = requests.Session()
        self._session.verify = ca_file or True
        self._session.trust_env = False  # no proxy, and no REQUESTS_CA_BUNDLE over the cluster's CA
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="report-relay", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.timeout + 1)
        self._session.close()

    # --- a ReportSink: what the follower holds until the next batch -----------------------------
    def heartbeat(self, node: str, usage: dict[str, Any], at: float | None = None) -> None:
        with self._lock:
            self._pending.heartbeats[node] = (time.monotonic() if at is None else at, usage)

    def probe_results(self, node: str, reports: list[ProbeReport]) -> list[ProbeReport]:
        mine = bound_to(self.store, node, reports)  # answered as the leader would; it filters again
        with self._lock:
            self._pending.probes[node] = (time.monotonic(), mine)
        return mine

    def runtime_events(self, node: str) -> None:
        with self._lock:
            self._pending.runtime_events[node] = time.monotonic()

    def pod_metrics(self, node: str, samples: list[PodSample]) -> list[PodSample]:
        mine = [s for s in samples if s.uid in bound_uids(self.store, node)] if samples else []
        with self._lock:
            self._pending.pod_metrics[node] = (time.monotonic(), mine)
        return mine

    def accepting(self) -> bool:
        return not self._failing and self.store.leader() is not None

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self.flush()
            except Exception:  # a bad round must not end the loop
                log.exception("report relay round failed")

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, Pending()
        pending = pending.fresh(time.monotonic(), self.max_age)
        if self.store.is_leader():  # leadership came here: the books are local
            self._land(pending)
            self._failing = False
            return
        if not pending and not self._failing:
            return  # nothing to say; a failing relay sends an empty batch to learn it is heard again
        ok = True
        for chunk in pending.chunks():
            if self._send(batch_body(chunk, time.monotonic())):
                self.metrics.heartbeats_passed_on(len(chunk.heartbeats))
            else:
                ok = False
                with self._lock:
                    self._pending.merge_older(chunk)
        if ok != (not self._failing):
            log.log(logging.INFO if ok else logging.WARNING, "report relay to the leader %s",
                    "restored" if ok else "failing: answering agents' reports 503 until it works")
        self._failing = not ok

    def _land(self, pending: Pending) -> None:
        for node, (at, usage) in pending.heartbeats.items():
            self.books.heartbeat(node, usage, at)
        for node, (_, reports) in pending.probes.items():
            self.books.probe_results(node, reports)
        for node in pending.runtime_events:
            self.books.runtime_events(node)
        for node, (_, samples) in pending.pod_metrics.items():
            self.books.pod_metrics(node, samples)

    def _send(self, body: bytes) -> bool:
        leader, url = self.store.leader_api(self.peer_apis)
        if url is None:
            return False
        try:
            answer = self._session.post(url + RELAY_PATH, data=body, timeout=self.timeout, headers={
                "Authorization": sign(self.key, body, time.time(), to=leader),
                "Content-Type": "application/json"})
        except requests.RequestException as err:
            log.debug("report relay to %s: %s", url, err)
            return False
        if answer.status_code != 200:
            log.debug("report relay to %s: HTTP %d %s", url, answer.status_code, answer.text[:200])
        return answer.status_code == 200
