"""What the pods' applications show from outside: how long their HTTP answers take, and the metrics
they publish for Prometheus. Berth's own metric types read these (master/autoscaling):
`ResponseTime` and `Pods`.

Response time is measured as a client sees it: every `interval` the agent sends a few GETs to each
ready pod of its host that has something to time: the path of its readiness probe's httpGet, the
path of each `ResponseTime` metric of an autoscaler whose target selects the pod (the autoscaler's
status names the target's selector, as a /scale status does), and the path its annotation
`berth.io/response-time-path` names (these two on the port of `berth.io/response-time-port`, or the
readiness probe's, or the pod's first container port). The p90 over the last WINDOW_SECONDS is
reported per path, and over all of them under "" (what a metric without a path reads). An
application's own metrics are scraped from `berth.io/metrics-port` and `berth.io/metrics-path`
(default /metrics) in Prometheus' text format; a metric with several label sets counts as their sum.
The pods' addresses are the agent's own host's pods: nothing leaves the host.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from berth.objects import Obj
from berth.podnet import ipv4_address

log = logging.getLogger(__name__)
WINDOW_SECONDS = 30.0
REQUESTS_PER_ROUND = 3
TIMEOUT_SECONDS = 2.0
LATENCY_PATH = "berth.io/response-time-path"
LATENCY_PORT = "berth.io/response-time-port"
METRICS_PORT = "berth.io/metrics-port"
METRICS_PATH = "berth.io/metrics-path"
ALL_PATHS = ""
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]{0,127})(?:\{[^}]*\})?\s+(\S+)")


@dataclass(frozen=True, order=True)
class Target:
    uid: str
    address: str
    port: int
    path: str
    scrape: bool  # True: an app's Prometheus metrics; False: a path to time


def _port(value: object, container_ports: dict[str, int]) -> int | None:
    if isinstance(value, int) and 0 < value < 65536:
        return value
    if isinstance(value, str):
        if value.isdigit() and 0 < int(value) < 65536:
            return int(value)
        return container_ports.get(value)
    return None


def _path(value: object) -> str | None:
    return value if isinstance(value, str) and value.startswith("/") and len(value) <= 1024 else None


def _ready(pod: Obj) -> bool:
    conditions = [c for c in (pod.get("status") or {}).get("conditions") or [] if isinstance(c, dict)]
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


@dataclass(frozen=True)
class Measured:
    """What autoscalers ask to be timed: the paths of their ResponseTime metrics, on their target's
    pods (those of `namespace` with all of `labels`)."""

    namespace: str
    labels: tuple[tuple[str, str], ...]
    paths: tuple[str, ...]

    def selects(self, pod: Obj) -> bool:
        mine = pod["metadata"].get("labels") or {}
        return (pod["metadata"].get("namespace") == self.namespace
                and all(mine.get(k) == v for k, v in self.labels))


def measured(autoscalers: list[Obj]) -> list[Measured]:
    """From the autoscalers the agent follows: the paths each one's metrics name, where its status
    says which pods are its target's (nothing before the controller's first round)."""
    found = []
    for hpa in autoscalers:
        selector = (hpa.get("status") or {}).get("selector")
        metrics = (hpa.get("spec") or {}).get("metrics") or []
        named = [(m.get("responseTime") or {}).get("path") for m in metrics if isinstance(m, dict)]
        paths = tuple(sorted({path for value in named if (path := _path(value))}))
        if not (isinstance(selector, str) and selector and paths):
            continue
        terms = [t.split("=", 1) for t in selector.split(",") if "=" in t]
        found.append(Measured(str(hpa["metadata"].get("namespace")), tuple((k, v) for k, v in terms), paths))
    return found


def targets(pods: list[Obj], asked: list[Measured] | None = None) -> list[Target]:
    """What to time and scrape among these pods (this node's): only ready ones, at their own address."""
    found = set()
    for pod in pods:
        address = ipv4_address((pod.get("status") or {}).get("podIP"))
        if not address or not _ready(pod) or pod["metadata"].get("deletionTimestamp"):
            continue
        uid, notes = pod["metadata"]["uid"], pod["metadata"].get("annotations") or {}
        containers = pod["spec"].get("containers") or []
        declared = [p for c in containers for p in c.get("ports") or [] if isinstance(p, dict)]
        ports = {p["name"]: p["containerPort"] for p in declared if p.get("name")}
        probed = next((c["readinessProbe"]["httpGet"] for c in containers
                       if (c.get("readinessProbe") or {}).get("httpGet")), None)
        probe_port = _port((probed or {}).get("port"), ports)
        if probed and probe_port and (path := _path(probed.get("path") or "/")):
            found.add(Target(uid, address, probe_port, path, scrape=False))
        first = _port(declared[0].get("containerPort"), ports) if declared else None
        port = _port(notes.get(LATENCY_PORT), ports) or probe_port or first
        if port and (path := _path(notes.get(LATENCY_PATH))):
            found.add(Target(uid, address, port, path, scrape=False))
        for wanted in asked or []:
            if port and wanted.selects(pod):
                found.update(Target(uid, address, port, path, scrape=False) for path in wanted.paths)
        port = _port(notes.get(METRICS_PORT), ports)
        if port and (path := _path(notes.get(METRICS_PATH) or "/metrics")):
            found.add(Target(uid, address, port, path, scrape=True))
    return sorted(found)


def p90(seconds: list[float]) -> float:
    """Nearest-rank 90th percentile, in milliseconds."""
    ordered = sorted(seconds)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)] * 1000


