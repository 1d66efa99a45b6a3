"""What the benchmarks share: masters on loopback (the tests' harness, berth/lab/masters.py),
a light HTTPS client that loads one master, percentiles, CPU counters.

Every master started here is killed by `Masters.close()` (call it in a `finally`);
`interrupt_on_sigterm()` turns SIGTERM into KeyboardInterrupt so that `finally`
also runs when the benchmark itself is terminated.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import shutil
import signal
import ssl
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import yaml

from berth.lab.hosts import lab_name
from berth.lab.masters import LAB_TOKENS, LocalMasters, process_cpu_seconds
from berth.lab.masters import sample_pod as pod

ROOT = Path(__file__).resolve().parent.parent

ADMIN_TOKEN = LAB_TOKENS["admin"][1]
PODS_PATH = "/api/v1/namespaces/bench/pods"
_trusted: Path | None = None  # the CA of the masters this benchmark started (Masters sets it)


def trusted_ca() -> Path:
    """The CA of the masters this benchmark started (with Masters): what its clients verify them with."""
    if _trusted is None:
        raise RuntimeError("no CA to verify the masters with: start them with Masters, or give ca_file")
    return _trusted


def tls_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """What a benchmark's client verifies masters with: `ca_file`, else `trusted_ca()`."""
    return ssl.create_default_context(cafile=ca_file or trusted_ca())


def machine_header() -> str:
    """Python version, cores and load average: what every benchmark prints first."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"Python {platform.python_version()} ({sys.executable}), {os.cpu_count()} cores, "
            f"load average {load}")


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
    """One keep-alive connection to one master (http.client: light on the shared CPUs), over HTTPS
    verified with `ca_file` (by default, the CA of the masters this benchmark started). A plain
    `http://` URL is spoken plainly: only bench.tls's reference server has one."""

    def __init__(self, url: str, token: str | None = ADMIN_TOKEN, timeout: float = 15.0,
                 ca_file: Path | None = None) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 443
        self.timeout = timeout
        self.context = tls_context(ca_file) if parts.scheme == "https" else None
        self.headers = {"Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        if self.conn is None:
            self.conn = (http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                         if self.context is None else
                         http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                                     context=self.context))
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


class Masters(LocalMasters):
    """berth.lab.masters.LocalMasters with the store alone by default: no scheduler writing
    conditions and events for the benchmarks' pods."""

    def __init__(self, root: Path, size: int = 3, settings: dict[str, Any] | None = None,
                 extra_tokens: list[tuple[str, str, str]] | None = None) -> None:
        global _trusted
        super().__init__(root, size, {"controllers": ["node-lifecycle"], **(settings or {})}, extra_tokens)
        _trusted = self.ca_file


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


def _lab_argument(text: str) -> str:
    try:
        return lab_name(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_lab_option(parser: argparse.ArgumentParser, default: str) -> None:
    """`--lab NAME`: the lab a bench makes and removes. Two runs of one bench side by side (helpers
    sharing a machine) need two names, or each removes the other's lab."""
    parser.add_argument("--lab", default=default, type=_lab_argument, metavar="NAME",
                        help=f"the lab's name, 1-8 lowercase letters or digits (default {default})")


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


__all__ = ["process_cpu_seconds"]  # re-exported: the benchmarks import it from here


def own_cpu_seconds() -> float:
    return process_cpu_seconds()


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine spent busy (all processes, all cores) since boot."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)
