"""Master processes on one machine: their settings, tokens, start and stop.

The one harness of the tests and the benchmarks (`LocalMasters`), so both run masters
exactly the same way. Every process it starts is killed when it is closed and at the
interpreter's exit, so a failed test or an interrupted benchmark leaves nothing running.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import hashlib
import http.client
import json
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import yaml

from berth import certs

PROJECT = Path(__file__).resolve().parents[2]  # the checkout: berth/lab/ is two below it
LAB_TOKENS = {  # role -> (name, token): what loopback masters of tests and benchmarks accept
    "admin": ("alice", "admin-token-alice"),
    "operator": ("olga", "operator-token-olga"),
    "viewer": ("victor", "viewer-token-victor"),
    "agent": ("h1", "agent-token-h1"),
}
_LIVE: set[subprocess.Popen] = set()
ENCRYPTION_KEYS = "encryption-keys"  # beside the Raft password: the key that seals Secrets at rest
TLS_DIR = "tls"  # beside them: the CA (ca.crt, what every client verifies with) and each master's pair


def ca_file(root: Path) -> Path:
    """The CA of the masters `write_cluster` wrote in `root`: what their clients verify them with."""
    return root / TLS_DIR / certs.CA_CERT


def sample_pod(name: str, namespace: str = "default", labels: dict[str, str] | None = None,
               image: str = "localhost/busybox:lab") -> dict[str, Any]:
    """A small pod (the lab's busybox, sleeping): what tests and benchmarks create by the thousand."""
    return {
        "apiVersion": "berth/v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": {"containers": [{"name": "main", "image": image, "command": ["sleep", "3600"],
                                 "resources": {"requests": {"cpu": "100m", "memory": "32Mi"}}}]},
    }


def _kill_all() -> None:
    for proc in list(_LIVE):
        with contextlib.suppress(ProcessLookupError):
            proc.kill()


atexit.register(_kill_all)


@dataclass(frozen=True)
class MasterSpec:
    name: str
    raft_address: str
    api_url: str
    data_dir: Path
    config_file: Path
    log_file: Path


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    sockets, ports = [], []
    for _ in range(count):
        sock = socket.socket()
        sock.bind((host, 0))
        sockets.append(sock)
        ports.append(sock.getsockname()[1])
    for sock in sockets:
        sock.close()
    return ports


ExtraToken = tuple[str, str | tuple[str, ...], str]  # (name, role or groups, token)


def write_tokens_file(path: Path, tokens: dict[str, tuple[str, str]],
                      extra: list[ExtraToken] | None = None) -> None:
    """Only digests are written: the master never needs the clear token. `extra`: more
    (name, role, token) entries, several per role allowed (a benchmark's agents); a tuple in
    place of the role is the entry's `groups` (an RBAC test's users)."""
    entries = [(name, role, token) for role, (name, token) in tokens.items()] + list(extra or [])
    path.write_text(yaml.safe_dump({"tokens": [
        {"name": name, **({"role": role} if isinstance(role, str) else {"groups": list(role)}),
         "sha256": hashlib.sha256(token.encode()).hexdigest()}
        for name, role, token in entries]}))
    path.chmod(0o600)


def write_cluster(root: Path, size: int, tokens: dict[str, tuple[str, str]],
                  extra_settings: dict[str, Any] | None = None, host: str = "127.0.0.1",
                  ports: list[int] | None = None,
                  extra_tokens: list[ExtraToken] | None = None,
                  initial: int | None = None) -> list[MasterSpec]:
    """Config files for `size` masters on `host`, the first `initial` (default all) forming the
    cluster and the others joining it later (`berth cluster add-master`: their peers, the initial
    members), with a tokens file, a Raft password, a key that seals Secrets (`encryption_key_file`:
    None in `extra_settings` stores them in clear), and a CA (one per `root`, made once) with a
    certificate for each master's address. Each master's `peer_apis` names the initial members and
    itself: the others learn a joining master's URL from the Raft entry that adds it."""
    root.mkdir(parents=True, exist_ok=True)
    tokens_file = root / "tokens.yaml"
    write_tokens_file(tokens_file, tokens, extra_tokens)
    password_file = root / "raft-password"
    if not password_file.exists():
        password_file.write_text(secrets.token_urlsafe(24) + "\n")
        password_file.chmod(0o600)
    keys_file = root / ENCRYPTION_KEYS
    if not keys_file.exists():
        keys_file.write_text(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
        keys_file.chmod(0o600)
    tls = root / TLS_DIR
    certs.make_ca(tls)
    ports = ports or free_ports(2 * size, host)
    raft = [f"{host}:{p}" for p in ports[:size]]
    initial = size if initial is None else initial
    specs = []
    for i in range(size):
        name = f"m{i + 1}"
        certs.issue(tls, name, [host, "localhost"], tls)
        spec = MasterSpec(name, raft[i], f"https://{host}:{ports[size + i]}", root / name,
                          root / f"{name}.yaml", root / f"{name}.log")
        spec.config_file.write_text(yaml.safe_dump({
            "name": name,
            "raft_address": raft[i],
            "peers": [a for a in raft[:initial] if a != raft[i]],
            "api_address": f"{host}:{ports[size + i]}",
            "data_dir": str(spec.data_dir),
            "tokens_file": str(tokens_file),
            "raft_password_file": str(password_file),
            "encryption_key_file": str(keys_file),
            "tls_cert_file": str(tls / f"{name}.crt"),
            "tls_private_key_file": str(tls / f"{name}.key"),
            "tls_ca_file": str(tls / certs.CA_CERT),
            # a member learns a joining master's API from the Raft entry that adds it
            "peer_apis": {raft[j]: f"https://{host}:{ports[size + j]}"
                          for j in range(size) if j < initial or j == i},
            **(extra_settings or {}),
        }))
        specs.append(spec)
    return specs


def start_master(spec: MasterSpec, python: str = sys.executable) -> subprocess.Popen:
    """The master in its own session, so a test or demo can kill it without touching itself."""
    with open(spec.log_file, "ab") as log:
        proc = subprocess.Popen(
            [python, "-m", "master.main", "--config", str(spec.config_file)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=PROJECT, start_new_session=True,
        )
    return proc


def process_cpu_seconds(pid: int | None = None) -> float:
    """user+system CPU seconds of one process (this one by default; nan if it is gone)."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return float("nan")
    return times.user + times.system


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


def get_json(url: str, path: str, token: str | None, timeout: float, ca: Path) -> tuple[int, Any]:
    """One GET over HTTPS, verified with the CA file `ca` (http.client: light on the shared cores);
    (status, JSON or None)."""
    parts = urlsplit(url)
    conn = http.client.HTTPSConnection(parts.hostname or "127.0.0.1", parts.port or 443, timeout=timeout,
                                       context=ssl.create_default_context(cafile=ca))
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    try:
        return response.status, json.loads(data) if data else None
    except ValueError:
        return response.status, None


class LocalMasters:
    """`size` master processes on loopback, each in its own session and with its own ports and
    data dir."""

    def __init__(self, root: Path, size: int = 3, settings: dict[str, Any] | None = None,
                 extra_tokens: list[ExtraToken] | None = None,
                 python: str = sys.executable, initial: int | None = None) -> None:
        """`extra_tokens`: (name, role, token) accepted besides LAB_TOKENS (a benchmark's agents);
        `initial`: the first masters forming the cluster, the others to add (write_cluster)."""
        self.root = root
        self.python = python
        self.masters = [Master(spec) for spec in write_cluster(root, size, LAB_TOKENS, settings,
                                                               extra_tokens=extra_tokens, initial=initial)]
        self.ca_file = ca_file(root)  # what a client of these masters verifies them with

    @property
    def specs(self) -> list[MasterSpec]:
        return [m.spec for m in self.masters]

    def __len__(self) -> int:
        return len(self.masters)

    # --- processes ---------------------------------------------------------------------
    def start(self, index: int) -> None:
        master = self.masters[index]
        assert not master.alive, f"{master.name} is already running"
        master.proc = start_master(master.spec, self.python)
        _LIVE.add(master.proc)

    def start_all(self) -> None:
        for i in range(len(self.masters)):
            self.start(i)

    def alive(self, index: int) -> bool:
        return self.masters[index].alive

    def pid(self, index: int) -> int:
        proc = self.masters[index].proc
        assert proc is not None
        return proc.pid

    def kill(self, index: int, sig: int = signal.SIGKILL, wait: float = 30.0) -> None:
        master = self.masters[index]
        proc = master.proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            try:
                proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        _LIVE.discard(proc)
        master.proc = None

    def close(self) -> None:
        """SIGTERM everything first (clean shutdowns in parallel), SIGKILL what is left after 5 s."""
        for master in self.masters:
            if master.alive:
                with contextlib.suppress(ProcessLookupError):
                    master.proc.terminate()  # type: ignore[union-attr] - alive
        deadline = time.monotonic() + 5
        for i, master in enumerate(self.masters):
            if master.proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    master.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            self.kill(i)

    # --- state -------------------------------------------------------------------------
    def url(self, index: int, path: str = "") -> str:
        return self.masters[index].api_url + path

    def ready(self, index: int) -> bool:
        try:
            return get_json(self.url(index), "/readyz", None, 2.0, self.ca_file)[0] == 200
        except OSError:
            return False

    def wait_ready(self, indexes: list[int] | None = None, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        for i in indexes if indexes is not None else range(len(self.masters)):
            while not self.ready(i):
                if not self.alive(i):
                    raise RuntimeError(f"{self.masters[i].name} exited; log: {self.masters[i].log_file}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.masters[i].name} not ready in {timeout:.0f}s")
                time.sleep(0.05)

    def status(self, index: int, timeout: float = 2.0) -> dict[str, Any] | None:
        """The master's /api/v1/cluster answer (None when it does not answer)."""
        try:
            code, body = get_json(self.url(index), "/api/v1/cluster", LAB_TOKENS["admin"][1], timeout,
                                  self.ca_file)
        except (OSError, http.client.HTTPException):
            return None
        return body if code == 200 else None

    def leader_index(self, timeout: float = 15.0, request_timeout: float = 2.0) -> int:
        """The one live master that says it leads, every other that answers agreeing."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answers = {i: self.status(i, request_timeout) for i in range(len(self.masters)) if self.alive(i)}
            heard = {i: s for i, s in answers.items() if s is not None}
            leaders = [i for i, s in heard.items() if s["state"] == "leader"]
            if len(leaders) == 1:
                address = self.masters[leaders[0]].spec.raft_address
                if all(s["leader"] == address for s in heard.values()):
                    return leaders[0]
            time.sleep(0.05)
        raise TimeoutError(f"no single agreed leader in {timeout:.0f}s")

    def cpu_seconds(self) -> list[float]:
        """user+system CPU seconds of each master process (nan if not running)."""
        return [process_cpu_seconds(self.pid(i)) if self.alive(i) else float("nan")
                for i in range(len(self.masters))]

    def log_tails(self, chars: int = 4000) -> str:
        return "\n".join(f"--- {m.name} ({m.log_file})\n{m.log_file.read_text(errors='replace')[-chars:]}"
                         for m in self.masters if m.log_file.exists())
