"""What the API needs from its master, so the app factory takes one argument."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from flask import current_app, g, request

from master.api.auth import Principal, TokenBook
from master.api.peer_auth import SeenNonces
from master.api.streams import StreamSlots
from master.heartbeat_relay import HeartbeatRelay
from master.liveness import HeartbeatBook
from master.pod_revisions import PodRevisions
from master.probes import ProbeBook
from master.runtime.attention import Attention
from master.runtime.ssh import SshPool
from master.store.replicated import Store


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_uid() -> str:
    return str(uuid.uuid4())


@dataclass
class ApiContext:
    store: Store
    tokens: TokenBook
    max_body_bytes: int = 1 << 20
    max_object_bytes: int = 512 << 10  # an object as JSON, spec and status each (resources._check_size)
    streams: StreamSlots = field(default_factory=StreamSlots)  # watch, logs, exec (streams.py)
    watch_bookmark_seconds: float = 5.0
    heartbeats: HeartbeatBook = field(default_factory=HeartbeatBook)
    probes: ProbeBook = field(default_factory=ProbeBook)
    attention: Attention = field(default_factory=Attention)  # which hosts the runtime lists
    peer_apis: dict[str, str] = field(default_factory=dict)  # raft address -> API URL
    peer_key: bytes | None = None  # signs master-to-master requests (peer_auth); None: no Raft password
    peer_nonces: SeenNonces = field(default_factory=SeenNonces)  # relayed batches already accepted
    relay: HeartbeatRelay | None = None  # passes heartbeats to the leader while this master follows
    ssh: SshPool | None = None  # to the hosts, for logs and exec: not the runtime's pool (None: no key)
    now: Callable[[], str] = field(default=utc_now)
    uid: Callable[[], str] = field(default=new_uid)
    pod_revisions: PodRevisions = field(default_factory=PodRevisions)  # answered with each heartbeat

    def __post_init__(self) -> None:
        self.store.add_listener(self.pod_revisions.observe)


def context() -> ApiContext:
    return current_app.extensions["berth"]


def principal() -> Principal:
    return g.principal


def client_gone() -> Callable[[], bool]:
    """For streams: true once the client closed its connection (waitress tells, as the server is
    made to in server.py; under another server it never turns true)."""
    return request.environ.get("waitress.client_disconnected") or (lambda: False)
