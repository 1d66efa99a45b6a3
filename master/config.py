"""A master's settings, from a YAML file and/or flags (flags win)."""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
from dataclasses import dataclass, field, fields
from typing import Any

from berth.settings import merged_settings, read_secret
from master.api.tls import server_context
from master.heartbeat_rate import DEFAULT_MAX_PER_SECOND
from master.network.service_ips import port_range, service_network
from master.objects.fields import DNS1123_LABEL
from master.scheduler import SchedulerConfig
from master.scheduler.rebalance import RebalanceConfig
from master.store.encryption import Keyring, load_keyring
from master.store.replicated import RaftTimings

CONTROLLERS = ("node-lifecycle", "scheduler", "runtime", "event-reaper", "taint-eviction", "namespace",
               "deployment", "replicaset", "garbage-collector", "node-check", "disruption", "node-ipam",
               "endpoints", "horizontal-pod-autoscaler", "persistent-volume")


def _loopback(address: str) -> bool:
    host = split_address(address, "address")[0].strip("[]")
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def split_address(address: str, what: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{what}: {address!r} is not HOST:PORT")
    return host, int(port)


def _network(setting: str, value: object, example: str) -> ipaddress.IPv4Network:
    """Strict: a range with host bits set (10.244.1.0/16) is most likely a typo, and ipaddress would
    silently read a bare address as a /32."""
    if not isinstance(value, str) or "/" not in value:
        raise ValueError(f"{setting}: {value!r} is not an IPv4 network such as {example}")
    try:
        return ipaddress.IPv4Network(value)
    except ValueError as err:
        raise ValueError(f"{setting}: {value!r} is not an IPv4 network such as {example} ({err})") from None


def check_pod_network(cluster_cidr: object, mask_size: object) -> None:
    """Checked at start, not at the first node."""
    network = _network("cluster_cidr", cluster_cidr, "10.244.0.0/16")
    if isinstance(mask_size, bool) or not isinstance(mask_size, int) or not 16 <= mask_size <= 28:
        raise ValueError(f"node_cidr_mask_size: {mask_size!r} must be a whole number from 16 to 28")
    if mask_size < network.prefixlen:
        raise ValueError(f"node_cidr_mask_size: a node's /{mask_size} would be larger than cluster_cidr "
                         f"{cluster_cidr}; give at least {network.prefixlen}")


def check_service_network(service_cidr: object, node_port_range: object, cluster_cidr: str) -> None:
    """Checked at start, as the pods' range: a Service address inside the pods' range would be
    taken for a pod's, and a range of node ports that is not one is refused by name."""
    network = _network("service_cidr", service_cidr, "10.96.0.0/16")
    try:
        service_network(str(network))
    except ValueError as err:
        raise ValueError(f"service_cidr: {err}") from None
    if network.overlaps(ipaddress.IPv4Network(cluster_cidr)):
        raise ValueError(f"service_cidr: {service_cidr} overlaps cluster_cidr {cluster_cidr} (the pods' "
                         "addresses); give a range apart from it")
    try:
        port_range(str(node_port_range))
    except ValueError as err:
        raise ValueError(f"service_node_port_range: {err}") from None


def _within(value: object, low: float, high: float, whole: bool = False) -> bool:
    if isinstance(value, bool) or not isinstance(value, int if whole else int | float):
        return False
    return low <= value <= high  # type: ignore[operator] - a number, checked above


def check_autoscaling(sync_period: object, tolerance: object, stabilization: object) -> None:
    """Checked at start, each error naming its setting (Kubernetes' controller flags of the same names)."""
    if not _within(sync_period, 1, 3600):
        raise ValueError(f"horizontal_pod_autoscaler_sync_period_seconds: {sync_period!r} must be from 1 "
                         "to 3600")
    if not _within(tolerance, 0, 0.99):
        raise ValueError(f"horizontal_pod_autoscaler_tolerance: {tolerance!r} must be from 0 to 0.99")
    if not _within(stabilization, 0, 3600, whole=True):
        raise ValueError(f"horizontal_pod_autoscaler_downscale_stabilization_seconds: {stabilization!r} must "
                         "be a whole number of seconds from 0 to 3600")


@dataclass
class MasterConfig:
    name: str
    raft_address: str
    api_address: str
    data_dir: str
    tokens_file: str
    peers: list[str] = field(default_factory=list)
    raft_password_file: str | None = None
    # Without a password PySyncObj unpickles whatever reaches the Raft port: anyone who can
    # reach it runs code as the master. Only for masters that all listen on loopback (tests).
    insecure_raft_without_password: bool = False
    # Secrets' values sealed (AES-256-GCM) before they enter Raft, so the journal and snapshots hold
    # no clear value (master/store/encryption.py): one base64 32-byte key a line, the first sealing.
    # Every master has the same file. Without it, values are stored in clear (a warning at start).
    encryption_key_file: str | None = None
    # The API is HTTPS only (master/api/tls.py), with kube-apiserver's names: this master's certificate
    # (its addresses as SANs) and key; the CA that signed every master's, which the forward to the
    # leader and the relay of agents' reports verify their peer with. All three are required.
    tls_cert_file: str | None = None
    tls_private_key_file: str | None = None
    tls_ca_file: str | None = None
    api_threads: int = 64  # for short requests; streams get threads of their own (stream_limit)
    api_connection_limit: int = 4096  # open client connections (agents keep one each)
    api_connections_per_address: int = 256  # one client address (a reverse proxy counts as one)
    stream_limit: int = 64  # watch, logs and exec requests at once (master/api/streams.py)
    stream_limit_per_token: int = 16
    max_body_bytes: int = 1 << 20
    max_object_bytes: int = 512 << 10  # an object's JSON (spec and status each)
    watch_window: int = 20000
    watch_window_bytes: int = 256 << 20  # the window's events, as pickled (store/window.py)
    write_timeout: float = 10.0
    peer_apis: dict[str, str] = field(default_factory=dict)  # raft address -> API URL, all masters
    node_grace_seconds: float = 3.0  # at the 1 s interval; stretched with it (master/heartbeat_rate.py)
    # the most heartbeats per second the cluster's agents are told to send in all (as Nomad's): past
    # it, every agent's interval is stretched (master/heartbeat_rate.py)
    max_heartbeats_per_second: float = DEFAULT_MAX_PER_SECOND
    heartbeat_relay_seconds: float = 0.2  # how often a follower passes agents' reports to the leader
    scheduler_score: str = "LeastAllocated"  # or MostAllocated (binpack)
    # Kubernetes' percentageOfNodesToScore: the share of the nodes whose feasible ones are scored for
    # a pod, 0 its adaptive default (50% less a point per 125 nodes, at least 5% and 100 nodes), 100 all
    percentage_of_nodes_to_score: int = 0
    ssh_key_file: str | None = None  # the runtime's key for every host (root or sshUser)
    ssh_known_hosts_file: str | None = None  # every host's pinned key; others are refused
    restart_backoff_seconds: float = 10.0  # first delay before restarting a failed container
    event_ttl_seconds: float = 3600.0  # events older than this are deleted
    runtime_resync_seconds: float = 10.0  # a host is listed at least this often (runtime/attention.py)
    # benchmarks only (bench/cluster_scale.py): the runtime drives in-memory hosts, no SSH, nothing
    # runs anywhere (master/runtime/simulated.py)
    simulated_hosts: bool = False
    # Self-healing (master/objects/tolerations.py, controllers/node_check.py): a pod leaves a lost
    # node this long after the node was tainted, unless its own tolerations say otherwise; at once
    # when the leader cannot reach the host over SSH either (evict_when_host_unreachable).
    default_eviction_seconds: int = 5
    evict_when_host_unreachable: bool = True
    host_check_seconds: float = 1.0  # how often a NotReady host is tried over SSH
    # `{node}` in an argument is replaced by the node's name (the lab keeps each host's state apart)
    agent_restart_command: list[str] = field(default_factory=lambda: ["systemctl", "restart", "berth-agent"])
    controllers: list[str] = field(default_factory=lambda: list(CONTROLLERS))  # the leader-only loops to run
    # the rebalancer (master/controllers/rebalancer.py) moves pods off crowded nodes: off unless true
    rebalance: bool = False
    rebalance_period_seconds: float = 30.0  # between its rounds (a node becoming usable wakes one at once)
    rebalance_max_evictions: int = 5  # a round's evictions
    rebalance_threshold_percent: int = 20  # points of allocatable above (below) the average: crowded (idle)
    # The pods' network (master/network/ipam.py): node-ipam gives each Node a subnet of this size
    # from this range as its spec.podCIDR (Kubernetes' --cluster-cidr and --node-cidr-mask-size)
    cluster_cidr: str = "10.244.0.0/16"
    node_cidr_mask_size: int = 24
    # Services (master/objects/services.py): each gets an address from this range (Kubernetes'
    # --service-cluster-ip-range), and a NodePort service a port of this range on every node
    service_cidr: str = "10.96.0.0/16"
    service_node_port_range: str = "30000-32767"
    # The horizontal-pod-autoscaler loop (master/controllers/autoscaler.py), as Kubernetes' controller
    # flags: how often it decides, the usage ratio's tolerance around 1, and scaleDown's stabilization
    # window for an autoscaler that sets none
    # Kubernetes' default is 15 s; the agents report every 5 s, so Berth decides as often
    horizontal_pod_autoscaler_sync_period_seconds: float = 5.0
    horizontal_pod_autoscaler_tolerance: float = 0.1
    horizontal_pod_autoscaler_downscale_stabilization_seconds: int = 300
    # Namespaces where any writer may give pods hostPath volumes (admins may everywhere): a pod that
    # mounts its host's files is no longer isolated from it (master/api/volume_admission.py)
    host_path_namespaces: list[str] = field(default_factory=list)
    # The audit log (master/api/audit.py): `audit.log` in data_dir starts afresh past this size, keeping
    # this many older files (audit.log.1 the newest), as kube-apiserver's --audit-log-maxsize and
    # --audit-log-maxbackup; 0 backups: the full file is deleted
    audit_log_max_bytes: int = 100 << 20
    audit_log_backups: int = 5
    log_level: str = "INFO"
    timings: RaftTimings = field(default_factory=RaftTimings)

    def __post_init__(self) -> None:
        split_address(self.raft_address, "raft_address")
        split_address(self.api_address, "api_address")
        for peer in self.peers:
            split_address(peer, "peer")
        if not self.raft_password_file and not self.insecure_raft_without_password:
            raise ValueError("raft_password_file: required. PySyncObj unpickles what reaches the Raft "
                             "port, so without a password anyone who can reach it runs code as this "
                             "master; the password encrypts and authenticates Raft traffic")
        if not self.raft_password_file and not all(map(_loopback, [self.raft_address, *self.peers])):
            raise ValueError("insecure_raft_without_password: only for masters that all listen on "
                             "loopback; give raft_password_file")
        for name in ("api_connection_limit", "api_connections_per_address", "stream_limit",
                     "stream_limit_per_token", "max_object_bytes", "watch_window", "watch_window_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be at least 1")
        if not 1 <= self.max_heartbeats_per_second <= 100_000:
            raise ValueError("max_heartbeats_per_second: must be from 1 to 100000")
        if not 0 < self.heartbeat_relay_seconds <= 10:
            raise ValueError("heartbeat_relay_seconds: must be more than 0 and at most 10")
        self.scheduler_config()  # raises ValueError naming the setting
        unknown = sorted(set(self.controllers) - set(CONTROLLERS))
        if unknown:
            raise ValueError(f"controllers: unknown {', '.join(unknown)}; known: {', '.join(CONTROLLERS)}")
        for needs_ssh in ("runtime", "node-check"):
            simulated = needs_ssh == "runtime" and self.simulated_hosts
            if needs_ssh in self.controllers and not simulated and not (self.ssh_key_file
                                                                         and self.ssh_known_hosts_file):
                raise ValueError(f"ssh_key_file: the {needs_ssh} controller needs ssh_key_file and "
                                 f"ssh_known_hosts_file (or leave {needs_ssh} out of controllers)")
        if self.event_ttl_seconds < 60:
            raise ValueError("event_ttl_seconds: must be at least 60")
        if not 0 < self.runtime_resync_seconds <= 3600:
            raise ValueError("runtime_resync_seconds: must be more than 0 and at most 3600")
        if not 0 <= self.default_eviction_seconds <= 86400:
            raise ValueError("default_eviction_seconds: must be from 0 to 86400")
        if not 0.2 <= self.host_check_seconds <= 60:
            raise ValueError("host_check_seconds: must be from 0.2 to 60")
        if not self.agent_restart_command or not all(isinstance(a, str) and a
                                                     for a in self.agent_restart_command):
            raise ValueError("agent_restart_command: a non-empty list of arguments")
        if not 0 < self.restart_backoff_seconds <= 300:
            raise ValueError("restart_backoff_seconds: must be more than 0 and at most 300")
        self.rebalance_config()  # raises ValueError naming the setting
        if not 1 <= self.rebalance_period_seconds <= 86400:
            raise ValueError("rebalance_period_seconds: from 1 to 86400")
        check_autoscaling(self.horizontal_pod_autoscaler_sync_period_seconds,
                          self.horizontal_pod_autoscaler_tolerance,
                          self.horizontal_pod_autoscaler_downscale_stabilization_seconds)
        check_pod_network(self.cluster_cidr, self.node_cidr_mask_size)
        if not isinstance(self.host_path_namespaces, list) or not all(
                isinstance(n, str) and re.fullmatch(DNS1123_LABEL, n) for n in self.host_path_namespaces):
            raise ValueError("host_path_namespaces: a list of namespace names (DNS-1123 labels)")
        check_service_network(self.service_cidr, self.service_node_port_range, self.cluster_cidr)
        if not _within(self.audit_log_max_bytes, 4096, 1 << 40, whole=True):
            raise ValueError("audit_log_max_bytes: a whole number of bytes from 4096 (a few lines) to 1 TiB")
        if not _within(self.audit_log_backups, 0, 1000, whole=True):
            raise ValueError("audit_log_backups: a whole number of files from 0 to 1000")
        if self.raft_address in self.peers:
            self.peers = [p for p in self.peers if p != self.raft_address]

    def scheduler_config(self) -> SchedulerConfig:
        return SchedulerConfig(self.scheduler_score, self.percentage_of_nodes_to_score)

    def rebalance_config(self) -> RebalanceConfig:
        """LowNodeUtilization only while the scheduler spreads (LeastAllocated): under MostAllocated it
        would move pods to idle nodes that the scheduler's next placements empty again."""
        return RebalanceConfig(self.rebalance_threshold_percent, self.rebalance_max_evictions,
                               low_utilization=self.scheduler_score != "MostAllocated")

    def raft_password(self) -> str | None:
        if not self.raft_password_file:
            return None
        return read_secret(self.raft_password_file, "Raft password")

    def tls_context(self) -> ssl.SSLContext:
        """The API's server context; refused without the files (no setting serves plain HTTP)."""
        names = ("tls_cert_file", "tls_private_key_file", "tls_ca_file")
        missing = [name for name in names if not getattr(self, name)]
        if missing:
            raise ValueError(f"{', '.join(missing)}: required: the API serves HTTPS only (a CA and each "
                             "master's certificate: ansible/site.yml makes them, or `berth-certs`)")
        if os.stat(self.tls_private_key_file or "").st_mode & 0o077:
            raise ValueError(f"tls_private_key_file: {self.tls_private_key_file} is readable by others "
                             "than its owner: it must be 0600")
        try:
            return server_context(self.tls_cert_file or "", self.tls_private_key_file or "")
        except ssl.SSLError as err:
            raise ValueError(f"tls_cert_file, tls_private_key_file: not a certificate and its key ({err})") \
                from None

    def encryption_keys(self) -> Keyring | None:
        return load_keyring(self.encryption_key_file) if self.encryption_key_file else None

    @classmethod
    def build(cls, file_values: dict[str, Any], overrides: dict[str, Any]) -> MasterConfig:
        values = merged_settings(cls, "master", file_values, overrides,
                                 ("name", "raft_address", "api_address", "data_dir", "tokens_file"))
        if isinstance(values.get("timings"), dict):
            known = {f.name for f in fields(RaftTimings)}
            unknown = sorted(set(values["timings"]) - known)
            if unknown:
                raise ValueError(f"timings.{unknown[0]}: not a setting (known: {', '.join(sorted(known))})")
            values["timings"] = RaftTimings(**values["timings"])
        values["peers"] = list(values.get("peers") or [])
        return cls(**values)
