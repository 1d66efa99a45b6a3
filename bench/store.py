"""Store write path vs bare PySyncObj, then creates/s and latency through the HTTP API.

    python -m bench.store            # default, about 3.5 minutes (must stay under 4)
    python -m bench.store --quick    # under a minute
    python -m bench.store --only b --set api_threads=16 --set timings.append_entries_period=0.005

(a) Three Raft nodes on loopback, each in its own process (multiprocessing 'spawn'). Every
    side uses RaftTimings() and exactly the SyncObjConf that Store builds (replicated.raft_conf,
    compared field by field and printed), so also a journal (journalFile +
    fullDumpFile in a temp dir) on every side. Sides:
      bare     a SyncObj with a replicated counter, `incr()`
      payload  the same counter called as `incr(Create(...))`: the store's command is
               pickled, shipped, journaled and unpickled, but not applied
      store    Store: `store.machine.apply(Create(...), callback=cb)` (Store.propose minus
               the wait), then Store.propose itself
    Password: "none" on every side (the Store's own cost), and "same" (one password on every
    side, as real masters run: berth.lab.masters.write_cluster always writes one).
    The driver runs in the leader's process (the first node that leads with both peers
    connected claims it). Phases:
      callbacks   N async calls with callbacks, at most WINDOW in flight; latency = submit -> callback
      threads     32 threads, blocking calls (Store.propose; the same Event wait around incr)
      submit      (if Store has submit()) N calls of Store.submit: Store.propose's path minus the wait
      compaction  the threads load for a fixed time while all nodes compact their log at once:
                  each forks a child that writes its snapshot ("fork CPU s"); leadership kept or
                  lost is shown
(b) Three real masters (berth.lab.masters), POST pods for a fixed time at 1, 8 and 32 client
    threads, thread t on master t mod 3, one keep-alive connection each; CPU seconds of the
    masters, of this client process and of the rest of the machine are reported, since all
    share the cores. A GET /healthz row gives the HTTP stack's own cost.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import multiprocessing as mp
import os
import pickle
import queue
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, replicated

from bench._common import (
    PODS_PATH,
    Http,
    Masters,
    busy_cpu_seconds,
    interrupt_on_sigterm,
    mark,
    own_cpu_seconds,
    parse_settings,
    percentile,
    pod_body_template,
    running_masters,
)
from berth.lab.masters import LAB_TOKENS as TOKENS
from berth.lab.masters import free_ports
from berth.lab.masters import sample_pod as pod
from berth.private_files import private_dir
from master.objects.kinds import BY_PLURAL
from master.objects.validate import validate_object
from master.store.commands import Create
from master.store.replicated import RaftTimings, Store, raft_conf

PASSWORD = "bench-raft-password-0123456789"
TARGET_RATIO = 0.50
TARGET_HTTP_RATE = 1000.0  # creates/s at 32 clients
TARGET_HTTP_P99 = 0.050  # seconds at 8 clients


@dataclass(frozen=True)
class Params:
    n: int  # calls in the callbacks phase
    window: int  # outstanding calls at most
    thread_ops: int  # calls in the threads phase (all threads together)
    threads: int
    compaction_seconds: float  # a last threads phase while every node compacts its log (0: none)
    phase_timeout: float  # seconds, per phase

    compaction_cap = 30000  # commands prepared for the compaction phase (it is bounded by time)


KINDS = {
    "bare": "bare PySyncObj counter, incr()",
    "payload": "bare counter, incr(Create) - the store's command shipped, journaled, unpickled, not applied",
    "store": "Store: machine.apply(Create) / Store.propose(Create)",
}
PHASES = ("callbacks", "submit", "threads", "compaction")


# --- (a) the nodes ---------------------------------------------------------------------

class Counter(SyncObj):
    """Bare PySyncObj: one replicated counter."""

    def __init__(self, address: str, peers: list[str], conf: SyncObjConf) -> None:
        super().__init__(address, peers, conf)
        self.value = 0  # set after __init__ so that it is part of snapshots

    @replicated
    def incr(self, payload: Any = None) -> int:
        self.value += 1
        return self.value


def conf_view(raft: SyncObj) -> dict[str, str]:
    conf = raft._SyncObj__conf  # type: ignore[attr-defined]
    return {k: repr(v) for k, v in sorted(vars(conf).items())
            if k not in ("journalFile", "fullDumpFile") and not callable(v)}


def summarize(latencies: list[float], ok: int, failed: int, elapsed: float) -> dict[str, Any]:
    latencies.sort()
    return {"ok": ok, "failed": failed, "elapsed": elapsed,
            "rate": ok / elapsed if elapsed > 0 else float("nan"),
            "p50": percentile(latencies, 50), "p99": percentile(latencies, 99)}


def error_name(error: int) -> str:
    return next((name for name in dir(FAIL_REASON) if getattr(FAIL_REASON, name) == error), str(error))


def drive_callbacks(submit, n: int, window: int, timeout: float) -> dict[str, Any]:
    """n async submissions, at most `window` in flight; latency = submit -> callback (successes)."""
    slots = threading.Semaphore(window)
    started = [0.0] * n
    latency = [-1.0] * n
    errors: dict[str, int] = {}
    counts = {"done": 0, "last": 0.0}
    all_done = threading.Event()

    def callback_for(i: int):
        def on_result(result: Any, error: int) -> None:  # runs on PySyncObj's thread
            now = time.perf_counter()
            if error != FAIL_REASON.SUCCESS:
                errors[error_name(error)] = errors.get(error_name(error), 0) + 1
            elif getattr(result, "error", None) is not None:
                reason = f"outcome {result.error.reason}"
                errors[reason] = errors.get(reason, 0) + 1
            else:
                latency[i] = now - started[i]
            counts["done"] += 1
            counts["last"] = now
            if counts["done"] == n:
                all_done.set()
            slots.release()
        return on_result

    deadline = time.monotonic() + timeout
    first = time.perf_counter()
    submitted = 0
    for i in range(n):
        if not slots.acquire(timeout=max(0.0, deadline - time.monotonic())):
            break
        started[i] = time.perf_counter()
        submit(i, callback_for(i))
        submitted += 1
    all_done.wait(max(0.0, deadline - time.monotonic()))
    if counts["done"] < n:
        errors["no callback in time"] = n - counts["done"]
    elapsed = (counts["last"] or time.perf_counter()) - first
    ok = [x for x in latency if x >= 0]
    result = summarize(ok, len(ok), n - len(ok), elapsed)
    result.update(submitted=submitted, errors=errors)
    return result


def drive_threads(propose, ops: int, threads: int, timeout: float,
                  duration: float | None = None) -> dict[str, Any]:
    """`threads` threads calling the blocking `propose(i)` for `ops` calls in all.

    With `duration`, calls stop being sent after that many seconds (the rest are not counted).
    """
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors: list[dict[str, int]] = [{} for _ in range(threads)]
    deadline = time.monotonic() + timeout
    stop_sending = time.monotonic() + duration if duration is not None else float("inf")
    numbers = itertools.count()  # next() is atomic under the GIL
    sent = [0] * threads

    def worker(t: int) -> None:
        for i in numbers:
            if i >= ops or time.monotonic() > stop_sending:
                break
            sent[t] += 1
            if time.monotonic() > deadline:
                errors[t]["not sent in time"] = errors[t].get("not sent in time", 0) + 1
                continue
            start = time.perf_counter()
            try:
                propose(i)
            except Exception as err:
                name = getattr(err, "reason", None) or type(err).__name__
                errors[t][name] = errors[t].get(name, 0) + 1
                continue
            latencies[t].append(time.perf_counter() - start)

    workers = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(threads)]
    first = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join(max(0.1, deadline - time.monotonic() + 15))  # propose itself times out after 10 s
    elapsed = time.perf_counter() - first
    merged = [x for lat in latencies for x in lat]
    tally: dict[str, int] = {}
    for per_thread in errors:
        for name, count in per_thread.items():
            tally[name] = tally.get(name, 0) + count
    result = summarize(merged, len(merged), sum(sent) - len(merged), elapsed)
    result["errors"] = tally
    return result


def pod_commands(prefix: str, count: int) -> list[Create]:
    """Creates of distinct, validated pods (what the API would propose)."""
    template = validate_object(pod("template", "bench"), BY_PLURAL["pods"])
    stamp = "2026-01-01T00:00:00.000000Z"
    return [Create({**template, "metadata": {**template["metadata"], "name": f"{prefix}-{i}"}},
                   f"00000000-0000-4000-8000-{i:012d}", stamp) for i in range(count)]


def run_driver(kind: str, target: Any, params: Params, out_q: mp.Queue, compact: Any) -> None:
    raft: SyncObj = target.raft if kind == "store" else target
    has_submit = kind == "store" and hasattr(target, "submit")
    ranges: dict[str, range] = {}
    start = 0
    for phase, count in (("callbacks", params.n), ("submit", params.n if has_submit else 0),
                         ("threads", params.thread_ops),
                         ("compaction", params.compaction_cap if params.compaction_seconds else 0)):
        ranges[phase] = range(start, start + count)
        start += count
    commands = pod_commands("pod", start)
    if kind == "store":
        store: Store = target
        size = len(pickle.dumps((0, (commands[0],)), 2))

        def submit(i: int, cb) -> None:
            store.machine.apply(commands[i], callback=cb)

        def propose(i: int) -> None:
            store.propose(commands[i])
    else:
        counter: Counter = target
        args = (lambda _i: ()) if kind == "bare" else (lambda i: (commands[i],))
        size = len(pickle.dumps((0, args(0)), 2))

        def submit(i: int, cb) -> None:
            counter.incr(*args(i), callback=cb)

        def propose(i: int) -> None:  # what Store.propose does around machine.apply
            done = threading.Event()
            box: list[Any] = [None, None]

            def on_result(result: Any, error: int) -> None:
                box[0], box[1] = result, error
                done.set()

            counter.incr(*args(i), callback=on_result)
            if not done.wait(10.0):
                raise TimeoutError("not committed in 10 s")
            if box[1] != FAIL_REASON.SUCCESS:
                raise RuntimeError(f"raft error {error_name(box[1])}")

    def offset(phase: str, call):
        first = ranges[phase].start
        return lambda i, *rest: call(first + i, *rest)

    out_q.put(("info", {"command_bytes": size}))
    phases = [("callbacks", lambda: drive_callbacks(offset("callbacks", submit), params.n, params.window,
                                                    params.phase_timeout))]
    if has_submit:  # Store.propose's own path (group commit) minus the wait
        phases.append(("submit", lambda: drive_callbacks(
            offset("submit", lambda i, cb: store.submit(commands[i], cb)), params.n, params.window,
            params.phase_timeout)))
    phases.append(("threads", lambda: drive_threads(offset("threads", propose), params.thread_ops,
                                                    params.threads, params.phase_timeout)))
    if params.compaction_seconds:
        phases.append(("compaction", lambda: drive_threads(
            offset("compaction", propose), params.compaction_cap, params.threads, params.phase_timeout,
            duration=params.compaction_seconds)))
    for phase, run in phases:
        out_q.put(("phase-start", phase))
        time.sleep(0.05)  # let the parent snapshot CPU times first
        term = raft.raftCurrentTerm
        log_before = raft.getStatus()["log_len"]
        if phase == "compaction":  # as when all nodes cross log_compaction_min_entries together
            compact.set()
            raft.forceLogCompaction()
        result = run()
        result["leadership"] = "kept" if raft._isLeader() and raft.raftCurrentTerm == term else "LOST"
        result["log_len"] = (log_before, raft.getStatus()["log_len"])
        out_q.put(("phase-end", phase, result))
    if params.compaction_seconds:  # a snapshot still being written is reaped (and counted) here
        out_q.put(("phase-start", "after"))
        time.sleep(2.0)
        out_q.put(("phase-end", "after", {}))


class LogTally(logging.Handler):
    """Counts a node's warnings (PySyncObj's CRITICAL 'truncating already-applied ...' above all)."""

    TRUNCATED = re.compile(r"from index (\d+) \(last applied: (\d+)\)")

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: dict[str, int] = {}
        self.first: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.counts[record.levelname] = self.counts.get(record.levelname, 0) + 1
        self.first.setdefault(record.levelname, message[:160])
        found = self.TRUNCATED.search(message)
        if found:  # applied entries dropped from the log and received again
            key = "applied entries truncated and received again"
            self.counts[key] = self.counts.get(key, 0) + int(found.group(2)) - int(found.group(1)) + 1


def node_main(kind: str, index: int, addresses: list[str], data_dir: str, password: str | None,
              params: Params, claim: Any, out_q: mp.Queue, stop: Any, compact: Any) -> None:
    """One Raft node; the first node to be a leader with both peers connected runs the driver."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    tally = LogTally()
    logging.getLogger().addHandler(tally)
    logging.getLogger().setLevel(logging.WARNING)
    peers = [a for a in addresses if a != addresses[index]]
    timings = RaftTimings()
    raft: SyncObj | None = None
    try:
        if kind == "store":
            store = Store(addresses[index], peers, data_dir, password, timings)
            raft, target = store.raft, store
        else:
            private_dir(data_dir)  # as Store makes its own: the journal's directory
            raft = target = Counter(addresses[index], peers, raft_conf(timings, data_dir, password))
        if index == 0:
            out_q.put(("conf", kind, conf_view(raft)))
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline:
            status = raft.getStatus()
            if (raft._isLeader() and status["has_quorum"]
                    and all(status[f"partner_node_status_server_{p}"] == 2 for p in peers)
                    and status["last_applied"] >= status["commit_idx"] > 1):
                with claim.get_lock():
                    mine = claim.value == -1
                    if mine:
                        claim.value = index
                if mine:
                    out_q.put(("leader", index))
                    run_driver(kind, target, params, out_q, compact)
                    out_q.put(("done", index))
                break
            stop.wait(0.02)
        compacted = False
        until = time.monotonic() + 300
        while not stop.is_set() and time.monotonic() < until:
            if compact.is_set() and not compacted:
                raft.forceLogCompaction()
                compacted = True
            stop.wait(0.02)
    except BaseException:
        out_q.put(("error", index, traceback.format_exc()))
    finally:
        if raft is not None:
            raft.destroy()
            time.sleep(0.1)
        out_q.put(("log", index, tally.counts, tally.first))


