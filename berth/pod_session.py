"""A session's client side (`exec` with input or a terminal, `port-forward`), over plain HTTP.

The master holds the command's SSH channel; this side reads its framed output with one
streaming GET and sends input with short POSTs, all to the master that opened it (another
master has never heard of it). See master/api/sessions.py for the server's half.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import requests
import urllib3.exceptions

from berth.errors import BerthError, Unreachable
from berth.frames import FrameError, FrameReader, Stream

if TYPE_CHECKING:
    from berth.client import Client

READ_TIMEOUT = 60.0  # the master sends a keepalive frame after 10 s of quiet
_READ_CHUNK = 64 * 1024


class SessionEnded(BerthError):
    """The session ended without an exit code: the master or the host went away."""


class PodSession:
    def __init__(self, client: Client, server: str, session_id: str) -> None:
        self.client = client
        self.server = server
        self.id = session_id
        self.path = f"/api/v1/sessions/{session_id}"
        self.exit_code: int | None = None  # once output() reached the end

    def output(self) -> Iterator[tuple[Stream, bytes]]:
        """(STDOUT or STDERR, bytes) as the command writes them, until it ends: then
        `exit_code` holds its status. Raises SessionEnded if the stream stops without one."""
        response = self.client.request("GET", f"{self.path}/output", stream=True, server=self.server,
                                       read_timeout=READ_TIMEOUT)
        reader = FrameReader()
        try:
            with response:
                while True:
                    data = response.raw.read1(_READ_CHUNK)
                    if not data:
                        break
                    for stream, body in reader.feed(data):
                        if stream is Stream.END:
                            self.exit_code = self._exit_code(body)
                            return
                        if stream is not Stream.KEEPALIVE:
                            yield stream, body
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as err:
            raise SessionEnded(f"the session's stream from {self.server} broke ({err})") from None
        except FrameError as err:
            raise SessionEnded(f"{self.server} sent something that is not a session stream: {err}") from None
        raise SessionEnded(f"the session's stream from {self.server} ended without an exit code")

    @staticmethod
    def _exit_code(body: bytes) -> int:
        end: dict[str, Any] = json.loads(body)
        if "error" in end:
            raise SessionEnded(str(end["error"]))
        return int(end["exitCode"])

    def send(self, data: bytes, eof: bool = False) -> None:
        try:
            self.client.request("POST", f"{self.path}/input", data=data, server=self.server,
                                content_type="application/octet-stream", replayable=False,
                                params={"eof": "true" if eof else None})
        except Unreachable as err:
            raise SessionEnded(str(err)) from None

    def resize(self, rows: int, cols: int) -> None:
        self.client.request("POST", f"{self.path}/resize", json_body={"rows": rows, "cols": cols},
                            server=self.server, replayable=False)

    def close(self) -> None:
        """Ends the command if it still runs; a session already gone is no error."""
        with contextlib.suppress(BerthError):
            self.client.request("DELETE", self.path, server=self.server, replayable=False)


class OutputReader(threading.Thread):
    """Reads a session's output beside the thread that sends its input (reading must start at
    once: the master closes a session nobody reads). Each frame's bytes go to `on_stdout` or
    `on_stderr`; an error that ends the reading is kept in `error` for the caller's thread;
    `on_end` runs when the reading ends, however it ends."""

    def __init__(self, session: PodSession, on_stdout: Callable[[bytes], object],
                 on_stderr: Callable[[bytes], object], on_end: Callable[[], object] = lambda: None) -> None:
        super().__init__(daemon=True)
        self.session = session
        self.sinks = {Stream.STDOUT: on_stdout, Stream.STDERR: on_stderr}
        self.on_end = on_end
        self.error: BaseException | None = None
        self.done = threading.Event()

    def run(self) -> None:
        try:
            for stream, data in self.session.output():
                self.sinks[stream](data)
        except BaseException as err:  # the caller's thread decides what it means
            self.error = err
        finally:
            self.done.set()
            self.on_end()
