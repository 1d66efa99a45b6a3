"""Real master processes on loopback for the integration tests and benchmarks.

Each cluster gets its own ports and data dirs; every process it starts is
killed when it is closed (and at interpreter exit), so a failed test leaves
nothing running.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

from berth.lab import hosts as lab_hosts
from berth.lab.hosts import Lab
from berth.lab.masters import MasterSpec, start_master, write_cluster
from master.liveness import with_ready

TOKENS = {
    "admin": ("alice", "admin-token-alice"),
    "operator": ("olga", "operator-token-olga"),
    "viewer": ("victor", "viewer-token-victor"),
    "agent": ("h1", "agent-token-h1"),
}
GI = 2**30
_LIVE: set[subprocess.Popen] = set()


def _kill_all() -> None:
    for proc in list(_LIVE):
        with contextlib.suppress(ProcessLookupError):
            proc.kill()


atexit.register(_kill_all)


def wait_until(predicate, timeout: float, interval: float = 0.05, what: str = "condition") -> Any:
    """Poll `predicate` until it returns a truthy value; bounded in time."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (requests.RequestException, KeyError, ValueError) as err:
            last_error = err
        time.sleep(interval)
    raise TimeoutError(f"{what} not reached in {timeout:.0f}s (last error: {last_error})")


class Master:
    def __init__(self, spec: MasterSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.api_url = spec.api_url
        self.log_file = spec.log_file
        self.proc: subprocess.Popen | None = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class MasterCluster:
    def __init__(self, root: Path, size: int = 3, python: str = sys.executable,
                 extra_settings: dict[str, Any] | None = None) -> None:
        self.root = root
        self.python = python
        specs = write_cluster(root, size, TOKENS, extra_settings)
        self.masters = [Master(spec) for spec in specs]

    # --- processes ---------------------------------------------------------------------
    def start(self, index: int) -> None:
        master = self.masters[index]
        assert not master.alive, f"{master.name} is already running"
        master.proc = start_master(master.spec, self.python)
        _LIVE.add(master.proc)

    def start_all(self) -> None:
        for i in range(len(self.masters)):
            self.start(i)

    def kill(self, index: int, sig: int = signal.SIGKILL) -> None:
        master = self.masters[index]
        if master.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            master.proc.send_signal(sig)
        master.proc.wait(timeout=30)
        _LIVE.discard(master.proc)
        master.proc = None

    def close(self) -> None:
        for i in range(len(self.masters)):
            self.kill(i)

    # --- state -------------------------------------------------------------------------
    def status(self, index: int, timeout: float = 2.0) -> dict[str, Any]:
        return self.session("admin").get(f"{self.masters[index].api_url}/api/v1/cluster",
                                         timeout=timeout).json()

    def wait_ready(self, indexes: list[int] | None = None, timeout: float = 30.0) -> None:
        for i in indexes if indexes is not None else range(len(self.masters)):
            url = self.masters[i].api_url + "/readyz"
            wait_until(lambda url=url: requests.get(url, timeout=1).status_code == 200, timeout,
                       what=f"{url} ready")

    def leader_index(self, timeout: float = 15.0) -> int:
        def find() -> int | None:
            for i, master in enumerate(self.masters):
                if master.alive:
                    with contextlib.suppress(requests.RequestException):
                        if self.status(i, timeout=1)["state"] == "leader":
                            return i + 1
            return None
        return wait_until(find, timeout, what="a leader") - 1

    def session(self, role: str = "admin") -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {TOKENS[role][1]}"
        return session

    def url(self, index: int, path: str) -> str:
        return self.masters[index].api_url + path

    def logs(self) -> str:
        return "\n".join(f"--- {m.name}\n{m.log_file.read_text(errors='replace')[-4000:]}"
                         for m in self.masters if m.log_file.exists())


def add_node(cluster: MasterCluster, name: str, cpu: int, memory: int, address: str = "10.250.0.99",
             **spec: Any) -> None:
    """A Node as an agent would register it, Ready (tests without agents set a long grace)."""
    admin = cluster.session()
    labels = spec.pop("labels", {})
    body = {"apiVersion": "berth/v1", "kind": "Node", "metadata": {"name": name, "labels": labels},
            "spec": {"address": address, **spec}}
    assert admin.post(cluster.url(0, "/api/v1/nodes"), json=body, timeout=10).status_code == 201
    status = {**with_ready({}, True, "2026-01-01T00:00:00Z"), "allocatable": {"cpu": cpu, "memory": memory},
              "capacity": {"cpu": cpu, "memory": memory}}
    answer = admin.patch(cluster.url(0, f"/api/v1/nodes/{name}/status"), json={"status": status},
                         headers={"Content-Type": "application/merge-patch+json"}, timeout=10)
    assert answer.status_code == 200, answer.text


@contextlib.contextmanager
def temporary_lab(tag: str, hosts: int, runtimes: dict[str, str] | None = None) -> Iterator[Lab]:
    """Lab hosts (no masters or agents on them) named after `tag` and this process; gone afterwards,
    as is whatever a crashed earlier run of the same name left."""
    lab = Lab(name=f"{tag}{os.getpid() % 100000}"[:8], hosts=hosts, runtimes=runtimes or {})
    lab_hosts.down(lab)
    lab_hosts.up(lab)
    try:
        yield lab
    finally:
        lab_hosts.down(lab)


@contextlib.contextmanager
def masters_driving(lab: Lab, root: Path) -> Iterator[MasterCluster]:
    """Three masters with the scheduler and the runtime, every lab host registered as a Ready node
    (no agents: the runtime lists each host every second instead of waiting for their reports)."""
    cluster = MasterCluster(root, size=3, extra_settings={
        "controllers": ["node-lifecycle", "scheduler", "runtime"], "node_grace_seconds": 3600,
        "ssh_key_file": str(lab.ssh_key), "ssh_known_hosts_file": str(lab.known_hosts),
        "restart_backoff_seconds": 1, "runtime_resync_seconds": 1})
    cluster.start_all()
    try:
        cluster.wait_ready()
        for host in lab.host_names():
            add_node(cluster, host, cpu=2000, memory=4 * GI, address=lab.address(host),
                     runtime=lab.runtime(host))
        yield cluster
    finally:
        cluster.close()
        print(cluster.logs())


def pod(name: str, namespace: str = "default", labels: dict[str, str] | None = None,
        image: str = "localhost/busybox:lab") -> dict[str, Any]:
    return {
        "apiVersion": "berth/v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": {"containers": [{"name": "main", "image": image, "command": ["sleep", "3600"],
                                 "resources": {"requests": {"cpu": "100m", "memory": "32Mi"}}}]},
    }


def berth(cluster: MasterCluster, *args: str, role: str = "admin", servers: list[str] | None = None,
          stdin: str | None = None, home: Path | None = None) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home or cluster.root),
           "BERTH_SERVER": ",".join(servers or [m.api_url for m in cluster.masters]),
           "BERTH_TOKEN": TOKENS[role][1]}
    return subprocess.run([sys.executable, "-m", "berth.cli.main", *args], input=stdin, env=env,
                          capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parent.parent)