def cpu_of(procs: list[Any]) -> list[float]:
    """Per node: its own CPU seconds, then its reaped children's (PySyncObj forks to compact its log)."""
    own, children = [], []
    for proc in procs:
        try:
            t = psutil.Process(proc.pid).cpu_times()
            own.append(t.user + t.system)
            children.append(t.children_user + t.children_system)
        except psutil.Error:
            own.append(float("nan"))
            children.append(float("nan"))
    return own + children


def run_raft_cluster(kind: str, password: str | None, params: Params, root: Path) -> dict[str, Any]:
    """Three nodes of `kind` ('bare' or 'store'); the driver's results and per-node CPU per phase."""
    ctx = mp.get_context("spawn")
    addresses = [f"127.0.0.1:{p}" for p in free_ports(3)]
    claim = ctx.Value("i", -1)
    stop = ctx.Event()
    compact = ctx.Event()
    out_q: mp.Queue = ctx.Queue()
    procs = [ctx.Process(target=node_main, name=f"{kind}-node{i}",
                         args=(kind, i, addresses, str(root / f"{kind}-{i}"), password, params,
                               claim, out_q, stop, compact), daemon=True) for i in range(3)]
    result: dict[str, Any] = {"kind": kind, "phases": {}, "cpu": {}}
    try:
        for proc in procs:
            proc.start()
        deadline = time.monotonic() + 60 + 4 * params.phase_timeout + 30
        cpu_start: dict[str, list[float]] = {}
        while time.monotonic() < deadline:
            try:
                message = out_q.get(timeout=1.0)
            except queue.Empty:
                if not all(p.is_alive() for p in procs):
                    raise RuntimeError(f"a {kind} node exited early") from None
                continue
            tag = message[0]
            if tag == "conf":
                result["conf"] = message[2]
            elif tag == "leader":
                result["leader"] = message[1]
            elif tag == "info":
                result.update(message[1])
            elif tag == "phase-start":
                cpu_start[message[1]] = [*cpu_of(procs), own_cpu_seconds(), busy_cpu_seconds()]
            elif tag == "phase-end":
                phase, stats = message[1], message[2]
                end = [*cpu_of(procs), own_cpu_seconds(), busy_cpu_seconds()]
                delta = [b - a for a, b in zip(cpu_start[phase], end, strict=True)]
                result["phases"][phase] = stats
                result["cpu"][phase] = delta[:3]
                result.setdefault("fork_cpu", {})[phase] = sum(delta[3:6])
                result.setdefault("other_cpu", {})[phase] = delta[7] - sum(delta[:7])
            elif tag == "error":
                raise RuntimeError(f"{kind} node {message[1]} failed:\n{message[2]}")
            elif tag == "done":
                break
        else:
            raise TimeoutError(f"{kind} cluster did not finish in time")
        stop.set()
        logs: dict[int, tuple[dict[str, int], dict[str, str]]] = {}
        drain_until = time.monotonic() + 10
        while len(logs) < len(procs) and time.monotonic() < drain_until:
            try:
                message = out_q.get(timeout=0.5)
            except queue.Empty:
                continue
            if message[0] == "log":
                logs[message[1]] = (message[2], message[3])
        result["logs"] = logs
        return result
    finally:
        stop.set()
        for proc in procs:
            proc.join(timeout=5)
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=3)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=3)
        out_q.close()
        out_q.cancel_join_thread()


