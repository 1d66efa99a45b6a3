"""The sessions this master holds open (exec with a terminal, port-forward), by id.

An id is 192 random bits, and a session answers only to the token that opened it: anyone
else, and any other master, is told it does not exist. A session nobody reads within
`attach_seconds` of its start is closed, so an abandoned one gives its host session back.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from master.errors import ApiError
from master.runtime.ssh import OpenChannel

SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{32}$")


@dataclass
class Session:
    id: str
    owner: str
    opened: OpenChannel
    tty: bool
    stdin: bool
    release_slot: Callable[[], None]
    attached: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class SessionBook:
    """This master's open sessions, by id."""

    def __init__(self, attach_seconds: float = 30.0) -> None:
        self.attach_seconds = attach_seconds
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}

    def add(self, owner: str, opened: OpenChannel, *, tty: bool, stdin: bool,
            release_slot: Callable[[], None]) -> Session:
        session = Session(secrets.token_urlsafe(24), owner, opened, tty, stdin, release_slot)
        with self._lock:
            self._sessions[session.id] = session
        timer = threading.Timer(self.attach_seconds, self._unread, [session.id])
        timer.daemon = True
        timer.start()
        return session

    def find(self, session_id: str, owner: str) -> Session:
        with self._lock:
            session = self._sessions.get(session_id) if SESSION_ID.match(session_id) else None
        if session is None or not secrets.compare_digest(session.owner, owner):
            raise ApiError(404, "NotFound", f"no session {session_id} on this master (it ended, "
                           "or another master holds it)", None)
        return session

    def attach(self, session_id: str, owner: str) -> Session:
        session = self.find(session_id, owner)
        with session.lock:
            if session.attached:
                raise ApiError(409, "Conflict", f"session {session_id} has a reader already", None)
            session.attached = True
        return session

    def close(self, session_id: str) -> None:
        with self._lock:
            session = self._sessions.pop(session_id, None)
        if session is not None:
            session.opened.close()  # closing the channel ends the command on the host
            session.release_slot()

    def close_all(self) -> None:
        with self._lock:
            ids = list(self._sessions)
        for session_id in ids:
            self.close(session_id)

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def _unread(self, session_id: str) -> None:
        with self._lock:
            session = self._sessions.get(session_id)
        if session is not None and not session.attached:
            self.close(session_id)
