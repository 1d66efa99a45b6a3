"""What the API needs from its master, so the app factory takes one argument."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from flask import current_app, g

from master.api.auth import Principal, TokenBook
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
    watch_bookmark_seconds: float = 5.0
    heartbeats: HeartbeatBook = field(default_factory=HeartbeatBook)
    probes: ProbeBook = field(default_factory=ProbeBook)
    attention: Attention = field(default_factory=Attention)  # which hosts the runtime lists
    peer_apis: dict[str, str] = field(default_factory=dict)  # raft address -> API URL
    peer_key: bytes | None = None  # signs master-to-master requests (peer_auth); None: no Raft password
    relay: HeartbeatRelay | None = None  # passes heartbeats to the leader while this master follows
    ssh: SshPool | None = None  # to the hosts, for logs and exec (None: no ssh_key_file)
    now: Callable[[], str] = field(default=utc_now)
    uid: Callable[[], str] = field(default=new_uid)
    pod_revisions: PodRevisions = field(default_factory=PodRevisions)  # answered with each heartbeat

    def __post_init__(self) -> None:
        self.store.add_listener(self.pod_revisions.observe)


def context() -> ApiContext:
    return current_app.extensions["berth"]


def principal() -> Principal:
    return g.principal
