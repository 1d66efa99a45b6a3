"""Berth's masters beside a 3-member etcd: creates/s, p50/p99 and leader-kill failover, with ratios.

    python -m bench.versus_etcd                  # 10 s per level, 3 failover rounds each
    python -m bench.versus_etcd --quick          # 2 s per level, 1 round each
    python -m bench.versus_etcd --seconds 5 --clients 1,8,32 --rounds 2

Not part of the test suite. It installs etcd from Debian (`etcd-server etcd-client`) when `etcd`
is missing. Both systems run on this machine in turn (etcd first, then Berth), three members each
on loopback, and are driven by the same client (bench._common.Http: Python http.client, one
keep-alive HTTPS connection per client thread, thread t on member t mod 3):

  etcd   POST /v3/kv/txn through its JSON gateway: create-if-absent (compare CREATE revision == 0,
         then put), base64 key and value; 200 with "succeeded": true counts. Client and peer
         traffic over TLS (a certificate from berth/certs.py, the same kind the masters serve), as
         Berth's API is HTTPS and its Raft links are encrypted (its password).
  Berth  POST /api/v1/namespaces/bench/pods (bench/store.py's pod), 201 counts.

The etcd value is the pod body itself, so both carry the same N bytes of payload. Failover:
bench/failover.py's measurement (SIGKILL the leader, time to the first successful write sent
after the kill through a survivor), the median over the rounds, and the time until a survivor
names a new leader (Berth: /api/v1/cluster; etcd: /v3/maintenance/status). The writer is one
client sending one write at a time, as bench/failover.py's, retrying 5 ms after a failed one. In
most rounds measured (5 of 8) etcd's gateway held the write sent during the election until its
request timeout (5 s + 2 election timeouts, 7 s with its defaults), so that etcd's first write came
7 s after the kill though a new leader was named after about 1 s.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import failover
from bench._common import (
    PODS_PATH,
    Http,
    interrupt_on_sigterm,
    machine_header,
    percentile,
    running_masters,
)
from berth import certs
from berth.lab.masters import free_ports, process_cpu_seconds

ROOT = Path(tempfile.gettempdir()) / "berth-bench-versus-etcd"  # fixed: a crashed run's leftovers are found
TXN_PATH = "/v3/kv/txn"
FAILOVER_TIMEOUT = 20.0
IDLE_SECONDS = 5.0  # each cluster measured at rest once it is up, before any load


def txn_create_body(key: bytes, value_b64: str) -> bytes:
    """An etcd v3 gateway txn that puts `key` only if it does not exist yet (its create revision is
    0): what a Kubernetes apiserver sends etcd for a create. `value_b64`: the value, base64 already."""
    key_b64 = base64.b64encode(key).decode()
    return json.dumps({
        "compare": [{"key": key_b64, "target": "CREATE", "result": "EQUAL", "create_revision": "0"}],
        "success": [{"request_put": {"key": key_b64, "value": value_b64}}],
    }, separators=(",", ":")).encode()


def ratio(berth: float | None, etcd: float | None) -> str:
    """Berth/etcd as `0.12x`, '-' when either side has no figure."""
    if berth is None or etcd is None or etcd != etcd or berth != berth or etcd == 0:
        return "-"
    return f"{berth / etcd:.2f}x"


# --- one system under load -------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """How the shared client writes to one system: member URLs, the path, a body per name, the
    status that means created (and, for etcd, a marker the answer must hold), token and CA."""

    name: str
    urls: list[str]
    path: str
    body_for: Callable[[str], bytes]
    success: int
    token: str | None
    ca_file: Path
    must_contain: bytes = b""


def drive(target: Target, clients: int, duration: float, warmup: float, prefix: str) -> dict[str, Any]:
    """`clients` threads writing round-robin over the members for `warmup` + `duration` seconds;
    only requests sent and answered inside the measured window count."""
    start_at = time.perf_counter() + 0.2
    measure_from = start_at + warmup
    end_at = measure_from + duration
    latencies: list[list[float]] = [[] for _ in range(clients)]
    failures: list[dict[str, int]] = [{} for _ in range(clients)]
    stop = threading.Event()

    def worker(t: int) -> None:
        client = Http(target.urls[t % len(target.urls)], token=target.token, timeout=15,
                      ca_file=target.ca_file)
        try:
            while time.perf_counter() < start_at and not stop.is_set():
                time.sleep(0.005)
            for k in range(int(duration * 50000) + 10000):  # a bound never reached
                began = time.perf_counter()
                if began >= end_at or stop.is_set():
                    break
                try:
                    code, data = client.request("POST", target.path, target.body_for(f"{prefix}-{t}-{k}"))
                    ok = code == target.success and target.must_contain in data
                    outcome = str(code) if code != target.success else "not created"
                except Exception as error:  # any failure is counted, then retried
                    ok, outcome = False, type(error).__name__
                    time.sleep(0.01)
                ended = time.perf_counter()
                if began >= measure_from and ended <= end_at:
                    if ok:
                        latencies[t].append(ended - began)
                    else:
                        failures[t][outcome] = failures[t].get(outcome, 0) + 1
        finally:
            client.close()

    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(clients)]
    for th in threads:
        th.start()
    try:
        for th in threads:
            th.join(timeout=warmup + duration + 30)
    finally:
        stop.set()
    merged = sorted(x for lat in latencies for x in lat)
    errors: dict[str, int] = {}
    for per_thread in failures:
        for outcome, n in per_thread.items():
            errors[outcome] = errors.get(outcome, 0) + n
    return {"rate": len(merged) / duration, "p50": percentile(merged, 50), "p99": percentile(merged, 99),
            "errors": errors}


def idle_cpu(cpu_seconds: Callable[[], list[float]], seconds: float = IDLE_SECONDS) -> list[float]:
    """Each member's CPU, in % of one core, over `seconds` with no client: what a cluster costs at rest."""
    before = cpu_seconds()
    time.sleep(seconds)
    return [(after - was) * 100 / seconds for was, after in zip(before, cpu_seconds(), strict=True)]


