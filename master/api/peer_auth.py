"""Master-to-master requests signed with a key only the masters share.

Followers relay agents' heartbeats to the leader in batches; the leader must know
a batch comes from a master, not from anyone who can reach the API. The Raft
password is the secret every master already holds, so the key is derived from it
(never the password itself on the wire or in a log). The signature covers a
timestamp and the body, so a captured batch is good for MAX_SKEW_SECONDS at most
(an agent's bearer token, over the same plain HTTP, is good until it is revoked).
"""

from __future__ import annotations

import hashlib
import hmac

SCHEME = "BerthPeer"
MAX_SKEW_SECONDS = 30.0  # masters' clocks may differ this much (NTP keeps them far closer)


def peer_key(raft_password: str) -> bytes:
    return hmac.new(raft_password.encode(), b"berth heartbeat relay v1", hashlib.sha256).digest()


def _mac(key: bytes, timestamp: str, body: bytes) -> str:
    return hmac.new(key, timestamp.encode() + b"\n" + body, hashlib.sha256).hexdigest()


def sign(key: bytes, body: bytes, now: float) -> str:
    """The Authorization header value for `body` sent at wall-clock time `now`."""
    timestamp = f"{now:.3f}"
    return f"{SCHEME} {timestamp}:{_mac(key, timestamp, body)}"


def verify(key: bytes, header: str | None, body: bytes, now: float) -> bool:
    """True if `header` signs `body` with `key` and was made within MAX_SKEW_SECONDS of `now`."""
    if not header or not header.startswith(SCHEME + " "):
        return False
    timestamp, _, mac = header.removeprefix(SCHEME + " ").partition(":")
    try:
        sent = float(timestamp)
    except ValueError:
        return False
    return abs(now - sent) <= MAX_SKEW_SECONDS and hmac.compare_digest(mac, _mac(key, timestamp, body))