def compare_confs(confs: dict[str, dict[str, str]]) -> str:
    if "store" not in confs or len(confs) < 2:
        return "SyncObjConf: not compared"
    store = confs["store"]
    diffs = [f"{k}: {kind}={conf.get(k)} store={store.get(k)}"
             for kind, conf in confs.items() for k in sorted(set(conf) | set(store))
             if conf.get(k) != store.get(k)]
    if not diffs:
        return "SyncObjConf: identical on every side (journal/dump paths aside)"
    return "SyncObjConf DIFFERS: " + "; ".join(diffs)


def log_summary(runs: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    first: dict[str, str] = {}
    for run in runs:
        for _node, (node_counts, node_first) in sorted(run.get("logs", {}).items()):
            for level, count in node_counts.items():
                counts[level] = counts.get(level, 0) + count
                if level in node_first:
                    first.setdefault(level, node_first[level])
    if not counts:
        return "no warnings"
    return "; ".join(f"{n} {level}" + (f" (first: {first[level]!r})" if level in first else "")
                     for level, n in sorted(counts.items()))


def part_a(params: Params, modes: list[tuple[str, int]]) -> None:
    """`modes`: (password mode, runs per side) pairs; mode "none" or "same"."""
    print("(a) Store vs bare PySyncObj: 3 nodes, one process each (multiprocessing spawn), loopback; "
          "RaftTimings() defaults and Store's SyncObjConf on every side; journalFile+fullDumpFile "
          "on every side")
    for kind, what in KINDS.items():
        print(f"    {kind:<8} {what}")
    print(f"    callbacks:  {params.n} async calls, at most {params.window} in flight, "
          f"latency submit -> callback")
    print(f"    submit:     store only, if Store has submit(): {params.n} calls of Store.submit (what "
          f"Store.propose does minus the wait: group commit), same window")
    print(f"    threads:    {params.thread_ops} blocking calls from {params.threads} threads "
          f"(Store.propose; the same Event wait around incr)")
    if params.compaction_seconds:
        print(f"    compaction: the same for {params.compaction_seconds:.0f} s while all three nodes compact "
              f"their log (forceLogCompaction at once, as when they cross "
              f"log_compaction_min_entries={RaftTimings().log_compaction_min_entries} together): each "
              f"forks a child that pickles and gzips its state")
    print("    sides alternate; with several runs per side the best is shown, all runs' ops/s at the end")
    root = Path(tempfile.mkdtemp(prefix="berth-bench-raft-"))
    confs: dict[str, dict[str, str]] = {}
    try:
        for mode, repeats in modes:
            password = PASSWORD if mode == "same" else None
            runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
            for r in range(repeats):
                for kind in KINDS:
                    result = run_raft_cluster(kind, password, params, root / f"{mode}-{r}")
                    confs.setdefault(kind, result.get("conf", {}))
                    runs[kind].append(result)
            print(f"\n  password: {'none on any side' if mode == 'none' else 'the same one on every side'}; "
                  f"{repeats} run(s) per side")
            print(f"  {'side':<8} {'phase':<10} {'ops/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'failed':>6}  "
                  f"{'CPU s leader/followers':<22} {'us CPU/op':>9} {'fork CPU s':>10} {'other CPU s':>11}"
                  f"  runs ops/s")
            best: dict[tuple[str, str], dict[str, Any]] = {}
            for kind in KINDS:
                for phase in PHASES:
                    rows = [(run["phases"][phase], run) for run in runs[kind] if phase in run["phases"]]
                    if not rows:
                        continue
                    stats, run = max(rows, key=lambda row: row[0]["rate"])
                    best[(kind, phase)] = stats
                    cpu = run["cpu"][phase]
                    leader = run.get("leader", 0)
                    followers = "/".join(f"{c:.1f}" for i, c in enumerate(cpu) if i != leader)
                    per_op = sum(cpu) / max(1, stats["ok"]) * 1e6
                    fork = run["fork_cpu"][phase]
                    if phase == "compaction":  # a snapshot may be written (and reaped) after the phase
                        fork += run["fork_cpu"].get("after", 0.0)
                    all_rates = ",".join(f"{row[0]['rate']:.0f}" for row in rows)
                    print(f"  {kind:<8} {phase:<10} {stats['rate']:>7.0f} {stats['p50'] * 1e3:>7.1f} "
                          f"{stats['p99'] * 1e3:>7.1f} {stats['failed']:>6}  "
                          f"{cpu[leader]:>4.1f} / {followers:<15} {per_op:>9.0f} {fork:>10.1f} "
                          f"{max(0.0, run['other_cpu'][phase]):>11.1f}  {all_rates}")
                    for other in (row[0] for row in rows):
                        if other["errors"] or other.get("leadership") != "kept":
                            print(f"{'':<21}a run at {other['rate']:.0f} ops/s: "
                                  f"errors {other['errors'] or '-'}, "
                                  f"leadership {other.get('leadership')} during the phase")
                    if phase == "compaction":
                        logs = "; ".join(f"{row[0]['log_len'][0]} -> {row[0]['log_len'][1]}" for row in rows)
                        print(f"{'':<21}leader's log entries before -> after the phase: {logs}")
            pairs = (("callbacks", "callbacks"), ("submit", "callbacks"), ("threads", "threads"))
            for phase, versus in pairs:
                if ("bare", versus) not in best:
                    continue
                bare = best[("bare", versus)]["rate"]
                for kind in ("payload", "store"):
                    if (kind, phase) not in best:
                        continue
                    ratio = best[(kind, phase)]["rate"] / bare
                    target = "(the command shipped, not applied)"
                    if kind == "store" and phase == "callbacks":
                        target = "(raw StateMachine.apply, one Raft entry per write: not the propose path)"
                    elif kind == "store":
                        target = f"target >= {TARGET_RATIO:.0%}  {mark(ratio >= TARGET_RATIO)}"
                    if phase != versus:
                        target += f"  (vs bare {versus})"
                    print(f"  ratio {kind + '/bare':<12} {phase:<9}: {ratio:6.1%}   {target}")
            print("  us CPU/op: the three nodes' CPU over the phase per committed op; fork CPU s: snapshot "
                  "children reaped; other CPU s: rest of the machine (children still running, VM steal)")
            for kind in KINDS:
                print(f"  {kind} pysyncobj log: {log_summary(runs[kind])}")
            sizes = ", ".join(f"{k} {runs[k][0].get('command_bytes')} B" for k in KINDS if runs[k])
            print(f"  pickled command (protocol 2, as PySyncObj does): {sizes}")
        print("  " + compare_confs(confs) + "; commandsWaitLeader="
              + confs.get("store", {}).get("commandsWaitLeader", "?"))
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --- (b) through the HTTP API ----------------------------------------------------------

def http_load(masters: Masters, clients: int, duration: float, warmup: float, prefix: str,
              lib: str = "http.client", leader: int | None = None,
              get_path: str | None = None) -> dict[str, Any]:
    """`clients` threads POSTing pods round-robin over the masters; only post-warmup requests count.

    With `get_path`, they GET that path instead (200 is success): the HTTP stack without Raft.
    """
    method, path, success = ("GET", get_path, 200) if get_path else ("POST", PODS_PATH, 201)
    body, placeholder = pod_body_template("bench")
    stop = threading.Event()
    start_at = time.perf_counter() + 0.2
    measure_from = start_at + warmup
    end_at = measure_from + duration
    latencies: list[list[float]] = [[] for _ in range(clients)]
    statuses: list[dict[str, int]] = [{} for _ in range(clients)]
    max_requests = int(duration * 20000) + 1000  # a bound on the loop, never reached

    def worker(t: int) -> None:
        url = masters.url(t % len(masters))
        if lib == "requests":
            import requests
            session = requests.Session()
            session.verify, session.trust_env = str(masters.ca_file), False
            session.headers.update({"Authorization": f"Bearer {TOKENS['admin'][1]}",
                                    "Content-Type": "application/json"})
            full = url + path

            def post(data: bytes | None) -> int:
                return session.request(method, full, data=data, timeout=15).status_code
        else:
            client = Http(url, timeout=15)

            def post(data: bytes | None) -> int:
                return client.request(method, path, data)[0]
        while time.perf_counter() < start_at and not stop.is_set():
            time.sleep(0.005)
        for k in range(max_requests):
            began = time.perf_counter()
            if began >= end_at or stop.is_set():
                break
            data = None if get_path else body.replace(placeholder, f"{prefix}-{t}-{k}".encode())
            try:
                code = post(data)
            except Exception:
                code = -1
                time.sleep(0.01)
            ended = time.perf_counter()
            if began >= measure_from and ended <= end_at + 15:
                statuses[t][code] = statuses[t].get(code, 0) + 1
                if code == success:
                    latencies[t].append(ended - began)

    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(clients)]
    for th in threads:
        th.start()
    try:
        while time.perf_counter() < measure_from:
            time.sleep(0.01)
        cpu0, own0, busy0 = masters.cpu_seconds(), own_cpu_seconds(), busy_cpu_seconds()
        wall0 = time.perf_counter()
        while time.perf_counter() < end_at:
            time.sleep(0.01)
        cpu1, own1, busy1 = masters.cpu_seconds(), own_cpu_seconds(), busy_cpu_seconds()
        wall1 = time.perf_counter()
        for th in threads:
            th.join(timeout=20)
    finally:
        stop.set()
    merged = sorted(x for lat in latencies for x in lat)
    via_leader = sorted(x for t, lat in enumerate(latencies) if t % len(masters) == leader for x in lat)
    via_follower = sorted(x for t, lat in enumerate(latencies) if t % len(masters) != leader for x in lat)
    codes: dict[int, int] = {}
    for per_thread in statuses:
        for code, count in per_thread.items():
            codes[code] = codes.get(code, 0) + count
    return {
        "clients": clients, "rate": len(merged) / duration, "ok": len(merged),
        "p50": percentile(merged, 50), "p99": percentile(merged, 99),
        "p50_leader": percentile(via_leader, 50), "p50_follower": percentile(via_follower, 50),
        "errors": {c: n for c, n in codes.items() if c != success},
        "master_cpu": [b - a for a, b in zip(cpu0, cpu1, strict=True)],
        "client_cpu": own1 - own0, "wall": wall1 - wall0,
        "other_cpu": max(0.0, (busy1 - busy0) - (own1 - own0) - sum(cpu1) + sum(cpu0)),
    }


