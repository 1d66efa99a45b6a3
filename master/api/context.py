"""What the API needs from its master, so the app factory takes one argument."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import current_app, g, request

from berth.clock import utc_now
from master.api.audit_log import AuditLog
from master.api.auth import Principal, TokenBook
from master.api.session_book import SessionBook
from master.api.streams import StreamSlots
from master.heartbeat_rate import DEFAULT_MAX_PER_SECOND
from master.observability import MasterMetrics
from master.peer_auth import SeenNonces
from master.rbac.cache import RbacCache
from master.reports.books import ReportBooks
from master.reports.relay import ReportRelay
from master.runtime.ssh import SshPool
from master.scheduler.rebalance import RebalanceConfig
from master.store.replicated import Store


def new_uid() -> str:
    return str(uuid.uuid4())


@dataclass
class ApiContext:
    store: Store
    tokens: TokenBook
    books: ReportBooks  # the agents' reports (the leader's count)
    max_body_bytes: int = 1 << 20
    max_object_bytes: int = 512 << 10  # an object as JSON, spec and status each (resources._check_size)
    streams: StreamSlots = field(default_factory=StreamSlots)  # watch, logs, exec (streams.py)
    sessions: SessionBook = field(default_factory=SessionBook)  # exec -it, port-forward (sessions.py)
    watch_bookmark_seconds: float = 5.0
    peer_apis: dict[str, str] = field(default_factory=dict)  # raft address -> API URL
    peer_ca_file: str | None = None  # what a peer's certificate is verified with (None: the system's CAs)
    peer_key: bytes | None = None  # signs master-to-master requests (peer_auth); None: no Raft password
    peer_nonces: SeenNonces = field(default_factory=SeenNonces)  # relayed batches already accepted
    relay: ReportRelay | None = None  # passes agents' reports to the leader while this master follows
    ssh: SshPool | None = None  # to the hosts, for logs and exec: not the runtime's pool (None: no key)
    max_heartbeats_per_second: float = DEFAULT_MAX_PER_SECOND  # what agents are told (heartbeat_rate.py)
    default_eviction_seconds: int = 5  # a pod's toleration of a lost node, unless it sets its own
    rebalance: RebalanceConfig = field(default_factory=RebalanceConfig)  # `/api/v1/rebalance`'s plan
    # where Services' addresses and node ports come from (master/objects/services.py)
    service_cidr: str = "10.96.0.0/16"
    service_node_port_range: str = "30000-32767"
    host_path_namespaces: list[str] = field(default_factory=list)  # volume_admission.py
    audit: AuditLog | None = None  # the requests kept (audit.py) go there; None: no audit log
    rbac: RbacCache | None = None  # the store's roles and bindings (None: the built-ins alone)
    metrics: MasterMetrics | None = None  # Prometheus' families (prometheus.py; None: no /metrics)
    now: Callable[[], str] = field(default=utc_now)
    uid: Callable[[], str] = field(default=new_uid)


def context() -> ApiContext:
    return current_app.extensions["berth"]


def principal() -> Principal:
    return g.principal


def client_gone() -> Callable[[], bool]:
    """For streams: true once the client closed its connection (waitress tells, as the server is
    made to in server.py; under another server it never turns true)."""
    return request.environ.get("waitress.client_disconnected") or (lambda: False)
