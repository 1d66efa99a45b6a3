"""Followers answer heartbeats themselves and pass them to the leader in batches.

Only the leader's heartbeat book counts (liveness.py), yet agents talk to any
master. Forwarding every heartbeat as its own request cost a follower 3.1 ms and
the leader 1.4 ms each (bench/heartbeats.py); at 1,000 agents that left the
leader no time to answer. A follower instead keeps the latest heartbeat of each
node and sends them all every `period` as one signed request (peer_auth.py).
The delay this adds (a fraction of a second) is small against the node grace.

A follower that cannot hand its batches to the leader says so: while the last
flush failed, `accepting()` is false, the heartbeat API answers 503, and the
agent moves on to another master, instead of being told "ok" by a master whose
heartbeats reach nobody.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import requests

from master.api.peer_auth import sign
from master.liveness import HeartbeatBook
from master.store.replicated import Store

log = logging.getLogger(__name__)

RELAY_PATH = "/api/v1/internal/heartbeats"
MAX_BATCH = 5000  # heartbeats per request: ~0.5 MB, half the API's default body limit


def batch_body(pending: dict[str, tuple[float, dict[str, Any]]], now: float) -> bytes:
    """The request body for heartbeats received at monotonic times, as ages at `now`."""
    heartbeats = [{"node": node, "ageSeconds": round(max(0.0, now - at), 3), **usage}
                  for node, (at, usage) in pending.items()]
    return json.dumps({"heartbeats": heartbeats}, separators=(",", ":")).encode()


class HeartbeatRelay:
    def __init__(self, store: Store, book: HeartbeatBook, peer_apis: dict[str, str], key: bytes,
                 period: float = 0.2, timeout: float = 2.0, max_age: float = 5.0) -> None:
        """Heartbeats older than `max_age` when a flush finally succeeds are dropped, not sent."""
        self.store = store
        self.book = book
        self.peer_apis = peer_apis
        self.key = key
        self.period = period
        self.timeout = timeout
        self.max_age = max_age
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[float, dict[str, Any]]] = {}
        self._failing = False
        self._session = requests.Session()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat-relay", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.timeout + 1)
        self._session.close()

    def add(self, node: str, usage: dict[str, Any]) -> None:
        with self._lock:
            self._pending[node] = (time.monotonic(), usage)

    def accepting(self) -> bool:
        return not self._failing and self.store.leader() is not None

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self.flush()
            except Exception:  # a bad round must not end the loop
                log.exception("heartbeat relay round failed")

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        now = time.monotonic()
        pending = {node: beat for node, beat in pending.items() if now - beat[0] <= self.max_age}
        if self.store.is_leader():  # leadership came here: the book is local
            for node, (at, usage) in pending.items():
                self.book.record(node, usage, at)
            self._failing = False
            return
        if not pending and not self._failing:
            return  # nothing to say; a failing relay sends an empty batch to learn it is heard again
        names = list(pending)
        ok = True
        for start in range(0, max(1, len(names)), MAX_BATCH):
            chunk = {node: pending[node] for node in names[start:start + MAX_BATCH]}
            if not self._send(batch_body(chunk, time.monotonic())):
                ok = False
                self._keep(chunk)
        if ok != (not self._failing):
            log.log(logging.INFO if ok else logging.WARNING, "heartbeat relay to the leader %s",
                    "restored" if ok else "failing: answering heartbeats 503 until it works")
        self._failing = not ok

    def _send(self, body: bytes) -> bool:
        leader = self.store.leader() or ""
        url = self.peer_apis.get(leader)
        if url is None:
            return False
        try:
            answer = self._session.post(url + RELAY_PATH, data=body, timeout=self.timeout, headers={
                "Authorization": sign(self.key, body, time.time(), to=leader),
                "Content-Type": "application/json"})
        except requests.RequestException as err:
            log.debug("heartbeat relay to %s: %s", url, err)
            return False
        if answer.status_code != 200:
            log.debug("heartbeat relay to %s: HTTP %d %s", url, answer.status_code, answer.text[:200])
        return answer.status_code == 200

    def _keep(self, unsent: dict[str, tuple[float, dict[str, Any]]]) -> None:
        """Put back what a failed flush did not deliver, unless a newer heartbeat came in meanwhile."""
        with self._lock:
            for node, beat in unsent.items():
                if node not in self._pending:
                    self._pending[node] = beat
