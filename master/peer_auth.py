"""Master-to-master requests signed with a key only the masters share.

Followers relay agents' heartbeats to the leader in batches; the leader must know
a batch comes from a master, not from anyone who can reach the API. The Raft
password is the secret every master already holds, so the key is derived from it
(never the password itself on the wire or in a log). The signature covers a
timestamp, a random nonce, the master it is sent to and the body. A batch is good
once, and only at that master: the leader refuses a timestamp more than MAX_SKEW_SECONDS
from its own clock, and a nonce it accepted within that window (a replayed batch could
otherwise keep a dead node Ready). A second signature, over all that but the body's
bytes (its length instead), lets the server refuse a forgery before reading the body.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading

SCHEME = "BerthPeer"
MAX_SKEW_SECONDS = 5.0  # masters' clocks may differ this much (NTP keeps them far closer)
_HEADER = re.compile(r"^BerthPeer ([0-9]{1,12}\.[0-9]{3}):([0-9a-f]{32}):([0-9a-f]{64}):([0-9a-f]{64})$")


def peer_key(raft_password: str) -> bytes:
    return hmac.new(raft_password.encode(), b"berth heartbeat relay v1", hashlib.sha256).digest()


def _mac(key: bytes, message: bytes) -> str:
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _head(key: bytes, timestamp: str, nonce: str, to: str, length: int) -> str:
    return _mac(key, f"head\n{timestamp}\n{nonce}\n{to}\n{length}".encode())


def _body(key: bytes, timestamp: str, nonce: str, to: str, body: bytes) -> str:
    return _mac(key, f"body\n{timestamp}\n{nonce}\n{to}\n".encode() + body)


def sign(key: bytes, body: bytes, now: float, to: str, nonce: str | None = None) -> str:
    """The Authorization header value for `body` sent at wall-clock time `now` to the master
    whose Raft address is `to` (a batch sent to one master is refused by the others). Two MACs:
    the head's (time, nonce, destination, length) is checked before the body is read."""
    timestamp, nonce = f"{now:.3f}", nonce or secrets.token_hex(16)
    return (f"{SCHEME} {timestamp}:{nonce}:{_head(key, timestamp, nonce, to, len(body))}:"
            f"{_body(key, timestamp, nonce, to, body)}")


def _parts(header: str | None, now: float) -> tuple[str, str, str, str] | None:
    """(timestamp, nonce, head MAC, body MAC) of a well-formed header made within
    MAX_SKEW_SECONDS of `now`."""
    match = _HEADER.match(header or "")
    if match is None or abs(now - float(match.group(1))) > MAX_SKEW_SECONDS:
        return None
    return match.group(1), match.group(2), match.group(3), match.group(4)


def verify_head(key: bytes, header: str | None, to: str, length: int, now: float) -> bool:
    """Worth reading the body for: fresh, for this master, and signed for a body this long."""
    parts = _parts(header, now)
    return parts is not None and hmac.compare_digest(parts[2], _head(key, parts[0], parts[1], to, length))


def verify(key: bytes, header: str | None, body: bytes, to: str, now: float) -> str | None:
    """The nonce, if `header` signs `body` for `to` with `key` within MAX_SKEW_SECONDS of `now`."""
    parts = _parts(header, now)
    if parts is None:
        return None
    timestamp, nonce, _, mac = parts
    return nonce if hmac.compare_digest(mac, _body(key, timestamp, nonce, to, body)) else None


class SeenNonces:
    """Nonces of accepted batches, each kept while its timestamp could still pass `verify`."""

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit  # followers send a few batches a second each: far below this
        self._lock = threading.Lock()
        self._until: dict[str, float] = {}
        self._prune_at = 1024

    def first_time(self, nonce: str, now: float) -> bool:
        with self._lock:
            if len(self._until) >= min(self._prune_at, self.limit):
                self._until = {n: t for n, t in self._until.items() if t >= now}
                self._prune_at = max(1024, 2 * len(self._until))
            if self._until.get(nonce, -1.0) >= now or len(self._until) >= self.limit:
                return False
            self._until[nonce] = now + 2 * MAX_SKEW_SECONDS
            return True
