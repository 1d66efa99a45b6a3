"""`berth port-forward`: a local port that leads to a port in a pod, through the master and
the pod's host (master/api/sessions.py), as `kubectl port-forward` does.

It listens on loopback only: anything else would open the pod to whoever reaches this
machine, with the token's rights. Each accepted connection gets its own session, so
connections are independent and one that fails says why without ending the others.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from dataclasses import dataclass

import click

from berth.cli.commands.common import State, namespace_option, pass_state
from berth.client import Client
from berth.errors import BerthError
from berth.pod_session import OutputReader, PodSession

LOOPBACK = {"localhost": "127.0.0.1", "127.0.0.1": "127.0.0.1", "::1": "::1"}
RECV_CHUNK = 64 * 1024


@dataclass(frozen=True)
class PortPair:
    local: int  # 0: one the system picks, as kubectl's ":REMOTE"
    remote: int


def parse_port_pair(text: str) -> PortPair:
    """`PORT` (the same on both sides), `LOCAL:REMOTE`, or `:REMOTE`."""
    local, sep, remote = text.rpartition(":")
    if not sep:
        local = remote
    try:
        pair = PortPair(int(local) if local else 0, int(remote))
    except ValueError:
        raise click.BadParameter(f"{text!r}: use PORT, LOCAL:REMOTE or :REMOTE") from None
    if not 0 <= pair.local <= 65535 or not 1 <= pair.remote <= 65535:
        raise click.BadParameter(f"{text!r}: ports are 1 to 65535")
    return pair


def _pump(conn: socket.socket, session: PodSession) -> None:
    def pod_side_ended() -> None:  # the local client reading to the end sees the end too
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_WR)

    back = OutputReader(session, conn.sendall, lambda data: sys.stderr.write(data.decode(errors="replace")),
                        pod_side_ended)
    back.start()
    try:
        while data := conn.recv(RECV_CHUNK):
            session.send(data)
        session.send(b"", eof=True)
    except (BerthError, OSError):
        pass  # the pod's side ended first: its reader says how
    back.join()
    if back.error is not None:
        click.echo(f"error: port-forward connection: {back.error}", err=True)


def _serve_connection(client: Client, conn: socket.socket, pod: str, pair: PortPair, namespace: str) -> None:
    with conn:
        try:
            session = client.port_forward_session(pod, pair.remote, namespace)
        except BerthError as err:
            click.echo(f"error: port-forward to {pair.remote}: {err}", err=True)
            return
        try:
            _pump(conn, session)
        finally:
            session.close()


def _listen(address: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((address, port))
    except OSError as err:
        listener.close()
        raise BerthError(f"cannot listen on {address}:{port}: {err.strerror or err}") from None
    listener.listen(64)
    return listener


def _accept_forever(state: State, listener: socket.socket, pod: str, pair: PortPair, namespace: str) -> None:
    local = listener.getsockname()[1]
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return  # closed: the command is ending
        click.echo(f"Handling connection for {local}")
        threading.Thread(target=_serve_connection, args=(state.client, conn, pod, pair, namespace),
                         daemon=True).start()


@click.command(name="port-forward")
@click.argument("pod")
@click.argument("ports", nargs=-1, required=True)
@click.option("--address", default="localhost", show_default=True,
              help="Where to listen: localhost, 127.0.0.1 or ::1 (loopback only).")
@namespace_option
@pass_state
def port_forward(state: State, pod: str, ports: tuple[str, ...], address: str, namespace: str | None) -> None:
    """Forward local ports to a pod's: berth port-forward pod/NAME [LOCAL:]REMOTE... (until Ctrl-C)."""
    name = pod.removeprefix("pod/").removeprefix("pods/")
    if address not in LOOPBACK:
        raise click.BadParameter(f"{address!r}: port-forward listens on loopback only "
                                 f"({', '.join(LOOPBACK)})", param_hint="--address")
    pairs = [parse_port_pair(p) for p in ports]
    ns = state.ns(namespace)
    found = state.client.get("Pod", name, ns)
    phase = (found.get("status") or {}).get("phase")
    if phase != "Running":
        raise BerthError(f"unable to forward port because pod is not running. Current status={phase}")
    for pair in pairs:
        state.client.check_port_forward(name, pair.remote, ns)
    listeners = [_listen(LOOPBACK[address], pair.local) for pair in pairs]
    for listener, pair in zip(listeners, pairs, strict=True):
        shown = LOOPBACK[address]
        click.echo(f"Forwarding from {shown}:{listener.getsockname()[1]} -> {pair.remote}")
        threading.Thread(target=_accept_forever, args=(state, listener, name, pair, ns), daemon=True).start()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        for listener in listeners:
            listener.close()
