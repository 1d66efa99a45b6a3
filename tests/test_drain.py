"""A stopping master's HTTP server (master/api/server.py's drain): the request under way is answered,
with `Connection: close`; no new connection is taken."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from typing import Any

import pytest
from waitress import wasyncore

from master.api.server import drain, make_server


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
    deadline = time.monotonic() + 10
    while not entered.is_set() and time.monotonic() < deadline:  # the server's loop, here in this thread
        wasyncore.loop(timeout=0.05, map=server._map, use_poll=True, count=1)
    assert entered.is_set()
    threading.Timer(0.3, go_on.set).start()  # the app answers while the server drains
    drain(server, 10.0)
    client.join(timeout=10)
    assert answers == [(201, "close", b"made")]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    server.close()
