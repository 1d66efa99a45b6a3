"""One SSH connection per host, reused for every command: the runtime's only way onto hosts.

As LAB-NOTES measured, a new connection costs ~65-110 ms and a new channel on a kept
connection ~2 ms once TCP_NODELAY is set, so the pool opens the socket itself, sets
TCP_NODELAY, and keeps the connection (with keepalives) until it fails. Host keys are
pinned to a node's name and address together: the key a host shows must be listed in
known_hosts under both (`h1,10.0.0.11 ssh-ed25519 ...`), so a Node whose address was
pointed at another host is refused there, never driven. Unknown keys are never added.
A host that cannot be reached is retried with exponential back-off, not on every call;
each host runs at most `per_host` commands at once (sshd's MaxSessions is 10).
"""

from __future__ import annotations

import contextlib
import logging
import select
import shlex
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import paramiko

log = logging.getLogger(__name__)

CHUNK = 65536


@dataclass(frozen=True)
class Host:
    name: str  # the Node's name: its key must be pinned under this name too
    address: str
    port: int = 22
    user: str = "root"

    def __str__(self) -> str:
        return f"{self.name} ({self.user}@{self.address}:{self.port})"

    @property
    def known_hosts_entry(self) -> str:
        """How known_hosts names the address (OpenSSH's form for a port other than 22)."""
        return self.address if self.port == 22 else f"[{self.address}]:{self.port}"


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    exit_status: int
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    def text(self) -> str:
        return self.stdout.decode(errors="replace")


def _what(argv: list[str]) -> str:
    """A command as logs name it: its program and subcommand, never its arguments (an env value
    may be a secret)."""
    return " ".join(argv[:2])


def _finished(channel: paramiko.Channel) -> bool:
    """Exited, and all its output sent: the exit status can come before the last bytes of stderr,
    the end-of-file only after them (or the channel closed)."""
    return channel.exit_status_ready() and bool(channel.eof_received or channel.closed)


class SshError(Exception):
    """The command's outcome is unknown or it never ran: the host could not be reached, refused
    us, or did not answer in time. (A command that ran and failed is a CommandResult.)"""


class HostKeyRefused(SshError):
    """The host's key is not the pinned one (or none is pinned)."""


class HostBusy(SshError):
    """Every session this pool may open on the host is in use (nothing was run)."""


class OpenChannel:
    """A running command's channel and the host session it holds; `close()` ends both, once."""

    def __init__(self, channel: paramiko.Channel, release: Callable[[], None]) -> None:
        self.channel = channel
        self._release: Callable[[], None] | None = release
        self._lock = threading.Lock()

    def read(self, wait: float) -> tuple[bytes, bytes, int | None]:
        """(stdout, stderr, exit status) of what came within `wait` seconds; the status only
        once the command ended and everything it wrote was read (-1: the host went away
        without telling one)."""
        channel = self.channel
        select.select([channel], [], [], wait)
        out, err = bytearray(), bytearray()
        while channel.recv_ready() and len(out) < CHUNK:
            out += channel.recv(CHUNK)
        while channel.recv_stderr_ready() and len(err) < CHUNK:
            err += channel.recv_stderr(CHUNK)
        drained = not channel.recv_ready() and not channel.recv_stderr_ready()
        if drained and (_finished(channel) or channel.closed):
            return bytes(out), bytes(err), channel.recv_exit_status()
        return bytes(out), bytes(err), None

    def close(self) -> None:
        with self._lock:
            release, self._release = self._release, None
        if release is not None:
            with contextlib.suppress(Exception):
                self.channel.close()
            release()


@dataclass
class _Connection:
    client: paramiko.SSHClient | None = None
    lock: threading.Lock | None = None
    slots: threading.BoundedSemaphore | None = None
    retry_at: float = 0.0
    backoff: float = 0.0
    last_error: str = ""


OpenedT = TypeVar("OpenedT")


def _sftp_client(transport: paramiko.Transport) -> paramiko.SFTPClient:
    sftp = paramiko.SFTPClient.from_transport(transport)
    if sftp is None:
        raise paramiko.SSHException("the host refused an SFTP session")
    return sftp


