"""The attacks of issue 9's security review, replayed against 3 real masters on loopback.

For each attack, attackers repeat it for a few seconds against the leader while a prober
asks the leader's /healthz (5 s deadline) every 50 ms and a writer creates a ConfigMap
every 200 ms; the table shows what the attackers were answered, /healthz and write
latencies, and the leader's RSS, beside the same figures with no attack (the reference).

    python -m bench.abuse [--seconds 5]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import socket
import ssl
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench._common import (
    Http,
    Masters,
    interrupt_on_sigterm,
    machine_header,
    percentile,
    running_masters,
    tls_context,
)
from berth.lab.masters import LAB_TOKENS as TOKENS
from berth.lab.masters import sample_pod as pod
from master.peer_auth import peer_key, sign
from master.reports.relay import RELAY_PATH

HEALTH_TIMEOUT = 5.0
CONFIGMAPS = "/api/v1/namespaces/abuse/configmaps"
LAUGHS = "\n".join(['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
                   + [f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]"
                      for p, n in zip("abcdefgh", "bcdefghi", strict=True)])


@dataclass
class Measure:
    answers: Counter = field(default_factory=Counter)
    health: list[float] = field(default_factory=list)
    health_failed: int = 0
    writes: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)


def _token(role: str) -> str:
    return TOKENS[role][1]


def _call(url: str, role: str | None, method: str, path: str, body: bytes | None = None,
          content_type: str = "application/json") -> int:
    http = Http(url, token=_token(role) if role else None, timeout=60)
    http.headers["Content-Type"] = content_type
    try:
        return http.request(method, path, body)[0]
    except OSError as err:
        return {ConnectionResetError: -104, BrokenPipeError: -32}.get(type(err), -1)
    finally:
        http.close()


def _pod(name: str, **container: object) -> bytes:
    obj = pod(name, "abuse")
    obj["spec"]["containers"][0].update(container)
    return json.dumps(obj).encode()


def _connect(url: str, timeout: float) -> ssl.SSLSocket:
    """A raw TLS connection to the master at `url`, verified as any client's."""
    host, port = url.removeprefix("https://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=timeout)
    try:
        return tls_context().wrap_socket(sock, server_hostname=host)
    except BaseException:
        sock.close()
        raise


def _upload_without_token(url: str) -> int:
    """200 MB announced, sent in 64 KiB pieces until the master answers: the status it gave."""
    with contextlib.closing(_connect(url, 10)) as sock:
        sock.sendall(b"POST /api/v1/namespaces/abuse/pods HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 200000000\r\n\r\n")
        sock.settimeout(0.01)
        chunk, sent = b"x" * 65536, 0
        while sent < 200_000_000:
            try:
                answer = sock.recv(4096)
                return int(answer.split()[1]) if answer else -1
            except (TimeoutError, ssl.SSLWantReadError):
                pass
            try:
                sock.sendall(chunk)
            except OSError:
                return -104
            sent += len(chunk)
    return -1


@contextlib.contextmanager
def _half_sent(url: str, count: int) -> Iterator[Counter]:
    """`count` connections from this address, each with half a request line, held open."""
    socks, outcome = [], Counter()
    try:
        for _ in range(count):
            try:
                sock = _connect(url, 1)  # one past the address's share: closed at accept, before TLS
                sock.sendall(b"POST /api/v1/apply HTTP/1.1\r\nContent-Le")
                socks.append(sock)
            except OSError:
                outcome["refused"] += 1
        time.sleep(0.5)
        for sock in socks:
            sock.setblocking(False)
            try:
                outcome["closed by the master" if sock.recv(1) == b"" else "answered"] += 1
            except (BlockingIOError, ssl.SSLWantReadError):
                outcome["held open"] += 1
            except OSError:
                outcome["closed by the master"] += 1
        yield outcome
    finally:
        for sock in socks:
            sock.close()


@contextlib.contextmanager
def _streams(url: str, count: int) -> Iterator[Counter]:
    """`count` watch streams from one viewer token, held open."""
    socks, outcome = [], Counter()
    try:
        for _ in range(count):
            sock = _connect(url, 10)
            sock.sendall(f"GET /api/v1/watch?kind=Pod&timeoutSeconds=600 HTTP/1.1\r\nHost: x\r\n"
                         f"Authorization: Bearer {_token('viewer')}\r\n\r\n".encode())
            status = sock.recv(4096).split(b" ", 2)[1].decode()
            outcome[status] += 1
            socks.append(sock)
        yield outcome
    finally:
        for sock in socks:
            sock.close()


class Bench:
    def __init__(self, masters: Masters, leader: int, seconds: float) -> None:
        self.masters, self.leader, self.seconds = masters, leader, seconds
        self.url = masters.url(leader)
        self.process = psutil.Process(masters.pid(leader))
        self.key = peer_key((masters.root / "raft-password").read_text().strip())
        self._written = 0

    def _probe(self, measure: Measure, stop: threading.Event) -> None:
        http = Http(self.url, token=None, timeout=HEALTH_TIMEOUT)
        while not stop.is_set():
            began = time.perf_counter()
            try:
                ok = http.request("GET", "/healthz")[0] == 200
            except OSError:
                ok = False
            if ok:
                measure.health.append(time.perf_counter() - began)
            else:
                measure.health_failed += 1
            with contextlib.suppress(psutil.Error):
                measure.rss.append(self.process.memory_info().rss / 2**20)
            stop.wait(0.05)

    def _write(self, measure: Measure, stop: threading.Event) -> None:
        http = Http(self.url, timeout=30)
        while not stop.is_set():
            self._written += 1
            body = json.dumps({"kind": "ConfigMap", "metadata": {"name": f"w{self._written}"}}).encode()
            began = time.perf_counter()
            with contextlib.suppress(OSError):
                if http.request("POST", "/api/v1/namespaces/abuse-writes/configmaps", body)[0] == 201:
                    measure.writes.append(time.perf_counter() - began)
            stop.wait(0.2)

    def run(self, attack: Callable[[], int] | None, hold: Callable[[], contextlib.AbstractContextManager]
            | None = None, attackers: int = 2, limit: int = 100_000) -> Measure:
        measure, stop = Measure(), threading.Event()
        helpers = [threading.Thread(target=self._probe, args=(measure, stop)),
                   threading.Thread(target=self._write, args=(measure, stop))]
        for helper in helpers:
            helper.start()
        deadline = time.monotonic() + self.seconds

        def attacker() -> None:
            for _ in range(limit):
                if time.monotonic() >= deadline or attack is None:
                    return
                measure.answers[attack()] += 1

        try:
            with hold() if hold else contextlib.nullcontext() as held:
                if held is not None:
                    measure.answers.update(held)
                threads = [threading.Thread(target=attacker) for _ in range(attackers)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join(timeout=self.seconds + 120)
                stop.wait(max(0.0, deadline - time.monotonic()))
        finally:
            stop.set()
            for helper in helpers:
                helper.join(timeout=30)
        return measure


def attacks(b: Bench) -> list[tuple[str, Callable[[], int] | None, Callable | None]]:
    url = b.url
    relay_body = json.dumps({"heartbeats": []}).encode()
    replayed = sign(b.key, relay_body, time.time() + 2, b.masters.specs[b.leader].raft_address)  # one capture
    long_selector = ",".join(f"k{i}=v{i}" for i in range(15_000))
    capped_selector = ",".join(f"key{i:02d}=value-{i:02d}" for i in range(32))
    big_config = json.dumps({"kind": "ConfigMap", "metadata": {"name": "big"},
                             "data": {"blob": "x" * 900_000}}).encode()

    def replay() -> int:
        http = Http(url, token=None)
        http.headers["Authorization"] = replayed
        try:
            return http.request("POST", RELAY_PATH, relay_body)[0]
        finally:
            http.close()

    return [
        ("reference: no attack", None, None),
        ("1 image -w/tmp + --privileged args (operator)", lambda: _call(
            url, "operator", "POST", "/api/v1/namespaces/abuse/pods",
            _pod("escape", image="-w/tmp", args=["--privileged", "-v", "/:/host", "localhost/busybox:lab"])),
         None),
        ("3 agent: node status conditions ['x']", lambda: _call(
            url, "agent", "PATCH", "/api/v1/nodes/h1/status", b'{"status": {"conditions": ["x"]}}',
            "application/merge-patch+json"), None),
        ("4 billion laughs, 527 B YAML (viewer)", lambda: _call(
            url, "viewer", "POST", "/api/v1/apply", LAUGHS.encode(), "application/yaml"), None),
        ("4 billion laughs, 527 B YAML (admin)", lambda: _call(
            url, "admin", "POST", "/api/v1/apply", LAUGHS.encode(), "application/yaml"), None),
        ("4 900,000-digit memory quantity (operator)", lambda: _call(
            url, "operator", "POST", "/api/v1/namespaces/abuse/pods",
            _pod("digits", resources={"requests": {"memory": "9" * 900_000}})), None),
        ("4 JSON nested 400,000 deep (admin)", lambda: _call(
            url, "admin", "POST", "/api/v1/apply", b"[" * 400_000 + b"]" * 400_000), None),
        ("4 YAML base-60 number, 160 KB (agent heartbeat)", lambda: _call(
            url, "agent", "POST", "/api/v1/nodes/h1/heartbeat",
            b"cpuPercent: 1\nmemoryUsed: " + b"1:" * 80_000 + b"1", "application/yaml"), None),
        ("4 hexadecimal memoryUsed, 5,000 digits (agent heartbeat)", lambda: _call(
            url, "agent", "POST", "/api/v1/nodes/h1/heartbeat",
            b"cpuPercent: 1\nmemoryUsed: 0x" + b"f" * 5000, "application/yaml"), None),
        ("5 agent moves its Node to 127.0.0.2", lambda: _call(
            url, "agent", "PATCH", "/api/v1/nodes/h1", b'{"spec": {"address": "127.0.0.2"}}',
            "application/merge-patch+json"), None),
        ("6 200 MB upload without a token", lambda: _upload_without_token(url), None),
        ("6 4,200 half-sent requests, one address", None, lambda: _half_sent(url, 4200)),
        ("7 64 watch streams (one viewer)", None, lambda: _streams(url, 64)),
        ("8 225 KB label selector (viewer)", lambda: _call(
            url, "viewer", "GET", f"{CONFIGMAPS}?labelSelector={long_selector}"), None),
        ("8 32-term selector over 1,000 objects (viewer)", lambda: _call(
            url, "viewer", "GET", f"{CONFIGMAPS}?labelSelector={capped_selector}"), None),
        ("9 one signed relay batch, replayed", replay, None),
        ("10 400-digit CPU limit (operator)", lambda: _call(
            url, "operator", "POST", "/api/v1/namespaces/abuse/pods",
            _pod("cpu", resources={"limits": {"cpu": "9" * 400}})), None),
        ("quota: 900 KB ConfigMap written again and again", lambda: _call(
            url, "admin", "PUT", f"{CONFIGMAPS}/big", big_config), None),
    ]


def _ms(values: list[float], q: float) -> str:
    return f"{percentile(sorted(values), q) * 1000:.1f}" if values else "-"


def prepare(b: Bench) -> None:
    http = Http(b.url, timeout=30)
    node = {"kind": "Node", "metadata": {"name": "h1"}, "spec": {"address": "10.250.0.11"}}
    http.json("POST", "/api/v1/nodes", node)
    labels = {f"key{i:02d}": f"value-{i:02d}" for i in range(32)}
    for start in range(0, 1000, 100):
        manifest = [{"kind": "ConfigMap", "metadata": {"name": f"cm{n}", "namespace": "abuse",
                                                       "labels": labels}} for n in range(start, start + 100)]
        http.json("POST", "/api/v1/apply", manifest)
    http.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds each attack runs (default 5)")
    args = parser.parse_args()
    interrupt_on_sigterm()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 16384)), hard))
    print(machine_header())
    print(f"bench/abuse.py: 3 masters on loopback, each attack {args.seconds:g} s against the leader\n")
    root = Path(tempfile.mkdtemp(prefix="berth-bench-abuse-"))
    with running_masters(root, 3) as masters:
        leader = masters.leader_index()
        bench = Bench(masters, leader, args.seconds)
        prepare(bench)
        rows, reference = [], None
        for name, attack, hold in attacks(bench):
            measure = bench.run(attack, hold)
            reference = reference or measure
            answers = ", ".join(f"{code} x{n}" for code, n in sorted(measure.answers.items(), key=str))
            p99_ratio = (percentile(sorted(measure.health), 99) / percentile(sorted(reference.health), 99)
                         if measure.health and reference.health else float("nan"))
            rows.append((name, answers or "-", _ms(measure.health, 50), _ms(measure.health, 99),
                         f"{p99_ratio:.1f}x", f"{max(measure.health, default=0) * 1000:.0f}",
                         str(measure.health_failed), _ms(measure.writes, 50), _ms(measure.writes, 99),
                         f"{min(measure.rss, default=0):.0f}→{max(measure.rss, default=0):.0f}"))
            print(f"  {name}: {answers or '-'}", flush=True)
    header = ("attack", "attacker got", "healthz p50 ms", "p99 ms", "p99 vs ref", "max ms", "healthz failed",
              "write p50 ms", "write p99 ms", "leader RSS MiB")
    print("\n| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
