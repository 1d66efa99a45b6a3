"""Leader SIGKILL, and leader SIGTERM -> first successful write through a survivor, over rounds.

    python -m bench.failover                  # 5 rounds of each
    python -m bench.failover --quick          # 2 rounds of each
    python -m bench.failover --signal kill    # SIGKILL rounds only (or: term)

Three real masters (berth.lab.masters). Each round: find the leader (GET /api/v1/cluster,
"state" == "leader"); one client thread POSTs pods continuously through a survivor
(the two survivors take turns across rounds); the leader is SIGKILLed at a recorded
time; the round's figure is the time from the kill to the 201 of the first write that
was *sent after* the kill. A second thread polls both survivors' /api/v1/cluster
(every 20 ms) for the time a new leader is first reported. The killed master is then
restarted and must be ready before the next round.

A SIGTERM round stops the leader as an upgrade does: it hands leadership over and drains
(master/main.py), so its figures, beside the crash's in the same run, show what a graceful
stop saves: the writes failed and the longest a write waited for its answer.
"""

from __future__ import annotations

import argparse
import functools
import http.client
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench._common import (
    ADMIN_TOKEN,
    PODS_PATH,
    Http,
    Masters,
    interrupt_on_sigterm,
    mark,
    pod_body_template,
    running_masters,
)
from master.store.replicated import RaftTimings

TARGET_WRITE = 1.5  # seconds from the kill to the first successful write sent after it
POLL_INTERVAL = 0.02
RETRY_PAUSE = 0.005  # after a failed write, so that a dead socket does not spin


@functools.cache
def _pod_template() -> tuple[bytes, bytes]:
    return pod_body_template("bench")


def pod_writes(name: str) -> bytes:
    """The body of a pod create named `name` (POST PODS_PATH, 201 when created)."""
    body, placeholder = _pod_template()
    return body.replace(placeholder, name.encode())


