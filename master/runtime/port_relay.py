"""The host's half of a port-forward: a program that joins its standard streams to a TCP port.

This file's source is sent to the host as `python3 -c` (master/runtime/port_forward.py), so it
stays a self-contained script: the standard library only, nothing read at import.
"""

from __future__ import annotations

import os
import select
import socket
import sys


def relay(port: int) -> int:
    """Copy stdin to the port and the port to stdout until the pod's side closes; stdin's end
    half-closes the connection (as `socat` does), so a request-then-read client still works."""
    try:
        conn = socket.create_connection(("localhost", port), timeout=5)
    except OSError as err:
        print(f"cannot connect to port {port} in the pod: {err.strerror or err}", file=sys.stderr)
        return 1
    conn.settimeout(None)
    watched: list[object] = [sys.stdin.fileno(), conn]
    while conn in watched:
        for ready in select.select(watched, [], [])[0]:
            if ready is conn:
                data = conn.recv(65536)
                if not data:
                    return 0
                sys.stdout.buffer.write(data)
                sys.stdout.buffer.flush()
                continue
            data = os.read(sys.stdin.fileno(), 65536)
            if data:
                conn.sendall(data)
            else:
                conn.shutdown(socket.SHUT_WR)
                watched.remove(ready)
    return 0


if __name__ == "__main__":
    sys.exit(relay(int(sys.argv[1])))
