"""The agent's settings, from a YAML file and/or flags (flags win)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from agent.runtime_events import PODMAN_EVENTS_FILE
from berth.containers import RUNTIMES
from berth.quantity import cpu_millis, memory_bytes
from berth.settings import merged_settings, read_secret


@dataclass
class AgentConfig:
    name: str
    address: str
    masters: list[str]
    token_file: str
    # the cluster's CA: masters serve HTTPS only, and their certificates are verified with it
    ca_file: str | None = None
    ssh_port: int = 22
    ssh_user: str = "root"
    runtime: str = "podman"
    labels: dict[str, str] = field(default_factory=dict)
    heartbeat_interval: float = 1.0
    reserved_cpu: str = "100m"
    reserved_memory: str = "128Mi"
    # no master accepting heartbeats this long: the host stops its Berth containers (agent/fencing.py);
    # 0 turns it off. A little longer than a lost node's pods take to be moved elsewhere.
    fence_after_seconds: float = 15.0
    # seconds between two checks that the container engine lists containers (agent/runtime_health.py);
    # 0 turns the check off
    runtime_check_seconds: float = 30.0
    # this agent makes its host's part of the pod network (agent/pod_network.py); off only for an
    # agent that does not run on the host it reports (tests running one on the machine itself)
    pod_network: bool = True
    # host-gw: peers on a shared link are routed directly, others over VXLAN; vxlan: all over VXLAN
    pod_network_backend: str = "host-gw"
    # seconds between two readings of every container's CPU and memory (agent/metrics.py); 0: off
    metrics_interval: float = 5.0
    # the agent's own Prometheus metrics (agent/prometheus.py), plain HTTP: on loopback unless another
    # address is set; port 0 turns them off
    prometheus_address: str = "127.0.0.1"
    prometheus_port: int = 9101
    # podman's events file (containers.conf: events_logger = "file", tmp_dir = "/run/libpod")
    podman_events_file: str = PODMAN_EVENTS_FILE
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        if not self.masters:
            raise ValueError("masters: at least one master URL is needed")
        if self.runtime not in RUNTIMES:
            raise ValueError(f"runtime: one of {', '.join(RUNTIMES)}")
        if not 0 < self.heartbeat_interval <= 300:
            raise ValueError("heartbeat_interval: must be more than 0 and at most 300 seconds")
        if self.fence_after_seconds and not 2 <= self.fence_after_seconds <= 86400:
            raise ValueError("fence_after_seconds: 0 (off) or from 2 to 86400 seconds")
        if self.pod_network_backend not in ("host-gw", "vxlan"):
            raise ValueError("pod_network_backend: host-gw or vxlan")
        if self.metrics_interval and not 1 <= self.metrics_interval <= 300:
            raise ValueError("metrics_interval: 0 (off) or from 1 to 300 seconds")
        if self.runtime_check_seconds and not 1 <= self.runtime_check_seconds <= 3600:
            raise ValueError("runtime_check_seconds: 0 (off) or from 1 to 3600 seconds")
        port = self.prometheus_port
        if not (isinstance(port, int) and not isinstance(port, bool) and 0 <= port <= 65535):
            raise ValueError("prometheus_port: 0 (off) or a port from 1 to 65535")
        try:
            address = self.prometheus_address
            ipaddress.ip_address(address if isinstance(address, str) else None)  # not a number: 1 is 0.0.0.1
        except ValueError:
            raise ValueError("prometheus_address: an IP address (127.0.0.1 keeps the metrics on the "
                             "host)") from None
        self.masters = [m if "://" in m else f"https://{m}" for m in self.masters]
        cpu_millis(self.reserved_cpu)
        memory_bytes(self.reserved_memory)

    def token(self) -> str:
        return read_secret(self.token_file, "token")

    @classmethod
    def build(cls, file_values: dict[str, Any], overrides: dict[str, Any]) -> AgentConfig:
        values = merged_settings(cls, "agent", file_values, overrides,
                                 ("name", "address", "masters", "token_file"))
        values["masters"] = list(values["masters"])
        return cls(**values)
