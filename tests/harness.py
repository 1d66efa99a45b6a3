"""What the integration tests share: masters on loopback (berth/lab/masters.py), labs, waits."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests

from berth.lab import hosts as lab_hosts
from berth.lab.hosts import Lab
from berth.lab.masters import LAB_TOKENS, ExtraToken, LocalMasters, free_ports
from berth.lab.masters import sample_pod as pod  # noqa: F401 - the tests import it from here
from master.liveness import READY, with_ready
from master.store.replicated import RaftTimings, Store

TOKENS = LAB_TOKENS
T = TypeVar("T")
GI = 2**30
WORKLOADS = ("deployment", "replicaset", "garbage-collector")  # the controllers that make and collect pods


CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")  # anything but a newline: ESC and \r among them


def control_characters(text: str) -> list[str]:
    """What a terminal would act on in `text`: none may reach a pipe or a log (a spinner's \r, colours)."""
    return CONTROL.findall(text)


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


def store_cluster(root: Path, timings: RaftTimings) -> Iterator[list[Store]]:
    """Three real replicated Stores on loopback (no API): Raft itself under test; closed after."""
    addresses = [f"127.0.0.1:{port}" for port in free_ports(3)]
    made = [Store(address, [a for a in addresses if a != address], str(root / str(i)), "a-raft-password",
                  timings) for i, address in enumerate(addresses)]
    try:
        wait_until(lambda: all(store.is_ready() for store in made), 40, what="a leader, every store ready")
        yield made
    finally:
        for store in made:
            store.close()


@contextlib.contextmanager
def sampling(probe: Callable[[], T], period: float) -> Iterator[list[T]]:
    """`probe()` every `period` seconds in a thread while the block runs (a rollout's ready pods):
    what a test asserts of the whole time, not only of its end. A probe that fails is skipped."""
    samples: list[T] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(period):
            with contextlib.suppress(requests.RequestException, KeyError, ValueError):
                samples.append(probe())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join(timeout=10)


class MasterCluster(LocalMasters):
    """The tests' view of berth.lab.masters.LocalMasters: sessions with the lab's tokens, verifying the
    masters' certificates with the cluster's CA (`ca_file`)."""

    def __init__(self, root: Path, size: int = 3, python: str = sys.executable,
                 extra_settings: dict[str, Any] | None = None,
                 extra_tokens: list[ExtraToken] | None = None, initial: int | None = None) -> None:
        super().__init__(root, size, extra_settings, python=python, extra_tokens=extra_tokens,
                         initial=initial)

    def session(self, role: str | None = "admin") -> requests.Session:
        """`role` None: no token."""
        return self.token_session(None if role is None else TOKENS[role][1])

    def token_session(self, token: str | None) -> requests.Session:
        """A session sending `token` (None: none) to these masters, verified with the cluster's CA."""
        session = requests.Session()
        session.verify = str(self.ca_file)
        session.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would win over `verify`
        if token is not None:
            session.headers["Authorization"] = f"Bearer {token}"
        return session

    def logs(self) -> str:
        return self.log_tails()

    def raw_socket(self, index: int, source: str = "127.0.0.1", timeout: float = 10) -> ssl.SSLSocket:
        """A TLS connection to master `index`, verified as every client does: what a test writes raw
        bytes to (half-sent requests, heads without bodies)."""
        parts = urlsplit(self.url(index))
        sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout,
                                        source_address=(source, 0))
        try:
            return ssl.create_default_context(cafile=self.ca_file).wrap_socket(sock,
                                                                                server_hostname=parts.hostname)
        except BaseException:
            sock.close()
            raise


def add_node(cluster: MasterCluster, name: str, cpu: int, memory: int, address: str = "10.250.0.99",
             **spec: Any) -> None:
    """A Node as an agent would register it, Ready (tests without agents set a long grace)."""
    admin = cluster.session()
    labels = spec.pop("labels", {})
    body = {"apiVersion": "berth/v1", "kind": "Node", "metadata": {"name": name, "labels": labels},
            "spec": {"address": address, **spec}}
    assert admin.post(cluster.url(0, "/api/v1/nodes"), json=body, timeout=10).status_code == 201
    status = {**with_ready({}, READY, "2026-01-01T00:00:00Z"), "allocatable": {"cpu": cpu, "memory": memory},
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
def masters_driving(lab: Lab, root: Path, controllers: tuple[str, ...] = (),
                    settings: dict[str, Any] | None = None) -> Iterator[MasterCluster]:
    """Three masters with the scheduler and the runtime, every lab host registered as a Ready node
    (no agents: the runtime lists each host every second instead of waiting for their reports).
    `controllers`: more leader loops than those; `settings`: more master settings."""
    cluster = MasterCluster(root, size=3, extra_settings={
        "controllers": ["node-lifecycle", "scheduler", "runtime", *WORKLOADS, *controllers],
        "node_grace_seconds": 3600, "ssh_key_file": str(lab.ssh_key),
        "ssh_known_hosts_file": str(lab.known_hosts), "restart_backoff_seconds": 1,
        "runtime_resync_seconds": 1, **(settings or {})})
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


def cli_env(cluster: MasterCluster, role: str = "admin", servers: list[str] | None = None,
            home: Path | None = None) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": str(home or cluster.root),
            "BERTH_SERVER": ",".join(servers or [m.api_url for m in cluster.masters]),
            "BERTH_TOKEN": TOKENS[role][1], "BERTH_CERTIFICATE_AUTHORITY": str(cluster.ca_file)}


CLI = [sys.executable, "-m", "berth.cli.main"]
PROJECT_DIR = Path(__file__).resolve().parent.parent


def berth(cluster: MasterCluster, *args: str, role: str = "admin", servers: list[str] | None = None,
          stdin: str | None = None, home: Path | None = None,
          timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], input=stdin, env=cli_env(cluster, role, servers, home),
                          capture_output=True, text=True, timeout=timeout, cwd=PROJECT_DIR)


def berth_process(cluster: MasterCluster, *args: str, role: str = "admin", **popen: Any) -> subprocess.Popen:
    """The CLI left running (port-forward, a shell through a pty): the caller ends it."""
    return subprocess.Popen([*CLI, *args], env=cli_env(cluster, role), cwd=PROJECT_DIR, **popen)
