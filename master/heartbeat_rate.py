"""How often agents heartbeat, and how long a node may be silent: both scaled with the cluster's size.

Every heartbeat costs the masters an HTTP request; at one per node per second, a few thousand
nodes take the masters' whole CPU. As Nomad's servers do (`max_heartbeats_per_second`, and the
TTL each client is told in every heartbeat's answer), the masters tell each agent in every
heartbeat's answer the interval to beat at (`heartbeatIntervalSeconds`) once the cluster is large
enough for it to matter: while `nodes / max_heartbeats_per_second` is at most a second (the
default 500: every cluster of up to 500 nodes) nothing is told and every agent keeps its own
`heartbeat_interval` (1 s), as before; beyond, the interval is stretched so the whole cluster
sends at most `max_heartbeats_per_second`, up to MAX_INTERVAL (Kubernetes' kubelet renews its
Lease every 10 s).

The grace before a silent node is NotReady stretches by the same factor: `node_grace_seconds`
is the grace at the 1 s interval (3 s: three beats missed), so at a 10 s interval it is 30 s
(Kubernetes: NotReady after 40 s). Followers answer heartbeats with the same rule from the same
replicated count of Nodes, so every master tells the same interval. When the interval shrinks
(nodes deleted), agents learn it only at their next beat, up to one old interval later: the
lifecycle keeps the longer grace for a while (GraceMemory) so that no node flaps meanwhile.
"""

from __future__ import annotations

import math

BASE_INTERVAL = 1.0  # seconds: the interval, and the unit of node_grace_seconds, in a small cluster
MAX_INTERVAL = 10.0  # seconds: the most an agent is told to wait between two beats
DEFAULT_MAX_PER_SECOND = 500.0  # max_heartbeats_per_second's default


def heartbeat_interval(nodes: int, max_per_second: float) -> float:
    """Seconds between one agent's beats so that `nodes` agents send at most `max_per_second` in
    all: BASE_INTERVAL at least, MAX_INTERVAL at most, rounded up to a tenth of a second."""
    wanted = math.ceil(max(0, nodes) / max_per_second * 10 - 1e-9) / 10
    return min(MAX_INTERVAL, max(BASE_INTERVAL, wanted))


def interval_to_tell(nodes: int, max_per_second: float) -> float | None:
    """What a heartbeat's answer tells: the stretched interval, or None while it is BASE_INTERVAL
    (a small cluster's agents keep their own configured interval, as before)."""
    interval = heartbeat_interval(nodes, max_per_second)
    return interval if interval > BASE_INTERVAL else None


def node_grace(interval: float, base_grace: float) -> float:
    """Seconds of silence before a node is NotReady at this interval: `base_grace` (node_grace_seconds,
    the grace at the 1 s interval) stretched by the same factor as the interval."""
    return base_grace * interval / BASE_INTERVAL


class GraceMemory:
    """The grace the node lifecycle applies: the wanted one at once when it grows, but a shorter one
    only once the longer has been in force for a whole (longer) grace since it was last wanted,
    so an agent still beating at the old, longer interval is never taken for silent."""

    def __init__(self) -> None:
        self._grace: float | None = None
        self._wanted_at = 0.0  # when the grace in force was last the wanted one

    def grace(self, wanted: float, now: float) -> float:
        if self._grace is None or wanted >= self._grace or now - self._wanted_at > self._grace:
            self._grace = wanted
            self._wanted_at = now
        return self._grace
