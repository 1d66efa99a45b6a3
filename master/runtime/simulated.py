"""Simulated hosts: the runtime's SSH pool replaced, at its edge, by hosts held in memory.

For benchmarks of the whole control plane at a scale no machine can host (bench/cluster_scale.py:
10,000 pods on 1,000 nodes), a master started with `simulated_hosts: true` drives no host over
SSH: each command the runtime would run there (podman's, as master/runtime/driver.py writes them)
is answered from an in-memory table of that host's containers, which start at once. Everything
above the edge is the real one: the runtime's rounds, its planner, executor, fence and status
writes, so "Running" costs the control plane what it costs with real hosts, minus the engines.

Never for a real cluster (the config says so when it is set): nothing runs anywhere.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from berth.containers import POD_UID, SANDBOX
from master.runtime.ssh import CommandResult, Host, SshError

OK = b""


@dataclass
class _Container:
    id: str
    name: str
    labels: dict[str, str]
    state: str = "running"
    started_at: str = ""
    finished_at: str = ""

    def listed(self) -> dict[str, object]:
        """As `podman ps --format json` gives it (what PodmanDriver.parse_list reads)."""
        return {"Id": self.id, "Names": [self.name], "Labels": self.labels, "State": self.state,
                "ExitCode": 0, "StartedAt": self.started_at, "ExitedAt": self.finished_at}


@dataclass
class _Host:
    containers: dict[str, _Container] = field(default_factory=dict)  # by name
    lock: threading.Lock = field(default_factory=threading.Lock)


def _labels(argv: list[str]) -> dict[str, str]:
    pairs = (argv[i + 1].partition("=") for i, arg in enumerate(argv[:-1]) if arg == "--label")
    return {key: value for key, _, value in pairs}


def _option(argv: list[str], name: str) -> str | None:
    for i, arg in enumerate(argv[:-1]):
        if arg == name:
            return argv[i + 1]
    return None


def _operands(argv: list[str]) -> list[str]:
    """What follows `--` (the driver ends the options with it before every name)."""
    return argv[argv.index("--") + 1:] if "--" in argv else []


class SimulatedHosts:
    """SshPool's `run` and `sftp`, answered from memory for podman hosts (docker nodes are refused:
    one engine is enough to load the control plane)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hosts: dict[str, _Host] = {}
        self._ids = itertools.count(1)

    def _host(self, host: Host) -> _Host:
        with self._lock:
            return self._hosts.setdefault(host.name, _Host())

    def run(self, host: Host, argv: list[str], timeout: float | None = None,
            stdin: bytes | None = None) -> CommandResult:
        state = self._host(host)
        with state.lock:
            code, out, err = self._answer(state, argv)
        return CommandResult(tuple(argv), code, out, err)

    @contextlib.contextmanager
    def sftp(self, host: Host, timeout: float | None = None) -> Iterator[object]:
        raise SshError(f"{host}: simulated hosts take no files (no volumes in a simulated cluster)")
        yield  # pragma: no cover - a generator for contextmanager

    def close(self) -> None:
        with self._lock:
            self._hosts.clear()

    def _answer(self, host: _Host, argv: list[str]) -> tuple[int, bytes, bytes]:
        if argv[:1] != ["podman"]:
            if argv[:1] == ["sh"]:
                return 1, OK, b"simulated hosts run podman only"
            return 0, OK, OK  # volume_host.py and the like: nothing to set up in memory
        verb = argv[1:3] if argv[1:2] == ["pod"] else argv[1:2]
        names = _operands(argv)
        now = f"{time.time():.6f}"
        match verb:
            case ["ps"]:
                return 0, json.dumps([c.listed() for c in host.containers.values()]).encode(), OK
            case ["pod", "create"]:
                name = _option(argv, "--name") or ""
                host.containers[name] = _Container(f"{next(self._ids):064x}", name, _labels(argv), "created")
            case ["pod", "start"]:
                for c in self._of_pod(host, names[0]):
                    c.state, c.started_at = "running", now
            case ["pod", "stop"]:
                for c in self._of_pod(host, names[0]):
                    c.state, c.finished_at = "exited", now
            case ["pod", "rm"]:
                for c in self._of_pod(host, names[0]):
                    del host.containers[c.name]
            case ["pod", "inspect"]:
                sandbox = host.containers.get(names[0])
                return (0, sandbox.id.encode() + b"\n", OK) if sandbox else (125, OK, b"no such pod")
            case ["run"]:
                name = _option(argv, "--name") or ""
                host.containers[name] = _Container(f"{next(self._ids):064x}", name, _labels(argv),
                                                   "running", now)
            case ["rm"]:
                for name in names:
                    host.containers.pop(name, None)
            case ["start"] | ["restart"]:
                container = host.containers.get(names[0])
                if container is None:
                    return 125, OK, b"no such container"
                container.state, container.started_at = "running", now
            case ["inspect"]:
                return 0, b" 10.88.0.2\n", OK  # an address (FindAddress), or a pid: any non-empty word
        return 0, OK, OK

    @staticmethod
    def _of_pod(host: _Host, sandbox: str) -> list[_Container]:
        """A sandbox and every container of its pod (by the pod uid label the sandbox carries)."""
        made = host.containers.get(sandbox)
        if made is None:
            return []
        uid = made.labels.get(POD_UID)
        return [c for c in host.containers.values()
                if c is made or (uid and c.labels.get(POD_UID) == uid and c.labels.get(SANDBOX) != "true")]
