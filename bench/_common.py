"""What both benchmarks share: real masters on loopback, a light HTTP client, percentiles.

Every master started here is killed by `Masters.close()` (call it in a `finally`);
`interrupt_on_sigterm()` turns SIGTERM into KeyboardInterrupt so that `finally`
also runs when the benchmark itself is terminated.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import yaml

from berth.lab.masters import MasterSpec, start_master, write_cluster
from tests.harness import TOKENS, pod

ROOT = Path(__file__).resolve().parent.parent

ADMIN_TOKEN = TOKENS["admin"][1]
PODS_PATH = "/api/v1/namespaces/bench/pods"


def machine_header() -> str:
    """Python version, cores and load average: what every benchmark prints first."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"Python {platform.python_version()} ({sys.executable}), {os.cpu_count()} cores, "
            f"load average {load}")


def write_tokens(path: Path, entries: list[tuple[str, str, str]]) -> None:
    """A tokens file from (name, role, token) entries, several per role allowed (digests only)."""
    path.write_text(yaml.safe_dump({"tokens": [
        {"name": name, "role": role, "sha256": hashlib.sha256(token.encode()).hexdigest()}
        for name, role, token in entries]}))
    path.chmod(0o600)


def interrupt_on_sigterm() -> None:
    def handler(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, handler)


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (nan when empty)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def mark(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def pod_body_template(namespace: str = "bench") -> tuple[bytes, bytes]:
    """A pod body as bytes with a placeholder name, so a client need not re-encode JSON each time."""
    placeholder = "NAME-PLACEHOLDER"
    body = json.dumps(pod(placeholder, namespace)).encode()
    return body, placeholder.encode()


class Http:
    """One keep-alive connection to one master (http.client: light on the shared CPUs)."""

    def __init__(self, url: str, token: str | None = ADMIN_TOKEN, timeout: float = 15.0) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.timeout = timeout
        self.headers = {"Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            self.conn.request(method, path, body=body, headers=self.headers)
            response = self.conn.getresponse()
            data = response.read()
        except BaseException:
            self.close()
            raise
        if response.will_close:
            self.close()
        return response.status, data

    def json(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        status, data = self.request(method, path, None if body is None else json.dumps(body).encode())
        return status, json.loads(data) if data else None

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(OSError):
                self.conn.close()
            self.conn = None


class Masters:
    """N real master processes (berth.lab.masters), each in its own session; close() kills them all."""

    def __init__(self, root: Path, size: int = 3, settings: dict[str, Any] | None = None,
                 extra_tokens: list[tuple[str, str, str]] | None = None) -> None:
        """extra_tokens: (name, role, token) accepted besides tests.harness.TOKENS (e.g. one per agent)."""
        self.root = root
        # the store alone: no scheduler writing conditions and events for the benchmarks' pods
        settings = {"controllers": ["node-lifecycle"], **(settings or {})}
        self.specs: list[MasterSpec] = write_cluster(root, size, TOKENS, settings)
        self.procs: list[subprocess.Popen | None] = [None] * size
        if extra_tokens:
            tokens_file = Path(yaml.safe_load(self.specs[0].config_file.read_text())["tokens_file"])
            base = [(name, role, token) for role, (name, token) in TOKENS.items()]
            write_tokens(tokens_file, base + list(extra_tokens))

    def __len__(self) -> int:
        return len(self.specs)

    def start(self, index: int) -> None:
        assert not self.alive(index), f"{self.specs[index].name} already runs"
        self.procs[index] = start_master(self.specs[index], sys.executable)

    def start_all(self) -> None:
        for i in range(len(self.specs)):
            self.start(i)

    def alive(self, index: int) -> bool:
        proc = self.procs[index]
        return proc is not None and proc.poll() is None

    def pid(self, index: int) -> int:
        proc = self.procs[index]
        assert proc is not None
        return proc.pid

    def kill(self, index: int, sig: int = signal.SIGKILL, wait: float = 15.0) -> None:
        proc = self.procs[index]
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
        self.procs[index] = None

    def close(self) -> None:
        """SIGTERM everything first (clean shutdown in parallel), SIGKILL what is left after 5 s."""
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
        deadline = time.monotonic() + 5
        for i, proc in enumerate(self.procs):
            if proc is None:
                continue
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            self.kill(i, signal.SIGKILL)

    # --- HTTP views ----------------------------------------------------------------------
    def url(self, index: int) -> str:
        return self.specs[index].api_url

    def ready(self, index: int) -> bool:
        try:
            status, _ = Http(self.url(index), token=None, timeout=2).request("GET", "/readyz")
        except OSError:
            return False
        return status == 200

    def wait_ready(self, indexes: list[int] | None = None, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        for i in indexes if indexes is not None else range(len(self.specs)):
            while not self.ready(i):
                if not self.alive(i):
                    raise RuntimeError(f"{self.specs[i].name} exited; log: {self.specs[i].log_file}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.specs[i].name} not ready in {timeout:.0f}s")
                time.sleep(0.05)

    def status(self, index: int, timeout: float = 2.0) -> dict[str, Any] | None:
        try:
            code, body = Http(self.url(index), timeout=timeout).json("GET", "/api/v1/cluster")
        except (OSError, ValueError):
            return None
        return body if code == 200 else None

    def leader_index(self, timeout: float = 15.0, request_timeout: float = 2.0) -> int:
        """The one live master reporting state == leader (others agreeing on it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            statuses = {i: self.status(i, request_timeout) for i in range(len(self.specs)) if self.alive(i)}
            leaders = [i for i, s in statuses.items() if s and s["state"] == "leader"]
            if len(leaders) == 1:
                address = self.specs[leaders[0]].raft_address
                if all(s and s["leader"] == address for s in statuses.values()):
                    return leaders[0]
            time.sleep(0.05)
        raise TimeoutError(f"no single agreed leader in {timeout:.0f}s")

    def cpu_seconds(self) -> list[float]:
        """user+system CPU seconds of each master process (nan if not running)."""
        return [process_cpu_seconds(self.pid(i)) if self.alive(i) else float("nan")
                for i in range(len(self.specs))]

    def log_tails(self, chars: int = 3000) -> str:
        out = []
        for spec in self.specs:
            if spec.log_file.exists():
                out.append(f"--- {spec.name} ({spec.log_file})\n"
                           f"{spec.log_file.read_text(errors='replace')[-chars:]}")
        return "\n".join(out)


@contextlib.contextmanager
def running_masters(root: Path, size: int = 3, settings: dict[str, Any] | None = None
                    ) -> Iterator[Masters]:
    """Masters started and ready; on a failure their log tails are printed; always stopped, and
    `root` removed, afterwards."""
    masters = Masters(root, size, settings)
    try:
        masters.start_all()
        masters.wait_ready(timeout=60)
        yield masters
    except Exception:
        print(masters.log_tails(), file=sys.stderr)
        raise
    finally:
        masters.close()
        shutil.rmtree(root, ignore_errors=True)


def parse_settings(pairs: list[str]) -> dict[str, Any]:
    """`KEY=VALUE` master settings (VALUE read as YAML); `timings.NAME=...` sets one Raft timing."""
    settings: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set {pair!r}: expected KEY=VALUE")
        parsed = yaml.safe_load(value)
        if key.startswith("timings."):
            settings.setdefault("timings", {})[key.removeprefix("timings.")] = parsed
        else:
            settings[key] = parsed
    return settings


def process_cpu_seconds(pid: int | None = None) -> float:
    """user+system CPU seconds of one process (this one by default; nan if it is gone)."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return float("nan")
    return times.user + times.system


def own_cpu_seconds() -> float:
    return process_cpu_seconds()


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine spent busy (all processes, all cores) since boot."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)
