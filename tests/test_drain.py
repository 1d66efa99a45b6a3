"""A stopping master's HTTP server (master/api/server.py's drain): the request under way is answered,
with `Connection: close`; no new connection is taken."""

from __future__ import annotations

import http.client
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from waitress import wasyncore

from berth import certs
from master.api.server import drain, make_server
from master.api.tls import server_context


def serve_until(server: Any, done: Callable[[], bool], seconds: float = 10.0) -> None:
    """The server's loop, run here in the test's thread, until `done()` (bounded)."""
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        wasyncore.loop(timeout=0.05, map=server._map, use_poll=True, count=1)


def test_the_request_under_way_is_answered_and_no_new_one_taken() -> None:
    entered, go_on = threading.Event(), threading.Event()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        entered.set()
        go_on.wait(10)
        start_response("201 Created", [("Content-Type", "text/plain")])
        return [b"made"]

    server = make_server(app, host="127.0.0.1", port=0, threads=2, connection_limit=10, per_address=10,
                         max_body_bytes=1000, admit=lambda *_: None)
    port = server.effective_port  # type: ignore[attr-defined]
    answers: list[tuple[int, str | None, bytes]] = []

    def write() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        connection.request("POST", "/things", body=b"{}")
        answer = connection.getresponse()
        answers.append((answer.status, answer.getheader("Connection"), answer.read()))

    client = threading.Thread(target=write, daemon=True)
    client.start()
    serve_until(server, entered.is_set)
    assert entered.is_set()
    threading.Timer(0.3, go_on.set).start()  # the app answers while the server drains
    drain(server, 10.0)
    client.join(timeout=10)
    assert answers == [(201, "close", b"made")]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    server.close()


def test_a_request_unread_when_the_drain_begins_is_answered_not_reset() -> None:
    """A client on a kept-alive connection sends its next request just as SIGTERM stops the server's
    loop: the bytes wait in the kernel, the connection looks idle. Closing it would reset a write whose
    client cannot know it was never read; it is read and answered instead, with `Connection: close`."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response("201 Created", [("Content-Type", "text/plain")])
        return [b"made " + body]

    server = make_server(app, host="127.0.0.1", port=0, threads=2, connection_limit=10, per_address=10,
                         max_body_bytes=1000, admit=lambda *_: None)
    port = server.effective_port  # type: ignore[attr-defined]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    first: list[tuple[int, str | None, bytes]] = []

    def ask_first() -> None:
        connection.request("POST", "/things", body=b"one")
        answer = connection.getresponse()
        first.append((answer.status, answer.getheader("Connection"), answer.read()))

    client = threading.Thread(target=ask_first, daemon=True)
    client.start()
    serve_until(server, lambda: not client.is_alive())
    assert first == [(201, None, b"made one")]  # kept alive
    connection.request("POST", "/things", body=b"two")  # sent: in the server's kernel, unread
    second: list[tuple[int, str | None, bytes]] = []

    def read_second() -> None:
        answer = connection.getresponse()
        second.append((answer.status, answer.getheader("Connection"), answer.read()))

    reader = threading.Thread(target=read_second, daemon=True)
    reader.start()
    drain(server, 10.0)
    reader.join(timeout=10)
    assert second == [(201, "close", b"made two")]
    server.close()


def test_an_idle_tls_connection_is_closed_so_that_its_client_sees_it(tmp_path: Path) -> None:
    """Idle, it was told nothing: were it to linger silently, its client would send the next request
    into a connection that drops it unread. Closed at once, the client (urllib3 looks before it
    reuses a connection) finds it closed and opens another."""
    certs.make_ca(tmp_path)
    certs.issue(tmp_path, "master", ["127.0.0.1"], tmp_path)
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    server = make_server(app, host="127.0.0.1", port=0, threads=2, connection_limit=10, per_address=10,
                         max_body_bytes=1000, admit=lambda *_: None,
                         tls=server_context(str(tmp_path / "master.crt"), str(tmp_path / "master.key")))
    port = server.effective_port  # type: ignore[attr-defined]
    client_tls = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
    connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=15, context=client_tls)
    answers: list[tuple[int, bytes]] = []

    def ask() -> None:
        connection.request("GET", "/")
        answer = connection.getresponse()
        answers.append((answer.status, answer.read()))

    client = threading.Thread(target=ask, daemon=True)
    client.start()
    serve_until(server, lambda: not client.is_alive())
    assert answers == [(200, b"ok")]  # and the connection kept alive, idle
    drain(server, 10.0)
    assert connection.sock is not None
    readable = select.select([connection.sock], [], [], 5)[0]
    assert readable, "the client cannot see that its idle connection was closed"
    server.close()
