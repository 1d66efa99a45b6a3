"""The leader's memory of what SSH said about NotReady hosts: soft state, like heartbeats.

A node that stopped heartbeating is tried over SSH by the node-check loop
(master/controllers/node_check.py). Its verdict, kept here, tells the taint evictor whether
to hold the node's pods (the host answers and their containers run: the agent is what failed)
or to move them at once (the host does not answer either). A new term forgets every verdict:
the next check says again within a second or two.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

HOST_UNREACHABLE = "HostUnreachable"  # SSH fails: the host is gone (crashed, cut off)
AGENT_NOT_HEARTBEATING = "AgentNotHeartbeating"  # the host answers and its runtime lists its pods
RUNTIME_FAILING = "RuntimeFailing"  # the host answers, its container engine does not


@dataclass(frozen=True)
class HostVerdict:
    kind: str
    message: str
    alive: frozenset[str] = field(default_factory=frozenset)  # pods (uids) seen running there


class HostChecks:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._verdicts: dict[str, HostVerdict] = {}

    def record(self, node: str, verdict: HostVerdict) -> None:
        with self._lock:
            self._verdicts[node] = verdict

    def verdict(self, node: str) -> HostVerdict | None:
        with self._lock:
            return self._verdicts.get(node)

    def forget(self, node: str) -> None:
        with self._lock:
            self._verdicts.pop(node, None)

    def reset(self) -> None:
        with self._lock:
            self._verdicts.clear()