def part_b(levels: list[int], duration: float, warmup: float, lib_check: float,
           settings: dict[str, Any]) -> None:
    print("\n(b) HTTP API: 3 real masters (Raft password on, as write_cluster sets up), "
          "POST /api/v1/namespaces/bench/pods, clients round-robin over the masters, keep-alive")
    if settings:
        print(f"  master settings: {settings}")
    root = Path(tempfile.mkdtemp(prefix="berth-bench-http-"))
    with running_masters(root, 3, settings) as masters:
        leader = masters.leader_index()
        names = ", ".join(s.name for s in masters.specs)
        print(f"  masters {names} ready; leader {masters.specs[leader].name}; client thread t writes "
              f"through m(t mod 3 + 1)")
        idle0, idle_wall0 = masters.cpu_seconds(), time.perf_counter()
        time.sleep(2.0)
        idle = [b - a for a, b in zip(idle0, masters.cpu_seconds(), strict=True)]
        idle_wall = time.perf_counter() - idle_wall0
        print(f"  idle masters (no requests, {idle_wall:.0f} s): "
              f"{'/'.join(f'{c / idle_wall:.0%}' for c in idle)} of a core each (Raft ticks, heartbeats)")
        lib = "http.client"
        if lib_check > 0:
            per_request = {}
            for candidate in ("requests", "http.client"):
                r = http_load(masters, 8, lib_check, 0.5, "lib-" + candidate.replace(".", "-"), candidate)
                per_request[candidate] = r["client_cpu"] / r["ok"] * 1e3 if r["ok"] else float("inf")
                print(f"  client check, 8 threads, {lib_check:.0f} s: {candidate:<11} "
                      f"{r['rate']:6.0f} creates/s, client CPU {per_request[candidate]:.2f} ms/request"
                      + (f", errors {r['errors']}" if r["errors"] else ""))
            lib = min(per_request, key=per_request.get)
            print(f"  using {lib} (lighter per request)")
        print(f"  {duration:.0f} s per level after {warmup:.1f} s warm-up; CPU = user+system seconds "
              f"over the measured window ({os.cpu_count()} cores)")
        print(f"  {'clients':>7} {'creates/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'p50 ldr/flw':>11}  "
              f"{'master CPU s (m1/m2/m3)':<23} {'client CPU s':>12} {'other CPU s':>11}  "
              f"{'errors':<8} target")
        results = {}
        for clients in levels:
            r = http_load(masters, clients, duration, warmup, f"c{clients}", lib, leader)
            results[clients] = r
            target = ""
            if clients == 32:
                target = f">= {TARGET_HTTP_RATE:.0f}/s {mark(r['rate'] >= TARGET_HTTP_RATE)}"
            elif clients == 8:
                target = f"p99 <= {TARGET_HTTP_P99 * 1e3:.0f} ms {mark(r['p99'] <= TARGET_HTTP_P99)}"
            mcpu = r["master_cpu"]
            split = "/".join("-" if x != x else f"{x * 1e3:.0f}"
                             for x in (r["p50_leader"], r["p50_follower"]))
            masters_cpu = f"{sum(mcpu):.1f} ({'/'.join(f'{c:.1f}' for c in mcpu)})"
            print(f"  {clients:>7} {r['rate']:>9.0f} {r['p50'] * 1e3:>7.1f} {r['p99'] * 1e3:>7.1f} "
                  f"{split:>11}  {masters_cpu:<23} {r['client_cpu']:>12.1f} {r['other_cpu']:>11.1f}  "
                  f"{r['errors'] or '-'!s:<8} {target}", flush=True)
        floor = http_load(masters, 32, min(duration, 3.0), 0.5, "get", lib, leader, get_path="/healthz")
        floor_cpu = sum(floor["master_cpu"]) / max(1, floor["ok"]) * 1e3
        print(f"  reference, no Raft: GET /healthz (no auth) at 32 clients: {floor['rate']:.0f} requests/s, "
              f"p50 {floor['p50'] * 1e3:.1f} ms, {floor_cpu:.2f} ms master CPU per request")
        for clients, r in results.items():
            total = sum(r["master_cpu"]) + r["client_cpu"]
            if r["ok"]:
                print(f"  {clients:>2} clients: {sum(r['master_cpu']) / r['ok'] * 1e3:.2f} ms master CPU "
                      f"+ {r['client_cpu'] / r['ok'] * 1e3:.2f} ms client CPU per create; "
                      f"{total / r['wall']:.2f} of {os.cpu_count()} cores busy")
        if leader != masters.leader_index():
            print("  note: the leader changed during the run (p50 ldr/flw split is then wrong)")
        print("  'other CPU s': the rest of the machine (other processes, VM steal) in the same window")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small N and short levels (< 60 s)")
    parser.add_argument("--only", choices=("a", "b"), help="run only part (a) or (b)")
    parser.add_argument("--password", choices=("none", "same", "both"),
                        help="part (a) Raft password: none, the same on every side, or both modes "
                             "(default: both, 2 runs per side without a password and 1 with; --quick: none)")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="part (b) master setting, e.g. api_threads=16 or "
                             "timings.append_entries_period=0.005 (repeatable)")
    args = parser.parse_args()
    settings = parse_settings(args.settings)
    interrupt_on_sigterm()
    if args.quick:
        params = Params(n=5000, window=2000, thread_ops=3000, threads=32, compaction_seconds=0,
                        phase_timeout=30)
        repeats, levels, duration, warmup, lib_check = {"none": 1, "same": 1}, [1, 8, 32], 3.0, 0.5, 1.0
        password = args.password or "none"
    else:
        params = Params(n=12000, window=2000, thread_ops=6000, threads=32, compaction_seconds=5.0,
                        phase_timeout=60)
        repeats, levels, duration, warmup, lib_check = {"none": 2, "same": 1}, [1, 8, 32], 10.0, 1.0, 2.0
        password = args.password or "both"
    modes = [(mode, repeats[mode]) for mode in (["none", "same"] if password == "both" else [password])]
    began = time.monotonic()
    mode = "--quick" if args.quick else "(default)"
    print(f"berth bench/store.py {mode}; python {sys.version.split()[0]}; {os.cpu_count()} cores; "
          f" load average {os.getloadavg()[0]:.2f} at start")
    try:
        if args.only in (None, "a"):
            part_a(params, modes)
        if args.only in (None, "b"):
            part_b(levels, duration, warmup, lib_check, settings)
    except KeyboardInterrupt:
        print("\ninterrupted; stopping everything this run started", file=sys.stderr)
        return 130
    print(f"\ntotal {time.monotonic() - began:.0f} s; load average {os.getloadavg()[0]:.2f} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
