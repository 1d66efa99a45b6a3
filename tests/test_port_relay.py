"""The host's half of a port-forward (master/runtime/port_relay.py), run as the host runs it:
`python3 -I -c SOURCE PORT`, against a server on loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading

from master.runtime.port_forward import RELAY_SOURCE, relay_argv


def _upper_server() -> tuple[socket.socket, threading.Thread]:
    """Answers what it reads, upper-cased, once the client half-closes; then closes."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(20)
            received = b""
            while chunk := conn.recv(65536):
                received += chunk
            conn.sendall(received.upper())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread


def test_the_relay_carries_bytes_both_ways_and_passes_on_the_end_of_input() -> None:
    listener, thread = _upper_server()
    with listener:
        port = listener.getsockname()[1]
        payload = b"hello relay " * 50_000  # 600 kB: more than one read in each direction
        done = subprocess.run([sys.executable, "-I", "-c", RELAY_SOURCE, str(port)], input=payload,
                              capture_output=True, timeout=60)
        thread.join(timeout=20)
    assert done.returncode == 0, done.stderr
    assert done.stdout == payload.upper()


def test_a_port_nothing_listens_on_is_a_clear_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = subprocess.run([sys.executable, "-I", "-c", RELAY_SOURCE, str(port)], input=b"",
                          capture_output=True, timeout=60)
    assert done.returncode == 1 and f"cannot connect to port {port} in the pod".encode() in done.stderr


def test_the_host_command_is_nsenter_then_the_relay_with_the_port_as_a_number() -> None:
    argv = relay_argv(4242, 8080)
    assert argv[:5] == ["nsenter", "--target=4242", "--net", "--", "python3"]
    assert argv[-1] == "8080" and argv[-2] == RELAY_SOURCE
