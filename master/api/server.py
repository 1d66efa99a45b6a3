"""The HTTP server in front of the app: waitress, with a door that turns requests away early.

waitress reads a request's whole body before the app sees it, so an app that checks the
token first still let anyone make a master read 200 MB into a temporary file, and 4,200
half-sent requests from one address kept `/healthz` from answering. Here the door acts
while waitress parses: once the headers are in, `admit` decides on the path and the
Authorization header, and a refused request is answered at once (JSON, as every API error)
without its body ever being read; a body longer than the API takes is refused the same way;
and one client address holds at most `per_address` connections (behind a reverse proxy,
which real deployments should use for the world, the proxy's address is the one counted).
What the door refuses never reaches the app, so the door tells `on_refused` (the audit log).
With a TLS context, each connection is TLS inside waitress's channel (tls.py), beneath the door.
"""

from __future__ import annotations

import json
import logging
import select
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import BaseWSGIServer, create_server
from waitress.task import ErrorTask
from waitress.utilities import Error, RequestEntityTooLarge

from master.api.tls import tls_channel
from master.errors import ApiError

log = logging.getLogger(__name__)
Admit = Callable[[str, str | None, int], ApiError | None]  # (path, Authorization, length) -> refusal


@dataclass(frozen=True)
class Turned:
    """A request the door answered itself (a refusal, or waitress's own error), without the app."""

    method: str
    path: str
    query: str  # as sent, undecoded
    status: int
    address: str
    # to know who sent a body too long (413): the token passed, the body did not; never recorded
    authorization: str | None = field(default=None, repr=False)


OnRefused = Callable[[Turned], str | None]  # -> an Audit-Id for the answer's headers, or None


class _JsonError(Error):
    """waitress's own error answer, in the API's JSON shape."""

    def __init__(self, err: ApiError) -> None:
        super().__init__(err.message)
        self.code = err.status
        self.reason = HTTPStatus(err.status).phrase
        self.api_error = err

    def to_response(self, ident: str | None = None) -> tuple[str, list[tuple[str, str]], bytes]:
        body = json.dumps(self.api_error.body()).encode()
        return f"{self.code} {self.reason}", [("Content-Type", "application/json")], body


def _as_json(error: Error) -> _JsonError:
    field = "body" if isinstance(error, RequestEntityTooLarge) else None
    return _JsonError(ApiError(error.code, error.reason.replace(" ", ""), str(error.body), field))


def _parser_class(admit: Admit, max_body_bytes: int, draining: threading.Event) -> type[HTTPRequestParser]:
    class GatedParser(HTTPRequestParser):
        def parse_header(self, header_plus: bytes) -> None:
            super().parse_header(header_plus)
            if draining.is_set():
                self.headers["CONNECTION"] = "close"  # answered, then closed: its client goes elsewhere next
            refusal = admit(self.path, self.headers.get("AUTHORIZATION"), self.content_length)
            if refusal is None and self.content_length > max_body_bytes:
                refusal = ApiError(413, "RequestEntityTooLarge",
                                   f"the body is longer than {max_body_bytes} bytes", "body")
            if refusal is not None:
                self.error = _JsonError(refusal)
                self.completed = True
                self.content_length = 0  # so waitress adds no error of its own over this one
                self.expect_continue = False  # a "100 Continue" would invite the body, reopen the request

        def received(self, data: bytes) -> int:
            consumed = super().received(data)
            if self.error is not None and not isinstance(self.error, _JsonError):
                self.error = _as_json(self.error)  # waitress's own: a chunked body too long, bad headers
            if isinstance(self.error, _JsonError):
                return len(data)  # what came with the headers is dropped, never parsed as a request
            return consumed

    return GatedParser


class _AddressCounter:
    def __init__(self, per_address: int) -> None:
        self.per_address = per_address
        self._lock = threading.Lock()
        self._open: Counter[str] = Counter()
        self._refused: Counter[str] = Counter()

    def take(self, address: str) -> bool:
        with self._lock:
            if self._open[address] < self.per_address:
                self._open[address] += 1
                return True
            self._refused[address] += 1
            refused = self._refused[address]
        if refused & (refused - 1) == 0:  # the 1st, 2nd, 4th, 8th ...: a flood logs a few lines
            log.warning("refused %d connection(s) from %s: it holds %d already", refused, address,
                        self.per_address)
        return False

    def give_back(self, address: str) -> None:
        with self._lock:
            self._open[address] -= 1
            if self._open[address] <= 0:
                del self._open[address]


def _address(addr: Any) -> str:
    return str(addr[0]) if isinstance(addr, tuple) else str(addr)