def parse_prometheus(text: str) -> dict[str, float]:
    """Prometheus' text format: each metric's value, summed over its label sets (comments, and
    values that are not finite numbers, left out)."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        sample = _SAMPLE.match(line.strip())
        if sample is None:
            continue  # a comment, a blank, or not a sample
        try:
            value = float(sample.group(2))
        except ValueError:
            continue
        if math.isfinite(value):
            found[sample.group(1)] = found.get(sample.group(1), 0.0) + value
    return found


def _get(target: Target) -> tuple[int, str]:
    connection = http.client.HTTPConnection(target.address, target.port, timeout=TIMEOUT_SECONDS)
    try:
        connection.request("GET", target.path)
        response = connection.getresponse()
        return response.status, response.read(1 << 20).decode(errors="replace")
    finally:
        connection.close()


class AppMetrics:
    def __init__(self, interval: float = 5.0, get: Callable[[Target], tuple[int, str]] = _get,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.get = get
        self.clock = clock
        self._targets: list[Target] = []
        self._pods: list[Obj] = []
        self._asked: list[Measured] = []
        self._latencies: dict[tuple[str, str], deque[tuple[float, float]]] = {}  # (uid, path) -> (at, s)
        self._custom: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="app-metrics", daemon=True)

    def start(self) -> None:
        if self.interval > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def pods(self, pods: list[Obj]) -> None:
        """The node's pods, as the probe runner last listed them."""
        with self._lock:
            self._pods = list(pods)
        self._retarget()

    def autoscalers(self, objects: dict[tuple[str, str], Obj]) -> None:
        """The autoscalers' informer's news: which paths to time on which pods."""
        with self._lock:
            self._asked = measured(list(objects.values()))
        self._retarget()

    def _retarget(self) -> None:
        with self._lock:
            pods, asked = self._pods, self._asked
        found = targets(pods, asked)
        with self._lock:
            self._targets = found
            uids = {t.uid for t in found}
            self._latencies = {k: v for k, v in self._latencies.items() if k[0] in uids}
            self._custom = {k: v for k, v in self._custom.items() if k in uids}

    def round(self) -> None:
        with self._lock:
            current = list(self._targets)
        for target in current:
            if target.scrape:
                try:
                    status, text = self.get(target)
                except (OSError, http.client.HTTPException) as err:
                    log.debug("scraping %s:%d%s: %s", target.address, target.port, target.path, err)
                    continue
                if status == 200:
                    with self._lock:
                        self._custom[target.uid] = parse_prometheus(text)
                continue
            for _ in range(REQUESTS_PER_ROUND):
                began = self.clock()
                with contextlib.suppress(OSError, http.client.HTTPException):
                    self.get(target)  # a failed request took as long as it took: it is timed too
                took = self.clock() - began
                with self._lock:
                    timed = self._latencies.setdefault((target.uid, target.path), deque(maxlen=1000))
                    timed.append((began, took))

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Per pod uid: `responseTimes` (by path, and "" for all) and `custom`, as a usage batch
        carries them (master/api/agent_reports.py PodMetricsReport)."""
        since = self.clock() - WINDOW_SECONDS
        out: dict[str, dict[str, Any]] = {}
        with self._lock:
            every: dict[str, list[float]] = {}
            for (uid, path), timed in self._latencies.items():
                recent = [took for at, took in timed if at >= since]
                if recent:
                    out.setdefault(uid, {}).setdefault("responseTimes", {})[path] = {
                        "p90Milliseconds": round(p90(recent), 3), "requests": len(recent)}
                    every.setdefault(uid, []).extend(recent)
            for uid, recent in every.items():
                out[uid]["responseTimes"][ALL_PATHS] = {"p90Milliseconds": round(p90(recent), 3),
                                                        "requests": len(recent)}
            for uid, custom in self._custom.items():
                out.setdefault(uid, {})["custom"] = dict(custom)
        return out

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.round()
            except Exception:  # a bad round must not end the loop
                log.exception("application metrics round failed")
