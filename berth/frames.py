"""The framing of a session's output stream (exec, port-forward), shared by master and client.

One HTTP response carries a command's stdout, its stderr and, last, how it ended, so each
piece is a frame: one byte naming the stream, four bytes of length (big-endian), the bytes.
Kubernetes' exec protocols prefix a channel byte the same way; the length lets the frames ride
any chunking the HTTP server and proxies choose.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from enum import IntEnum
from typing import Any

HEADER = struct.Struct(">BI")
MAX_FRAME = 1 << 20


class Stream(IntEnum):
    KEEPALIVE = 0  # nothing: sent while the command is quiet, so the client's read timeout holds
    STDOUT = 1  # a terminal's whole output too; a port-forward's bytes from the pod
    STDERR = 2
    END = 3  # JSON: {"exitCode": N} or {"error": "why the session ended"}; always the last frame


class FrameError(ValueError):
    """The stream is not made of frames (a proxy in between, a truncated answer)."""


def frame(stream: Stream, data: bytes = b"") -> bytes:
    return HEADER.pack(stream, len(data)) + data


def end_frame(exit_code: int | None = None, error: str | None = None) -> bytes:
    body: dict[str, Any] = {"exitCode": exit_code} if error is None else {"error": error}
    return frame(Stream.END, json.dumps(body).encode())


class FrameReader:
    """Turns the bytes as they arrive, cut anywhere, back into whole frames."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> Iterator[tuple[Stream, bytes]]:
        self._buffer += data
        while len(self._buffer) >= HEADER.size:
            kind, length = HEADER.unpack_from(self._buffer)
            if kind not in Stream.__members__.values() or length > MAX_FRAME:
                raise FrameError(f"not a frame: stream {kind}, length {length}")
            if len(self._buffer) < HEADER.size + length:
                return
            body = bytes(self._buffer[HEADER.size:HEADER.size + length])
            del self._buffer[:HEADER.size + length]
            yield Stream(kind), body

    @property
    def pending(self) -> int:
        """Bytes of a frame not complete yet (non-zero at the end: the stream was cut)."""
        return len(self._buffer)
