"""TLS inside waitress's own channel, so the door (server.py) keeps working on the decrypted stream.

waitress has no TLS. Rather than a proxy in front (the door would count the proxy's address, not
the client's) or another server (the door is waitress's parser), each accepted socket is wrapped
here, in waitress's event loop, with a non-blocking handshake: a slow or silent client holds up
only its own connection, never the loop. The connection counting, the gated parser and the audit
of refusals see the same channel, the same client address, and plain bytes.

- The first byte decides: a TLS handshake record (0x16) is wrapped; anything else (a plain-HTTP
  request) gets a fixed 400 that carries no API data, as kube-apiserver answers, and is closed.
- `ssl` objects are not safe to use from two threads at once, and waitress reads in its loop while
  a task thread may write a stream's output: one lock per channel orders every call on it (all of
  them non-blocking, so the lock is held for microseconds).
- OpenSSL may hold decrypted bytes that `poll()` cannot see (`pending()`): they are read at once.
- A connection waitress closes after its answer (a refused body's 413, an answer with `Connection:
  close`) first lingers: what the client still sends is read and dropped, up to `LINGER_BYTES` and
  `LINGER_SECONDS`, so a client still writing a refused body gets to read the answer; closed at once,
  its next write would meet a reset, and a TLS client then never reads the answer (plain TCP clients
  read it all the same, which urllib3 does for a broken pipe but not for TLS's EOF).
  A connection closed without an answer saying so (idle past waitress's timeout, or by a stopping
  master's drain) is closed at once: its client was told nothing, and a silent linger would let it
  send its next request into a connection that drops it unread, a write it then cannot know the
  fate of (a lost write at each master restart of a rolling upgrade, issue 19).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import time
from typing import Any

from waitress import wasyncore
from waitress.channel import HTTPChannel

log = logging.getLogger(__name__)
_TLS_HANDSHAKE = 0x16  # the content type of a TLS record that starts a handshake
LINGER_BYTES = 4 << 20  # beyond the largest body the API takes (max_body_bytes, 1 MiB by default)
LINGER_SECONDS = 5.0
PLAIN_HTTP_ANSWER = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                     b"Content-Length: 48\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")


def server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """TLS 1.2 and later, the `ssl` module's default ciphers; no client certificates (tokens are
    the API's authentication)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context