# --- etcd ------------------------------------------------------------------------------

def ensure_etcd() -> str:
    """The etcd binary, installed from Debian first when missing (as lab/install.sh installs)."""
    found = shutil.which("etcd")
    if found:
        return found
    print("  etcd missing: apt-get install -y etcd-server etcd-client", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "etcd-server", "etcd-client"], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    if shutil.which("systemctl") and Path("/run/systemd/system").is_dir():
        # Debian enables a system etcd on 2379: the bench's own members are the only etcd wanted here
        subprocess.run(["systemctl", "disable", "--now", "etcd.service"], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    found = shutil.which("etcd")
    if not found:
        raise SystemExit("etcd is still missing after apt-get install etcd-server")
    return found


def clean_leftovers(root: Path) -> None:
    """Members a crashed earlier run left (their pids are in ROOT/*.pid, killed only if they still
    run etcd on a data dir under `root`), then the directory."""
    for pid_file in root.glob("*.pid"):
        with contextlib.suppress(OSError, ValueError):
            pid = int(pid_file.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if cmdline and cmdline[0].endswith(b"etcd") and any(str(root).encode() in a for a in cmdline):
                os.kill(pid, signal.SIGKILL)
    shutil.rmtree(root, ignore_errors=True)


class EtcdCluster:
    """Three etcd members on loopback, client URLs over TLS (a certificate from berth/certs.py,
    which the client verifies), peer links over TLS with etcd's own self-signed certificates
    (--peer-auto-tls: encrypted, not verified; berth/certs.py issues server-only certificates and
    etcd's peers present theirs as clients too); data dirs, logs and pid files under `root`."""

    def __init__(self, binary: str, root: Path, size: int = 3) -> None:
        self.binary, self.root, self.size = binary, root, size
        ports = free_ports(2 * size)
        self.client_ports, self.peer_ports = ports[:size], ports[size:]
        tls = root / "tls"
        certs.make_ca(tls, "berth-bench-etcd-ca")
        certs.issue(tls, "etcd", ["127.0.0.1", "localhost"], tls)
        self.ca_file = tls / certs.CA_CERT
        self.cert, self.key = tls / "etcd.crt", tls / "etcd.key"
        self.procs: list[subprocess.Popen | None] = [None] * size

    def url(self, index: int) -> str:
        return f"https://127.0.0.1:{self.client_ports[index]}"

    def argv(self, index: int) -> list[str]:
        name = f"e{index + 1}"
        cluster = ",".join(f"e{i + 1}=https://127.0.0.1:{p}" for i, p in enumerate(self.peer_ports))
        peer = f"https://127.0.0.1:{self.peer_ports[index]}"
        return [self.binary, "--name", name, "--data-dir", str(self.root / name),
                "--listen-client-urls", self.url(index), "--advertise-client-urls", self.url(index),
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", cluster, "--initial-cluster-token", "berth-bench",
                "--initial-cluster-state", "new", "--cert-file", str(self.cert), "--key-file", str(self.key),
                "--peer-auto-tls", "--logger", "zap", "--log-outputs", "stderr"]

    def start(self, index: int) -> None:
        log = (self.root / f"e{index + 1}.log").open("ab")
        try:
            proc = subprocess.Popen(self.argv(index), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    start_new_session=True)
        finally:
            log.close()
        self.procs[index] = proc
        (self.root / f"e{index + 1}.pid").write_text(str(proc.pid))

    def kill(self, index: int) -> None:
        proc = self.procs[index]
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(timeout=10)
            self.procs[index] = None

    def close(self) -> None:
        for i in range(self.size):
            self.kill(i)

    def status(self, index: int) -> dict[str, Any] | None:
        """The member's /v3/maintenance/status answer (None when it does not answer)."""
        client = Http(self.url(index), token=None, timeout=2, ca_file=self.ca_file)
        try:
            code, body = client.json("POST", "/v3/maintenance/status", {})
        except (OSError, ValueError):
            return None
        finally:
            client.close()
        return body if code == 200 else None

    def leader_index(self, timeout: float = 30.0) -> int:
        """The live member whose status names itself leader, every other that answers agreeing."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            heard = {i: s for i in range(self.size) if self.procs[i] is not None
                     and (s := self.status(i)) is not None}
            leaders = [i for i, s in heard.items() if s.get("leader") == s.get("header", {}).get("member_id")]
            if len(heard) == sum(p is not None for p in self.procs) and len(leaders) == 1 and all(
                    s.get("leader") == heard[leaders[0]]["leader"] for s in heard.values()):
                return leaders[0]
            time.sleep(0.05)
        logs = "\n".join((self.root / f"e{i + 1}.log").read_text(errors="replace")[-2000:]
                         for i in range(self.size))
        raise TimeoutError(f"etcd: no single agreed leader in {timeout:.0f} s\n{logs}")


@contextlib.contextmanager
def running_etcd(binary: str) -> Iterator[EtcdCluster]:
    clean_leftovers(ROOT)
    ROOT.mkdir(parents=True)
    cluster = EtcdCluster(binary, ROOT)
    try:
        for i in range(cluster.size):
            cluster.start(i)
        cluster.leader_index()
        yield cluster
    finally:
        cluster.close()
        shutil.rmtree(ROOT, ignore_errors=True)


def etcd_target(cluster: EtcdCluster) -> Target:
    """etcd's side: the pod body Berth's side sends (failover.pod_writes) as the value of its key."""
    def body_for(name: str) -> bytes:
        value = failover.pod_writes(name)
        return txn_create_body(f"/registry/pods/bench/{name}".encode(), base64.b64encode(value).decode())

    return Target("etcd", [cluster.url(i) for i in range(cluster.size)], TXN_PATH, body_for, 200, None,
                  cluster.ca_file, must_contain=b'"succeeded":true')


def etcd_failover_round(cluster: EtcdCluster, number: int, body_for: Callable[[str], bytes]
                        ) -> tuple[float | None, float | None]:
    """bench/failover.py's measurement against etcd: seconds from the leader's SIGKILL to the first
    write sent after it that succeeds through a survivor, and to a survivor's status first naming
    another leader (polled every failover.POLL_INTERVAL); None: not in FAILOVER_TIMEOUT."""
    leader = cluster.leader_index()
    survivors = [i for i in range(cluster.size) if i != leader]
    writer = failover.Writer(cluster.url(survivors[number % len(survivors)]), f"f{number}",
                             FAILOVER_TIMEOUT + 30, path=TXN_PATH, body_for=body_for, success=200,
                             token=None, ca_file=cluster.ca_file)
    thread = threading.Thread(target=writer.run, daemon=True)
    thread.start()
    try:
        warm_until = time.perf_counter() + 10
        while sum(1 for e in writer.log if e[2] == 200) < 20 and time.perf_counter() < warm_until:
            time.sleep(0.01)
        old_id = (cluster.status(leader) or {}).get("leader")
        killed_at = time.perf_counter()
        cluster.kill(leader)
        first_ok, elected = None, None
        while (first_ok is None or elected is None) and time.perf_counter() < killed_at + FAILOVER_TIMEOUT:
            first_ok = writer.first_ok_sent_after(killed_at)
            if elected is None and any((s := cluster.status(i)) and s.get("leader") not in (None, "0", old_id)
                                       for i in survivors):
                elected = time.perf_counter() - killed_at
            time.sleep(failover.POLL_INTERVAL)
    finally:
        writer.stop.set()
        thread.join(timeout=20)
    cluster.start(leader)
    cluster.leader_index()
    return (None if first_ok is None else first_ok[1] - killed_at), elected


def measure_etcd(binary: str, levels: list[int], duration: float, warmup: float, rounds: int
                 ) -> dict[str, Any]:
    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    print(f"  etcd: {version}; 3 members, data under {ROOT}", flush=True)
    with running_etcd(binary) as cluster:
        target = etcd_target(cluster)
        idle = idle_cpu(lambda: [process_cpu_seconds(p.pid) if p else float("nan") for p in cluster.procs])
        loads = {c: drive(target, c, duration, warmup, f"c{c}") for c in levels}
        rounds_done = [etcd_failover_round(cluster, n, target.body_for) for n in range(rounds)]
    return {"loads": loads, "failovers": [r[0] for r in rounds_done],
            "elections": [r[1] for r in rounds_done], "idle": idle}


# --- Berth -----------------------------------------------------------------------------

def measure_berth(levels: list[int], duration: float, warmup: float, rounds: int) -> dict[str, Any]:
    print("  Berth: 3 masters (berth.lab.masters, store alone as bench/store.py runs them)", flush=True)
    root = Path(tempfile.mkdtemp(prefix="berth-bench-versus-"))
    with running_masters(root, 3) as masters:
        target = Target("berth", [masters.url(i) for i in range(len(masters))], PODS_PATH,
                        failover.pod_writes, 201, failover.ADMIN_TOKEN, masters.ca_file)
        idle = idle_cpu(masters.cpu_seconds)
        loads = {c: drive(target, c, duration, warmup, f"c{c}") for c in levels}
        failovers, elections = [], []
        for number in range(rounds):
            r = failover.one_round(masters, number, timeout=FAILOVER_TIMEOUT)
            failovers.append(r["write"])
            elections.append(r["leader"])
            masters.start(r["index"])
            masters.wait_ready(timeout=60)
            masters.leader_index()
    return {"loads": loads, "failovers": failovers, "elections": elections, "idle": idle}


# --- the table -------------------------------------------------------------------------

def table(etcd: dict[str, Any], berth: dict[str, Any], levels: list[int]) -> list[str]:
    """The side-by-side rows: per client count creates/s, p50 and p99 of each, Berth/etcd ratios;
    then the failover medians."""
    def ms(x: float) -> str:
        return "-" if x != x else f"{x * 1e3:.1f}"

    lines = [f"  {'clients':>7} | {'etcd/s':>7} {'p50 ms':>7} {'p99 ms':>7} | {'Berth/s':>7} {'p50 ms':>7} "
             f"{'p99 ms':>7} | {'rate B/e':>8} {'p50 B/e':>8} {'p99 B/e':>8}"]
    for c in levels:
        e, b = etcd["loads"][c], berth["loads"][c]
        lines.append(f"  {c:>7} | {e['rate']:>7.0f} {ms(e['p50']):>7} {ms(e['p99']):>7} | {b['rate']:>7.0f} "
                     f"{ms(b['p50']):>7} {ms(b['p99']):>7} | {ratio(b['rate'], e['rate']):>8} "
                     f"{ratio(b['p50'], e['p50']):>8} {ratio(b['p99'], e['p99']):>8}")
        for name, r in (("etcd", e), ("Berth", b)):
            if r["errors"]:
                lines.append(f"  {'':>7}   {name} failed writes: {r['errors']}")

    def median(values: list[float | None]) -> float | None:
        done = [v for v in values if v is not None]
        return statistics.median(done) if done and len(done) == len(values) else None

    def rounds(values: list[float | None]) -> str:
        return ", ".join("none" if v is None else f"{v:.2f}" for v in values)

    def cores(values: list[float]) -> str:
        return " / ".join(f"{v:.1f}" for v in values)

    lines.append(f"  idle CPU, % of a core per member: etcd {cores(etcd['idle'])}, "
                 f"Berth {cores(berth['idle'])}")
    for key, what in (("failovers", "first write sent after it ok"),
                      ("elections", "a survivor names a leader")):
        fe, fb = median(etcd[key]), median(berth[key])
        lines.append(f"  leader SIGKILL -> {what}, median s: etcd {'-' if fe is None else f'{fe:.2f}'} "
                     f"({rounds(etcd[key])}), Berth {'-' if fb is None else f'{fb:.2f}'} "
                     f"({rounds(berth[key])}); B/e {ratio(fb, fe)}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 s per level and 1 failover round")
    parser.add_argument("--seconds", type=float, help="measured seconds per client level (default 10)")
    parser.add_argument("--clients", default="1,8,32", help="client thread counts (default 1,8,32)")
    parser.add_argument("--rounds", type=int, help="failover rounds per system (default 3, --quick 1)")
    args = parser.parse_args()
    try:
        levels = [int(c) for c in args.clients.split(",")]
    except ValueError:
        parser.error("--clients: comma-separated whole numbers, e.g. 1,8,32")
    if not levels or min(levels) < 1:
        parser.error("--clients: each at least 1")
    duration = args.seconds or (2.0 if args.quick else 10.0)
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 3)
    warmup = 0.5 if args.quick else 1.0
    interrupt_on_sigterm()
    began = time.monotonic()
    print(f"berth bench/versus_etcd.py: {duration:.0f} s per level after {warmup:.1f} s warm-up, clients "
          f"{levels}, {rounds} failover round(s); payload {len(failover.pod_writes('c32-31-1000'))} bytes "
          "(the pod body, also etcd's value)")
    print(f"  at start: {machine_header()}", flush=True)
    try:
        binary = ensure_etcd()
        etcd = measure_etcd(binary, levels, duration, warmup, rounds)
        berth = measure_berth(levels, duration, warmup, rounds)
    except KeyboardInterrupt:
        print("\ninterrupted; stopping everything this run started", file=sys.stderr)
        return 130
    print("\n".join(table(etcd, berth, levels)))
    print("  both over HTTPS with http.client, one keep-alive connection per client thread; etcd's peer "
          "links TLS, Berth's Raft links encrypted; B/e = Berth/etcd")
    print(f"  at end: {machine_header()}; total {time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