def _error_task(on_refused: OnRefused | None) -> type[ErrorTask]:
    class DoorAnswer(ErrorTask):
        def execute(self) -> None:
            error = self.request.error
            if on_refused is not None and isinstance(error, _JsonError):
                try:
                    request = self.request  # what the parser got of it (nothing, past a bad header)
                    audit_id = on_refused(Turned(getattr(request, "command", None) or "",
                                                 getattr(request, "path", None) or "",
                                                 getattr(request, "query", None) or "", error.code,
                                                 _address(self.channel.addr),
                                                 request.headers.get("AUTHORIZATION")))
                except Exception:  # the answer goes out whatever its audit does
                    log.exception("the door's refusal could not be told")
                    audit_id = None
                if audit_id:
                    self.response_headers.append(("Audit-Id", audit_id))
            super().execute()

    return DoorAnswer


def _channel_factory(parser: type[HTTPRequestParser], counter: _AddressCounter,
                     error_task: type[ErrorTask], tls: ssl.SSLContext | None) -> Callable[..., None]:
    class GatedChannel(HTTPChannel):
        parser_class = parser
        error_task_class = error_task
        counted: str | None = None  # the address this connection counts against, until it closes

        def del_channel(self, map: Any = None) -> None:
            super().del_channel(map)
            if self.counted is not None:
                counter.give_back(self.counted)
                self.counted = None

    channel_class = GatedChannel if tls is None else tls_channel(GatedChannel, tls)

    def accept(server: BaseWSGIServer, sock: Any, addr: Any, adj: Any, map: Any = None) -> None:
        address = _address(addr)
        if not counter.take(address):
            sock.close()
            return
        try:
            channel = channel_class(server, sock, addr, adj, map=map)
        except BaseException:
            counter.give_back(address)
            raise
        channel.counted = address

    return accept


def drain(server: BaseWSGIServer, seconds: float) -> None:
    """A stopping master (SIGTERM) takes no new connection but finishes the requests under way, as
    kube-apiserver does, for up to `seconds`: a write it was answering is answered, not cut (its client
    could not know whether it was applied), with `Connection: close` (waitress's own answer to a request
    that asked so), so its client sends the next one afresh, to a master that takes it. So is a request
    that comes meanwhile on a kept-alive connection. A connection is closed as idle only once nothing
    waits to be read on it: the signal stopped the loop, so a request may sit unread in the kernel,
    and closing over it would reset a write its client cannot know the fate of. Streams are cut at
    the end. Runs in the thread of the server's loop."""
    _draining(server).set()
    wasyncore.dispatcher.close(server)  # the listening socket; the trigger still wakes the loop
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        busy = False
        for channel in list(server._map.values()):
            if not isinstance(channel, HTTPChannel):
                continue
            if (channel.request is None and not channel.requests and not channel.total_outbufs_len
                    and not _unread(channel)):
                channel.handle_close()
                continue
            busy = True
            for request in list(channel.requests):
                request.headers["CONNECTION"] = "close"  # parsed before the drain (read with its head)
        if not busy:
            return
        wasyncore.loop(timeout=0.05, map=server._map, use_poll=True, count=1)


def _unread(channel: HTTPChannel) -> bool:
    """Whether bytes (or the peer's close) wait on the channel's socket, in the kernel or, under TLS,
    decrypted already in OpenSSL (which poll() does not see)."""
    sock = channel.socket
    pending = getattr(sock, "pending", None)
    if pending is not None and pending():
        return True
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))


def _draining(server: BaseWSGIServer) -> threading.Event:
    return server.draining  # type: ignore[attr-defined,no-any-return] - set by make_server


def make_server(app: Any, *, host: str, port: int, threads: int, connection_limit: int, per_address: int,
                max_body_bytes: int, admit: Admit, on_refused: OnRefused | None = None,
                tls: ssl.SSLContext | None = None) -> BaseWSGIServer:
    """`tls`: the master's certificate (master/main.py always gives one: the API is HTTPS only);
    None serves plain HTTP, which only benchmarks use, as the reference TLS is measured against."""
    # poll(), not select(): select() cannot watch a descriptor numbered 1024 or above
    server = create_server(app, host=host, port=port, threads=threads, connection_limit=connection_limit,
                           asyncore_use_poll=True, channel_timeout=120, ident="berth",
                           max_request_body_size=max_body_bytes + 1,
                           # keeps reading while a request runs, so a stream learns at once that its
                           # client went away (environ["waitress.client_disconnected"]) and frees its slot
                           channel_request_lookahead=1)
    draining = threading.Event()  # drain(): every request is answered with `Connection: close`
    server.draining = draining  # type: ignore[attr-defined]
    server.channel_class = _channel_factory(_parser_class(admit, max_body_bytes, draining),  # type: ignore[assignment]
                                            _AddressCounter(per_address), _error_task(on_refused), tls)
    return server
