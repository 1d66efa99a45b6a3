"""What the autoscaler reads of the pods' metrics: one sample per pod, as its node's agent measured it.

The shapes follow Kubernetes' metrics API (a PodMetrics: a timestamp, the window the usage was
averaged over, each container's cpu and memory), with what Berth's own metric types need beside
it: the latency of the HTTP requests to the pod, and an app's own metrics by name. Where the
samples are kept is the leader's soft state (master/reports/pod_metrics.py); the decisions read
them through `PodMetrics`, so a test or another store can stand in.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Protocol

ALL_PATHS = ""  # the key of `PodSample.response_times` for every request to the pod, whatever its path


@dataclass(frozen=True)
class ContainerUsage:
    cpu_millis: int  # millicores, averaged over the sample's window
    memory_bytes: int  # the working set at the end of the window


@dataclass(frozen=True)
class Latency:
    p90_ms: float  # the 90th percentile of the requests' latency over the window
    requests: int  # how many requests it was taken over


@dataclass(frozen=True)
class PodSample:
    uid: str  # the pod's metadata.uid: a pod made again under its name is another pod
    timestamp: float  # Unix seconds at the end of the window, on the agent's clock
    window: float  # seconds the usage is averaged over
    containers: Mapping[str, ContainerUsage] = field(default_factory=dict)  # by container name
    response_times: Mapping[str, Latency] = field(default_factory=dict)  # by request path; ALL_PATHS: all
    custom: Mapping[str, float] = field(default_factory=dict)  # the app's own metrics (Prometheus) by name


class PodMetrics(Protocol):
    """The controller's one question: the newest sample of each of these pods that is still fresh."""

    def samples(self, uids: Collection[str]) -> dict[str, PodSample]:
        """By pod uid; a pod without a fresh sample is absent (its metrics are missing)."""
        ...