@dataclass
class Writer:
    """POSTs through one server until stopped; keeps (sent, answered, status) of each. By default
    pods through a master; bench.versus_etcd gives etcd's path, body, status and CA instead."""

    url: str
    prefix: str
    max_seconds: float
    path: str = PODS_PATH
    body_for: Callable[[str], bytes] = pod_writes
    success: int = 201
    token: str | None = ADMIN_TOKEN
    ca_file: Path | None = None
    log: list[tuple[float, float, int]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        client = Http(self.url, token=self.token, timeout=15, ca_file=self.ca_file)
        deadline = time.perf_counter() + self.max_seconds
        try:
            for k in range(1_000_000):
                if self.stop.is_set() or time.perf_counter() > deadline:
                    break
                sent = time.perf_counter()
                try:
                    status = client.request("POST", self.path, self.body_for(f"{self.prefix}-{k}"))[0]
                except (OSError, http.client.HTTPException):
                    status = -1
                self.log.append((sent, time.perf_counter(), status))
                if status != self.success:
                    time.sleep(RETRY_PAUSE)
        finally:
            client.close()

    def first_ok_sent_after(self, moment: float) -> tuple[float, float, int] | None:
        for entry in list(self.log):
            if entry[0] > moment and entry[2] == self.success:
                return entry
        return None


@dataclass
class LeaderWatch:
    """Polls the survivors' /api/v1/cluster: when does one first report a leader other than `old`?"""

    masters: Masters
    survivors: list[int]
    old_address: str
    max_seconds: float
    found: tuple[float, int, str] | None = None  # (time, reported by, leader address)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        clients = {i: Http(self.masters.url(i), timeout=2) for i in self.survivors}
        deadline = time.perf_counter() + self.max_seconds
        try:
            while not self.stop.is_set() and time.perf_counter() < deadline and self.found is None:
                for i, client in clients.items():
                    try:
                        code, status = client.json("GET", "/api/v1/cluster")
                    except (OSError, ValueError):
                        continue
                    leader = status.get("leader") if code == 200 else None
                    if leader and leader != self.old_address:
                        self.found = (time.perf_counter(), i, leader)
                        break
                self.stop.wait(POLL_INTERVAL)
        finally:
            for client in clients.values():
                client.close()


def one_round(masters: Masters, number: int, timeout: float, sig: signal.Signals = signal.SIGKILL
              ) -> dict[str, Any]:
    leader = masters.leader_index()
    survivors = [i for i in range(len(masters)) if i != leader]
    through = survivors[number % len(survivors)]
    writer = Writer(masters.url(through), f"r{number}", max_seconds=timeout + 30)
    writer_thread = threading.Thread(target=writer.run, daemon=True)
    watch = LeaderWatch(masters, survivors, masters.specs[leader].raft_address, max_seconds=timeout + 30)
    watch_thread = threading.Thread(target=watch.run, daemon=True)
    try:
        writer_thread.start()
        warm_until = time.perf_counter() + 10
        while sum(1 for e in writer.log if e[2] == 201) < 20 and time.perf_counter() < warm_until:
            time.sleep(0.01)
        if not any(e[2] == 201 for e in writer.log):
            raise RuntimeError(f"round {number}: no write succeeded before the kill")
        killed_at = time.perf_counter()
        os.kill(masters.pid(leader), sig)
        watch_thread.start()
        masters.kill(leader, sig=sig)  # reaps it (dead already, or once its graceful stop is done)
        deadline = killed_at + timeout
        first_ok = None
        while time.perf_counter() < deadline:
            first_ok = writer.first_ok_sent_after(killed_at)
            if first_ok is not None and watch.found is not None:
                break
            time.sleep(0.01)
    finally:
        writer.stop.set()
        watch.stop.set()
        writer_thread.join(timeout=20)
        if watch_thread.is_alive():
            watch_thread.join(timeout=5)
    after = [e for e in writer.log if e[0] > killed_at and (first_ok is None or e[0] <= first_ok[0])]
    failures: dict[int, int] = {}
    for _sent, _answered, status in after:
        if status != 201:
            failures[status] = failures.get(status, 0) + 1
    in_flight = next(((answered - killed_at, status) for sent, answered, status in writer.log
                      if sent <= killed_at < answered), None)
    around = [answered - sent for sent, answered, _ in writer.log if answered > killed_at - 1.0]
    new_leader = None
    if watch.found is not None:
        new_leader = next((m.name for m in masters.specs if m.raft_address == watch.found[2]), watch.found[2])
    return {
        "killed": masters.specs[leader].name, "through": masters.specs[through].name,
        "write": None if first_ok is None else first_ok[1] - killed_at,
        "leader": None if watch.found is None else watch.found[0] - killed_at,
        "new_leader": new_leader, "failed_writes": failures, "index": leader, "in_flight": in_flight,
        "longest": max(around, default=0.0), "signal": sig,
    }


def _summary(sig: signal.Signals, results: list[dict[str, Any]]) -> None:
    """The medians of one signal's rounds; SIGKILL's target is the issue's (a crash), SIGTERM's none."""
    name = sig.name
    writes = [r["write"] for r in results if r["write"] is not None]
    leaders = [r["leader"] for r in results if r["leader"] is not None]
    failed = sum(sum(r["failed_writes"].values()) + (r["in_flight"] is not None and r["in_flight"][1] != 201)
                 for r in results)
    if writes and len(writes) == len(results):
        median = statistics.median(writes)
        met = mark(median <= TARGET_WRITE)
        target = f"; target <= {TARGET_WRITE} s  {met}" if sig == signal.SIGKILL else ""
        print(f"  {name}: median -> first successful write: {median:.3f} s (min {min(writes):.3f}, "
              f"max {max(writes):.3f}){target}")
    else:
        print(f"  {name}: {len(results) - len(writes)} round(s) without a successful write in 20 s")
    if leaders:
        print(f"  {name}: median -> new leader reported by a survivor: {statistics.median(leaders):.3f} s "
              f"(min {min(leaders):.3f}, max {max(leaders):.3f}; polled every {POLL_INTERVAL * 1e3:.0f} ms)")
    longest = [r["longest"] for r in results] or [0.0]
    print(f"  {name}: writes failed {failed} in {len(results)} rounds; longest wait for an answer "
          f"{max(longest):.3f} s (median of the rounds' {statistics.median(longest):.3f})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds instead of 5")
    parser.add_argument("--rounds", type=int, help="rounds of each signal (default 5, --quick 2)")
    parser.add_argument("--signal", choices=["kill", "term", "both"], default="both",
                        help="stop the leader by SIGKILL (a crash), SIGTERM (a graceful stop), or both")
    args = parser.parse_args()
    rounds = args.rounds or (2 if args.quick else 5)
    signals = {"kill": [signal.SIGKILL], "term": [signal.SIGTERM],
               "both": [signal.SIGKILL, signal.SIGTERM]}[args.signal]
    interrupt_on_sigterm()
    began = time.monotonic()
    print(f"berth bench/failover.py: {rounds} rounds, 3 masters on loopback; load average "
          f"{os.getloadavg()[0]:.2f} at start")
    timings = RaftTimings()
    print(f"  RaftTimings: election timeout {timings.raft_min_timeout}-{timings.raft_max_timeout} s, "
          f"append entries every {timings.append_entries_period} s; writer retries a failed write after "
          f"{RETRY_PAUSE * 1e3:.0f} ms")
    print(f"  {'round':>5} {'signal':>7} {'killed':>6} {'via':>4} {'write ok after s':>16} "
          f"{'new leader after s':>18} {'new leader':>10} {'longest write s':>15}  write in flight at the "
          "signal; failed writes sent after it")
    root = Path(tempfile.mkdtemp(prefix="berth-bench-failover-"))
    results = []
    try:
        with running_masters(root, 3) as masters:
            for number in range(rounds * len(signals)):
                r = one_round(masters, number, timeout=20, sig=signals[number % len(signals)])
                results.append(r)
                write = "none in 20 s" if r["write"] is None else f"{r['write']:.3f}"
                lead = "none in 20 s" if r["leader"] is None else f"{r['leader']:.3f}"
                failures = ", ".join(f"{'no answer' if s == -1 else s}: {n}"
                                     for s, n in sorted(r["failed_writes"].items()))
                flight = "-"
                if r["in_flight"] is not None:
                    flight = f"{r['in_flight'][1]} after {r['in_flight'][0]:.3f} s"
                print(f"  {number + 1:>5} {r['signal'].name[3:]:>7} {r['killed']:>6} {r['through']:>4} "
                      f"{write:>16} {lead:>18} {r['new_leader'] or '-':>10} {r['longest']:>15.3f}  {flight}; "
                      f"{failures or 'none'}", flush=True)
                masters.start(r["index"])
                masters.wait_ready(timeout=60)
                masters.leader_index()
    except KeyboardInterrupt:
        print("\ninterrupted; stopping everything this run started", file=sys.stderr)
        return 130
    for sig in signals:
        _summary(sig, [r for r in results if r["signal"] == sig])
    print(f"  total {time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