class SshPool:
    def __init__(self, key_file: str, known_hosts_file: str, per_host: int = 8,
                 connect_timeout: float = 5.0, command_timeout: float = 60.0, keepalive: int = 15,
                 max_backoff: float = 30.0, session_wait: float | None = None) -> None:
        """`session_wait`: how long a command waits for one of the host's `per_host` sessions
        (default: `command_timeout`) before HostBusy."""
        try:
            self.key = paramiko.PKey.from_path(key_file)
            paramiko.HostKeys(known_hosts_file)  # readable and well-formed now, not at the first host
        except paramiko.SSHException as err:
            raise ValueError(f"ssh_key_file {key_file}: {err}") from err
        self.known_hosts_file = known_hosts_file
        self.per_host = per_host
        self.session_wait = command_timeout if session_wait is None else session_wait
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self.keepalive = keepalive
        self.max_backoff = max_backoff
        self._lock = threading.Lock()
        self._hosts: dict[Host, _Connection] = {}

    # --- commands ------------------------------------------------------------------------
    def run(self, host: Host, argv: list[str], timeout: float | None = None,
            stdin: bytes | None = None) -> CommandResult:
        """Run `argv` (quoted with shlex.join: no argument is ever read by a shell) on `host`."""
        deadline = time.monotonic() + (timeout or self.command_timeout)
        with self._channel(host, argv) as channel:
            if stdin is not None:
                channel.sendall(stdin)
            channel.shutdown_write()
            out, err = bytearray(), bytearray()
            while not _finished(channel) or channel.recv_ready() or channel.recv_stderr_ready():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SshError(f"{host}: {_what(argv)} did not finish in time")
                select.select([channel], [], [], min(remaining, 1.0))
                while channel.recv_ready():
                    out += channel.recv(CHUNK)
                while channel.recv_stderr_ready():
                    err += channel.recv_stderr(CHUNK)
            return CommandResult(tuple(argv), channel.recv_exit_status(), bytes(out), bytes(err))

    def stream(self, host: Host, argv: list[str], idle_timeout: float = 3600.0,
               stopped: Callable[[], bool] = lambda: False) -> Iterator[bytes]:
        """The output (stdout and stderr merged) as it comes, until the command ends (`logs -f`),
        nothing comes for `idle_timeout`, or `stopped()` (asked every second: the client left).
        Closing the generator closes the channel, which ends the command on the host."""
        with self._channel(host, argv, combine_stderr=True) as channel:
            channel.shutdown_write()
            idle_until = time.monotonic() + idle_timeout
            while not stopped():
                left = idle_until - time.monotonic()
                if left <= 0:
                    return
                ready, _, _ = select.select([channel], [], [], min(left, 1.0))
                if not ready:
                    continue
                data = channel.recv(CHUNK)
                if not data:
                    return
                idle_until = time.monotonic() + idle_timeout
                yield data

    def open(self, host: Host, argv: list[str], pty: tuple[int, int] | None = None,
             combine_stderr: bool = False) -> OpenChannel:
        """A channel running `argv` that outlives this call (an interactive exec, a port-forward):
        it holds one of the host's sessions until its `close()`. `pty`: (rows, columns) of a
        terminal the host allocates first, as `ssh -t` does."""
        entry = self._slot(host)
        try:
            channel = self._opened(host, entry, "open a session",
                                   lambda t: t.open_session(timeout=self.connect_timeout))
            try:
                channel.set_combine_stderr(combine_stderr)
                if pty is not None:
                    channel.get_pty(term="xterm", width=pty[1], height=pty[0])
                channel.exec_command(shlex.join(argv))
            except (paramiko.SSHException, OSError, EOFError) as err:
                channel.close()
                self._drop(host, entry, f"{_what(argv)}: {err}")
                raise SshError(f"{host}: {err}") from err
        except BaseException:
            entry.slots.release()  # type: ignore[union-attr] - _slot made them
            raise
        return OpenChannel(channel, entry.slots.release)  # type: ignore[union-attr]

    @contextlib.contextmanager
    def sftp(self, host: Host, timeout: float | None = None) -> Iterator[paramiko.SFTPClient]:
        """An SFTP session on one of the host's sessions (a volume's files: their content goes as
        data on the channel, never on a command line). A lost connection is an SshError; the
        server's refusal of one operation stays the OSError paramiko raises."""
        entry = self._slot(host)
        try:
            sftp = self._opened(host, entry, "open SFTP", _sftp_client)
            sftp.get_channel().settimeout(timeout or self.command_timeout)  # type: ignore[union-attr]
            try:
                yield sftp
            except (paramiko.SSHException, EOFError, TimeoutError) as err:
                self._drop(host, entry, f"SFTP: {err}")
                raise SshError(f"{host}: SFTP: {err}") from err
            finally:
                sftp.close()
        finally:
            entry.slots.release()  # type: ignore[union-attr]

    def _slot(self, host: Host) -> _Connection:
        """The host's entry, one of its `per_host` sessions taken (the caller gives it back)."""
        entry = self._entry(host)
        assert entry.slots is not None
        if not entry.slots.acquire(timeout=self.session_wait):
            raise HostBusy(f"{host}: all {self.per_host} sessions busy for {self.session_wait:.0f}s")
        return entry

    def _opened(self, host: Host, entry: _Connection, what: str,
                make: Callable[[paramiko.Transport], OpenedT]) -> OpenedT:
        """`make(transport)` on the host's live connection; a failure drops the connection."""
        client = self._client(host, entry)
        try:
            transport = client.get_transport()
            if transport is None or not transport.is_active():
                raise paramiko.SSHException("the connection closed")
            return make(transport)
        except (paramiko.SSHException, OSError, EOFError) as err:
            self._drop(host, entry, f"{what}: {err}")
            raise SshError(f"{host}: {err}") from err

    @contextlib.contextmanager
    def _channel(self, host: Host, argv: list[str], combine_stderr: bool = False
                 ) -> Iterator[paramiko.Channel]:
        opened = self.open(host, argv, combine_stderr=combine_stderr)
        try:
            yield opened.channel
        except (paramiko.SSHException, OSError, EOFError) as err:
            self._drop(host, self._entry(host), f"{_what(argv)}: {err}")
            raise SshError(f"{host}: {err}") from err
        finally:
            opened.close()

    # --- connections -------------------------------------------------------------------------
    def _entry(self, host: Host) -> _Connection:
        with self._lock:
            entry = self._hosts.get(host)
            if entry is None:
                entry = self._hosts[host] = _Connection(lock=threading.Lock(),
                                                        slots=threading.BoundedSemaphore(self.per_host))
            return entry

    def _client(self, host: Host, entry: _Connection) -> paramiko.SSHClient:
        assert entry.lock is not None
        with entry.lock:
            if entry.client is not None:
                transport = entry.client.get_transport()
                if transport is not None and transport.is_active():
                    return entry.client
                self._close(entry)
            now = time.monotonic()
            if now < entry.retry_at:
                raise SshError(f"{host}: unreachable ({entry.last_error}); next try in "
                               f"{entry.retry_at - now:.1f}s")
            try:
                entry.client = self._connect(host)
            except HostKeyRefused as err:
                self._failed(entry, str(err))
                raise
            except (paramiko.SSHException, OSError, EOFError) as err:
                self._failed(entry, f"{err.__class__.__name__}: {err}")
                raise SshError(f"{host}: cannot connect: {entry.last_error}") from err
            entry.backoff, entry.retry_at, entry.last_error = 0.0, 0.0, ""
            return entry.client

    def _connect(self, host: Host) -> paramiko.SSHClient:
        sock = socket.create_connection((host.address, host.port), timeout=self.connect_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = paramiko.SSHClient()
        pinned = client.get_host_keys()
        for key_type, key in self._pinned_keys(host).items():
            pinned.add(host.known_hosts_entry, key_type, key)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            client.connect(host.address, port=host.port, username=host.user, pkey=self.key, sock=sock,
                           timeout=self.connect_timeout, banner_timeout=self.connect_timeout,
                           auth_timeout=self.connect_timeout, allow_agent=False, look_for_keys=False)
        except paramiko.BadHostKeyException as err:
            client.close()
            raise HostKeyRefused(f"{host}: host key does not match the pinned key: refused") from err
        except paramiko.SSHException as err:
            client.close()
            if "not found in known_hosts" in str(err):
                raise HostKeyRefused(f"{host}: no host key pinned for this name and address: "
                                     "refused") from err
            raise
        except BaseException:
            client.close()
            raise
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(self.keepalive)
        log.debug("connected to %s", host)
        return client

    def _pinned_keys(self, host: Host) -> dict[str, paramiko.PKey]:
        """The keys known_hosts lists for both the node's name and its address."""
        known = paramiko.HostKeys(self.known_hosts_file)
        by_address, by_name = known.lookup(host.known_hosts_entry), known.lookup(host.name)
        if by_address is None or by_name is None:
            return {}
        return {key_type: key for key_type, key in by_address.items() if by_name.get(key_type) == key}

    def _failed(self, entry: _Connection, error: str) -> None:
        entry.backoff = min(self.max_backoff, max(0.5, entry.backoff * 2))
        entry.retry_at = time.monotonic() + entry.backoff
        entry.last_error = error

    def _drop(self, host: Host, entry: _Connection, why: str) -> None:
        log.info("ssh %s: dropping the connection (%s)", host, why)
        assert entry.lock is not None
        with entry.lock:
            self._close(entry)

    @staticmethod
    def _close(entry: _Connection) -> None:
        if entry.client is not None:
            with contextlib.suppress(Exception):
                entry.client.close()
            entry.client = None

    def close(self) -> None:
        with self._lock:
            entries = list(self._hosts.values())
        for entry in entries:
            self._close(entry)