class TlsChannel(HTTPChannel):
    """waitress's channel over TLS; `tls_context` is set on the subclass `tls_channel` makes."""

    tls_context: ssl.SSLContext
    _state = "new"  # new -> handshake -> open -> lingering
    _answered_close = False  # an answer said `Connection: close`: linger when it is flushed

    def __init__(self, server: Any, sock: socket.socket, addr: Any, adj: Any, map: Any = None) -> None:
        self._tls_lock = threading.Lock()
        self._wants_write = False  # the handshake waits to send
        self._linger_bytes, self._linger_until = LINGER_BYTES, 0.0
        super().__init__(server, sock, addr, adj, map=map)

    # --- the event loop's side -------------------------------------------------------------------
    def readable(self) -> bool:
        if self._state == "lingering":
            return True
        return not self.will_close if self._state != "open" else bool(super().readable())

    def writable(self) -> bool:
        if self._state == "lingering":  # past its time: handle_write closes it (the loop wakes each second)
            return time.monotonic() > self._linger_until
        return (self._state == "handshake" and self._wants_write) or bool(super().writable())

    def handle_close(self) -> None:
        """waitress closes an open connection: it lingers first (see the module's docstring). As far as
        waitress and its task threads know, it is closed: buffers dropped, `connected` false. Closed
        without such an answer (idle), it closes at once, so its client sees the close."""
        if self._state != "open" or not self._answered_close:
            self._close_now()
            return
        with self.outbuf_lock:  # what waitress's own handle_close does, the socket kept to read from
            for outbuf in self.outbufs:
                with contextlib.suppress(Exception):
                    outbuf.close()
            self.total_outbufs_len = 0
            self.connected = False
            self.outbuf_lock.notify()
        self._state, self._linger_until = "lingering", time.monotonic() + LINGER_SECONDS

    def _close_now(self) -> None:
        if self._state == "lingering":
            wasyncore.dispatcher.close(self)  # its buffers are closed already
        else:
            super().handle_close()

    def handle_read(self) -> None:
        if self._state == "new" and not self._start():
            return
        if self._state == "handshake" and not self._handshake():
            return
        try:
            data = self._read()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError, InterruptedError):
            return
        except OSError as err:
            log.info("TLS read from %s failed, closing: %s", self.addr, err)
            self._close_now()
            return
        if not data:
            self._close_now()
        elif self._state == "lingering":
            self._linger_bytes -= len(data)
            if self._linger_bytes < 0 or time.monotonic() > self._linger_until:
                self._close_now()
        else:
            self.last_activity = time.time()
            self.received(data)

    def handle_write(self) -> None:
        if self._state == "lingering":
            self._close_now()
            return
        if self._state == "handshake" and not self.will_close:
            self._handshake()
            return
        if self.close_when_flushed:
            self._answered_close = True  # waitress closes once this answer, which said so, is sent
        super().handle_write()

    def _start(self) -> bool:
        """Peek at the first byte: a TLS client is wrapped, anything else answered and closed."""
        try:
            first = self.socket.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return False
        except OSError:
            self.handle_close()
            return False
        if not first:
            self.handle_close()
            return False
        if first[0] != _TLS_HANDSHAKE:
            self._refuse_plain()
            return False
        self.socket = self.tls_context.wrap_socket(self.socket, server_side=True,
                                                   do_handshake_on_connect=False)
        self._state = "handshake"
        return True

    def _refuse_plain(self) -> None:
        """The fixed answer, nothing read as a request. What the client sent is drained first: a
        socket closed with unread bytes resets the connection, and the client would never read why."""
        with contextlib.suppress(OSError):
            for _ in range(16):  # a request's head; a client that streams more is reset, as it may be
                if not self.socket.recv(65536):
                    break
        with contextlib.suppress(OSError):
            self.socket.send(PLAIN_HTTP_ANSWER)  # a few bytes into an empty send buffer
            self.socket.shutdown(socket.SHUT_WR)
        self.handle_close()

    def _handshake(self) -> bool:
        """One step of the handshake; True once it is done."""
        try:
            with self._tls_lock:
                self.socket.do_handshake()
        except (ssl.SSLWantReadError, BlockingIOError, InterruptedError):
            self._wants_write = False
            return False
        except ssl.SSLWantWriteError:
            self._wants_write = True
            return False
        except OSError as err:  # a client that does not trust us, an old protocol, a reset
            log.info("TLS handshake error from %s: %s", self.addr, err)  # as kube-apiserver logs it
            self._close_now()
            return False
        self._state, self._wants_write = "open", False
        return True

    def _read(self) -> bytes:
        with self._tls_lock:
            data = self.socket.recv(self.adj.recv_bytes)
            while data and self.socket.pending():  # decrypted already: poll() would not tell
                data += self.socket.recv(self.socket.pending())
        return data

    # --- both sides: the loop's flushes and the task threads' writes ------------------------------
    def send(self, data: Any, do_close: bool = True) -> int:
        if self._state != "open":
            return 0  # lingering: the answer went out before
        try:
            with self._tls_lock:
                return self.socket.send(data)
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
            return 0  # waitress offers the same bytes again, as OpenSSL wants
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError as err:
            log.info("TLS write to %s failed, closing: %s", self.addr, err)
            if do_close:
                self._close_now()
            return 0


def tls_channel(base: type[HTTPChannel], context: ssl.SSLContext) -> type[HTTPChannel]:
    """`base` (the door's channel) over TLS with `context`."""
    return type("Tls" + base.__name__, (TlsChannel, base), {"tls_context": context})
