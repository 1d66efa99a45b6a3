"""The pods' metrics as the agents report them: soft state on the leader, like heartbeats.

Each agent measures its own pods (cpu, memory, request latency, the app's own metrics) and
reports a batch every so often; the leader keeps each node's latest batch in memory for
`window` seconds and the autoscaler reads it (master/autoscaling/metrics.py says the shapes).
Nothing of it is a Raft write: a new leader starts empty (`reset`, from `ReportBooks.new_term`)
and its autoscaler waits a sync period, by which time every agent has reported again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterable
from typing import Any

from master.autoscaling.metrics import PodSample

DEFAULT_WINDOW = 60.0  # seconds a batch is answered for: an agent that went silent stops counting


class MetricsBook:
    """The leader's memory of the pods' metrics (a `PodMetrics`); empty, and unused, on followers."""

    def __init__(self, window: float = DEFAULT_WINDOW, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._by_node: dict[str, tuple[float, dict[str, PodSample]]] = {}  # node -> (heard at, by pod uid)

    def record(self, node: str, samples: Iterable[PodSample]) -> None:
        """The node's batch: every pod it measured this round. It replaces the node's previous batch,
        so a pod that stopped there stops counting at once; a pod in it twice counts by its newest."""
        batch: dict[str, PodSample] = {}
        for sample in samples:
            held = batch.get(sample.uid)
            if held is None or sample.timestamp >= held.timestamp:
                batch[sample.uid] = sample
        now = self._clock()
        with self._lock:
            self._by_node[node] = (now, batch)
            for stale in [n for n, (heard, _) in self._by_node.items() if now - heard > self.window]:
                del self._by_node[stale]

    def samples(self, uids: Collection[str]) -> dict[str, PodSample]:
        """The newest fresh sample of each of these pods (by uid); a pod without one is absent."""
        wanted = set(uids)
        now = self._clock()
        found: dict[str, PodSample] = {}
        with self._lock:
            batches = [batch for heard, batch in self._by_node.values() if now - heard <= self.window]
        for batch in batches:
            for uid in wanted.intersection(batch):
                sample = batch[uid]
                if uid not in found or sample.timestamp > found[uid].timestamp:
                    found[uid] = sample
        return found

    def reset(self) -> None:
        """A new term of leadership: what an earlier leader heard is not known here."""
        with self._lock:
            self._by_node.clear()


def sample_json(sample: PodSample) -> dict[str, Any]:
    """A sample as the agents send it (master/api/agent_reports.py PodMetricsReport reads it back):
    what a follower's relay passes on."""
    return {"uid": sample.uid, "timestamp": sample.timestamp, "window": sample.window,
            "containers": {name: {"cpuMillicores": u.cpu_millis, "memoryBytes": u.memory_bytes}
                           for name, u in sample.containers.items()},
            "responseTimes": {path: {"p90Milliseconds": t.p90_ms, "requests": t.requests}
                              for path, t in sample.response_times.items()},
            "custom": dict(sample.custom)}
