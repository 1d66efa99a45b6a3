"""Long requests (watch streams, pod logs, exec) hold a slot while they last.

Each holds one of waitress's threads from start to end. Unbounded, 64 watches from one
viewer took every thread, and heartbeats and `/healthz` went unanswered. The server runs
`api_threads + limit` threads and a long request must first take one of `limit` slots,
at most `per_principal` of them per token: short requests always find `api_threads`
threads free, and one token cannot take every slot from the others. Logs and exec also
name their host: one token holds at most `per_principal_host` of a host's SSH sessions
(the API's pool opens 8 per host), so others can still reach that host.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

from master.errors import ApiError


class StreamSlots:
    def __init__(self, limit: int = 64, per_principal: int = 16, per_principal_host: int = 4) -> None:
        self.limit = limit
        self.per_principal = per_principal
        self.per_principal_host = per_principal_host
        self._lock = threading.Lock()
        self._held: Counter[tuple[str, str]] = Counter()  # (principal, host or "") -> streams

    def take(self, principal: str, host: str = "") -> Callable[[], None]:
        """A slot for `principal` (on `host`, for logs and exec), or a 429; call what it returns
        once, when the request ends."""
        with self._lock:
            mine = sum(n for (who, _), n in self._held.items() if who == principal)
            if mine >= self.per_principal:
                raise ApiError(429, "TooManyRequests", f"{principal} has {self.per_principal} streams "
                               "open (watch, logs, exec): close one first")
            if host and self._held[(principal, host)] >= self.per_principal_host:
                raise ApiError(429, "TooManyRequests", f"{principal} has {self.per_principal_host} logs "
                               f"or exec open on node {host}: close one first")
            if sum(self._held.values()) >= self.limit:
                raise ApiError(429, "TooManyRequests", f"this master serves {self.limit} streams already; "
                               "retry later or use another master")
            self._held[(principal, host)] += 1
        released = [False]

        def release() -> None:
            with self._lock:
                if released[0]:
                    return
                released[0] = True
                self._held[(principal, host)] -= 1
                if self._held[(principal, host)] <= 0:
                    del self._held[(principal, host)]

        return release
