"""The command that carries a port-forward on the pod's host.

Kubernetes' kubelet enters the pod's network namespace and runs socat there, so a port-forward
reaches `localhost:PORT` as the pod's own processes see it (a server bound to 127.0.0.1 in the
pod included). Berth does the same with what every host already has: `nsenter` and python3
(Ansible needs python3 on the hosts it deploys), running port_relay.py's source. The user's
port is a number in the argv, never a shell word.
"""

from __future__ import annotations

from pathlib import Path

RELAY_SOURCE = Path(__file__).with_name("port_relay.py").read_text()


def python_argv(source: str, args: list[str]) -> list[str]:
    """A standard-library program of Berth's own, run by the host's python3 in isolated mode (no
    user site, no environment): nothing is installed on hosts for it."""
    return ["python3", "-I", "-c", source, *args]


def relay_argv(pid: int, port: int) -> list[str]:
    """Enter the network namespace of the process `pid` (a container's) and relay to `port`."""
    return ["nsenter", f"--target={pid}", "--net", "--", *python_argv(RELAY_SOURCE, [str(port)])]
