"""Each Berth container's CPU and memory, read from its cgroup every `interval` and reported to
the masters in one batch, as the kubelet's resource metrics feed metrics-server.

The list of running containers (and each one's first process, which names its cgroup) comes
from the engine only when it may have changed: at the start, when the runtime-events watch
saw a change (`changed()`), and every RELIST_SECONDS; each interval in between costs a few
small file reads per container, no process. CPU needs two readings: a container is reported
from its second interval on. A pod's sandbox is not reported (it runs none of the pod's
containers), as Kubernetes leaves out the pause container.
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.engine import Listings, Running, list_command
from agent.masters import ApiError, Masters, MasterUnavailable
from agent.usage import CGROUP_ROOT, CgroupFiles, cgroup_files, cpu_nanoseconds, millicores, working_set

log = logging.getLogger(__name__)
RELIST_SECONDS = 30.0


@dataclass(frozen=True)
class Reading:
    at: float  # monotonic seconds
    cpu_ns: int


class MetricsCollector:
    def __init__(self, masters: Masters, node: str, runtime: str, interval: float = 5.0,
                 run: Callable[[list[str]], str] = list_command, proc: Path = Path("/proc"),
                 cgroups: Path = CGROUP_ROOT, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time, app: Callable[[], dict[str, dict[str, Any]]] = dict,
                 listings: Listings | None = None) -> None:
        """`app`: what the pods' applications show, by pod uid (app_metrics.AppMetrics.snapshot)."""
        self.masters = masters
        self.node = node
        self.runtime = runtime
        self.interval = interval
        self.run = run
        self.proc = proc
        self.cgroups = cgroups
        self.clock = clock
        self.wall = wall  # the samples' timestamps (Unix seconds)
        self.app = app
        self.listings = listings or Listings(runtime, run, clock)
        self._containers: list[tuple[Running, CgroupFiles]] = []
        self._listed_at: float | None = None
        self._readings: dict[str, Reading] = {}  # container id -> its last CPU reading
        self._changed = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="metrics", daemon=True)

    def start(self) -> None:
        if self.interval > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def changed(self) -> None:
        """The runtime-events watch saw containers come or go: list again before the next reading."""
        self._changed.set()

    def _relist(self, max_age: float) -> None:
        found = []
        for container in self.listings.get(max_age):
            if not (container.pod_uid and container.container and container.pid > 0):
                continue
            try:
                files = cgroup_files((self.proc / str(container.pid) / "cgroup").read_text(), self.cgroups)
            except OSError:
                continue  # gone since the listing
            if files is not None:
                found.append((container, files))
        self._containers = found
        self._listed_at = self.clock()
        kept = {c.id for c, _ in found}
        self._readings = {cid: r for cid, r in self._readings.items() if cid in kept}

    def sample(self) -> list[dict[str, Any]]:
        """This interval's usage of every container read twice or more, by pod: the batch's items
        (master/api/agent_reports.py PodMetricsReport)."""
        now = self.clock()
        changed = self._changed.is_set()
        if changed or self._listed_at is None or now - self._listed_at >= RELIST_SECONDS:
            self._changed.clear()
            self._relist(0.0 if changed else RELIST_SECONDS)  # a change needs a fresh listing
        pods: dict[str, dict[str, Any]] = {}
        for container, files in self._containers:
            try:
                cpu = cpu_nanoseconds(files.cpu_usage.read_text(), files.v2)
                memory = working_set(files.memory_usage.read_text(), files.memory_stat.read_text(), files.v2)
            except (OSError, ValueError):
                self._changed.set()  # it went away: the next interval lists again
                continue
            before = self._readings.get(container.id)
            self._readings[container.id] = Reading(now, cpu)
            if before is not None:
                pod = pods.setdefault(container.pod_uid, {
                    "uid": container.pod_uid, "timestamp": self.wall(), "window": round(now - before.at, 3),
                    "containers": {}})
                pod["containers"][container.container] = {
                    "cpuMillicores": millicores(before.cpu_ns, cpu, now - before.at), "memoryBytes": memory}
        for uid, shown in self.app().items():
            pods.setdefault(uid, {"uid": uid, "timestamp": self.wall(), "window": self.interval,
                                  "containers": {}}).update(shown)
        return list(pods.values())

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                items = self.sample()
            except (subprocess.SubprocessError, OSError, ValueError, KeyError) as err:
                log.warning("reading container usage: %s", err)
                continue
            self.report(items)

    def report(self, items: list[dict[str, Any]]) -> None:
        try:
            self.masters.call("POST", f"/api/v1/nodes/{self.node}/metrics", {"pods": items})
        except MasterUnavailable as err:
            log.warning("metrics: %s", err)
        except ApiError as err:
            log.warning("metrics refused: %s", err)
