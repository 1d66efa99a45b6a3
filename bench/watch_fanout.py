"""Watch fan-out: N watchers over 3 masters each receive every event of a W writes/s load, in order.

    python -m bench.watch_fanout                       # 1000 watchers, 1000 writes/s, 30 s
    python -m bench.watch_fanout --quick               # 10 s of writes
    python -m bench.watch_fanout --watchers 300 --rate 200 --seconds 20 --set stream_limit=200
    python -m bench.watch_fanout --quick --versus-etcd  # a 3-member etcd first, the same load, ratios

Three real masters (berth.lab.masters). Every watcher is a real `GET /api/v1/watch` of the
ConfigMaps of one namespace from the revision read before the load, watcher i on master i mod 3;
all of them are raw HTTPS keep-alive sockets on one asyncio loop in a thread of this process
(HTTP/1.0, so the body is the JSON lines themselves, unchunked), and a received block is reduced
to its events' revisions with one regex: no JSON decoding per event, so the client stays cheap.
The writers are another process (multiprocessing 'spawn', its own GIL): WRITER_THREADS threads,
thread t on master t mod 3, one keep-alive connection each, paced to W writes/s in total, half
creates and half replaces of a ConfigMap created UPDATE_LAG writes earlier; each write's revision
(its answer's resourceVersion) and the time its answer came are kept.

Then, for EVERY watcher, its revisions are compared with the writers' (`check_watcher`): each
event once, in revision order, none missing. Lag is an event's receipt by a watcher (the time its
block reached the client's loop) minus the time its writer got the answer, over every event of
LAG_SAMPLE watchers spread over the masters. CPU of each master and of the client (both
processes) over the writes. The masters' stream limits are raised for the bench (one token, one
address for every watcher): `stream_limit` and `stream_limit_per_token` to the watchers per master
plus a margin, `api_connections_per_address` to the connection limit.

With --versus-etcd the same load runs first against a 3-member etcd 3.4 (bench.versus_etcd's
cluster, over TLS; installed from Debian when missing), through its JSON gateway: every watcher a
`POST /v3/watch` of the ConfigMaps' key prefix from the same revision on, the writers `POST
/v3/kv/put` of the same JSON body as the value (a create puts a new key, a replace an earlier one),
each write's revision read from its answer's header. The same client, the same check and the same
CPU count (etcd's gateway runs in its members' processes) make the two comparable.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import json
import math
import multiprocessing as mp
import re
import resource
import shutil
import sys
import tempfile
import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench._common import (
    ADMIN_TOKEN,
    Http,
    Masters,
    interrupt_on_sigterm,
    machine_header,
    mark,
    own_cpu_seconds,
    parse_settings,
    percentile,
    tls_context,
)
from bench.versus_etcd import EtcdCluster, ensure_etcd, running_etcd
from berth.lab.masters import process_cpu_seconds
from master.config import MasterConfig

NAMESPACE = "fan"
WRITER_THREADS = 48
UPDATE_LAG = 512  # a replace targets the ConfigMap created this many writes earlier
CONNECT_CONCURRENCY = 32  # watches being opened at once
OPEN_TIMEOUT = 120.0  # every watcher's first bookmark, at most
DRAIN_TIMEOUT = 60.0  # after the last write, for every watcher to catch up
WRITE_GRACE = 60.0  # writes not sent by the load's end plus this are never sent (counted)
LAG_SAMPLE = 60  # watchers whose every event's lag is measured
STREAM_MARGIN = 16  # stream slots above the watchers per master (the bench's own reads)
TARGET_WATCHERS = 1000
TARGET_RATE = 1000
TARGET_ACHIEVED = 0.99  # of the rate asked for
NOTABLE = re.compile(r" (WARNING|ERROR|CRITICAL) |no longer leading")
EVENT = re.compile(rb'"type":"(?:ADDED|MODIFIED|DELETED)","revision":(\d+)')
ETCD_EVENT = re.compile(rb'"mod_revision":"(\d+)"')  # once per event (the header says "revision")
ETCD_PREFIX = f"/registry/configmaps/{NAMESPACE}/"


@dataclass(frozen=True)
class Side:
    """How one system's watch stream reads: what its first block holds once the watch is open, the
    pattern with one match per event (its revision), and what ends a watch in error."""

    name: str
    opened: bytes
    event: re.Pattern[bytes]
    error: bytes


BERTH = Side("Berth", b'"BOOKMARK"', EVENT, b'"type":"ERROR"')
ETCD = Side("etcd", b'"created":true', ETCD_EVENT, b'"canceled":true')


# --- the pure check ---------------------------------------------------------------------------
@dataclass(frozen=True)
class WatcherVerdict:
    """What one watcher received against what the writers committed."""

    delivered: int
    missing: int  # confirmed revisions never received
    duplicates: int  # events received more than once
    out_of_order: int  # events received after a higher revision
    unexpected: int  # revisions no writer confirmed (a write whose answer was lost may explain some)
    first_missing: int | None = None
    behind: bool = False  # every missing revision is newer than the last received: not caught up, no gap

    def ok(self, unconfirmed: int = 0) -> bool:
        return (self.missing == 0 and self.duplicates == 0 and self.out_of_order == 0
                and self.unexpected <= unconfirmed)


def check_watcher(received: Sequence[int], confirmed: Sequence[int]) -> WatcherVerdict:
    """`received`: a watcher's revisions as they came; `confirmed`: the writers' revisions, sorted.
    Every confirmed revision once, in order, is the pass; anything else is counted by kind."""
    if len(received) == len(confirmed) and all(a == b for a, b in zip(received, confirmed, strict=True)):
        return WatcherVerdict(len(received), 0, 0, 0, 0)
    seen = set(received)
    wanted = set(confirmed)
    missing = sorted(wanted - seen)
    out_of_order = sum(1 for before, after in itertools.pairwise(received) if after < before)
    newest = max(seen, default=None)
    return WatcherVerdict(len(received), len(missing), len(received) - len(seen), out_of_order,
                          len(seen - wanted), missing[0] if missing else None,
                          bool(missing) and (newest is None or missing[0] > newest))


def revisions_in(block: bytes, event: re.Pattern[bytes] = EVENT) -> list[int]:
    """The revisions of the events in a block of whole JSON lines (bookmarks and errors skipped): the
    API writes each event's "type" then its "revision" first (etcd's gateway each event's
    "mod_revision"), so a regex finds them undecoded."""
    return [int(found) for found in event.findall(block)]


# --- the watchers -----------------------------------------------------------------------------
class Watcher(asyncio.Protocol):
    """One watch stream: its revisions as received, and when each block came (for the lag sample)."""

    def __init__(self, index: int, master: int, request: bytes, timed: bool, side: Side) -> None:
        self.index, self.master, self.request, self.timed, self.side = index, master, request, timed, side
        self.transport: asyncio.Transport | None = None
        self.head: bytes | None = None  # the response's status line and headers
        self.buffer = b""
        self.revisions = array("q")
        self.blocks: list[tuple[float, int]] = []  # (receipt time, revisions received up to then)
        self.opened = asyncio.Event()
        self.status: int | None = None
        self.errors: list[bytes] = []
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.opened.set()

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self.buffer += data
        if self.head is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            self.head, self.buffer = self.buffer[:end], self.buffer[end + 4:]
            self.status = int(self.head[9:12])
            if self.status != 200:
                self.errors.append(self.head[:12] + b" " + self.buffer[:300])
        cut = self.buffer.rfind(b"\n")
        if cut < 0:
            return
        block, self.buffer = self.buffer[:cut + 1], self.buffer[cut + 1:]
        if not self.opened.is_set() and self.side.opened in block:
            self.opened.set()
        found = revisions_in(block, self.side.event)
        if found:
            self.revisions.extend(found)
            if self.timed:
                self.blocks.append((now, len(self.revisions)))
        if self.side.error in block:
            self.errors.append(block[block.find(self.side.error):][:300])

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()


def watch_request(side: Side, host: str, since: int, timeout: int) -> bytes:
    """An HTTP/1.0 request for every ConfigMap event after revision `since` (unchunked answer)."""
    if side is ETCD:
        body = json.dumps({"create_request": {"key": _b64(ETCD_PREFIX), "start_revision": since + 1,
                                              "range_end": _b64(_prefix_end(ETCD_PREFIX))}}).encode()
        return (f"POST /v3/watch HTTP/1.0\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    return (f"GET /api/v1/watch?kind=ConfigMap&namespace={NAMESPACE}&since={since}&timeoutSeconds={timeout}"
            f" HTTP/1.0\r\nHost: {host}\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\r\n").encode()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _prefix_end(prefix: str) -> str:
    """etcd's range end for a key prefix: the prefix with its last byte one higher."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class Fleet:
    """Every watcher, on one asyncio loop in one thread."""

    def __init__(self, cluster: Cluster, count: int, seconds: float) -> None:
        self.loop = asyncio.new_event_loop()
        self.since = cluster.since
        self.tls = tls_context(cluster.ca_file)
        timeout = math.ceil(seconds + OPEN_TIMEOUT + DRAIN_TIMEOUT + 60)
        step = max(1, count // LAG_SAMPLE)
        self.watchers: list[Watcher] = []
        self.addresses: list[tuple[str, int]] = []
        for i in range(count):
            member = i % len(cluster.urls)
            host, port = cluster.urls[member].removeprefix("https://").rsplit(":", 1)
            request = watch_request(cluster.side, f"{host}:{port}", cluster.since, timeout)
            self.watchers.append(Watcher(i, member, request, i % step == 0, cluster.side))
            self.addresses.append((host, int(port)))
        self.connect_errors: Counter[str] = Counter()
        self.thread = threading.Thread(target=self.loop.run_forever, name="watchers", daemon=True)

    def run(self, coro: Any, timeout: float) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def open_all(self) -> None:
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
        await asyncio.gather(*(self._open(w, gate) for w in self.watchers))

    async def _open(self, watcher: Watcher, gate: asyncio.Semaphore) -> None:
        host, port = self.addresses[watcher.index]
        async with gate:
            try:
                await self.loop.create_connection(lambda: watcher, host, port, ssl=self.tls,
                                                  server_hostname=host)
                await asyncio.wait_for(watcher.opened.wait(), OPEN_TIMEOUT)
            except (TimeoutError, OSError) as err:
                self.connect_errors[err.__class__.__name__] += 1

    def received_at_least(self, revision: int) -> int:
        """Watchers whose newest event is at or past `revision` (read from another thread: a
        length and one element, which the loop only appends to)."""
        return sum(1 for w in self.watchers if (w.revisions[-1] if w.revisions else self.since) >= revision)

    def stop(self) -> None:
        def halt() -> None:
            for watcher in self.watchers:
                watcher.close()
            self.loop.stop()
        self.loop.call_soon_threadsafe(halt)
        self.thread.join(10)


# --- the writers (another process) -----------------------------------------------------------
def _config_map(name: str, k: int) -> bytes:
    return json.dumps({"apiVersion": "berth/v1", "kind": "ConfigMap",
                       "metadata": {"name": name, "namespace": NAMESPACE},
                       "data": {"k": str(k), "pad": "x" * 64}}, separators=(",", ":")).encode()


def _target(k: int) -> tuple[bool, str]:
    """Write k: a create of its own ConfigMap, or (odd k) a replace of one created UPDATE_LAG writes
    before."""
    half = k // 2
    if k % 2 == 0 or half < UPDATE_LAG:
        return True, f"cm-{k}"
    return False, f"cm-{2 * (half - UPDATE_LAG)}"


def _write_one(http: Http, k: int) -> tuple[int, bytes]:
    base = f"/api/v1/namespaces/{NAMESPACE}/configmaps"
    create, name = _target(k)
    if create:
        return http.request("POST", base, _config_map(name, k))
    return http.request("PUT", f"{base}/{name}", _config_map(name, k))


def _etcd_write_one(http: Http, k: int) -> tuple[int, bytes]:
    _, name = _target(k)
    value = base64.b64encode(_config_map(name, k)).decode()
    return http.request("POST", "/v3/kv/put", json.dumps({"key": _b64(ETCD_PREFIX + name),
                                                         "value": value}).encode())


def _revision(side_name: str, body: bytes) -> int:
    answer = json.loads(body)
    return int(answer["header"]["revision"] if side_name == ETCD.name
               else answer["metadata"]["resourceVersion"])


def writer_process(side_name: str, urls: list[str], ca_file: str, rate: float, seconds: float, threads: int,
                   start_at: float, results: Any) -> None:
    """Writes k = 0, 1, ... each due at start_at + k / rate (time.monotonic is the machine's clock,
    shared with the parent), sent by whichever thread is free: (revision, answered at) per
    confirmed write, and the errors by kind."""
    total = int(rate * seconds)
    counter = iter(range(total))
    lock = threading.Lock()
    done: list[tuple[int, float]] = []
    errors: Counter[str] = Counter()
    late = [0]

    etcd = side_name == ETCD.name
    write_one = _etcd_write_one if etcd else _write_one

    def run(t: int) -> None:
        http = Http(urls[t % len(urls)], token=None if etcd else ADMIN_TOKEN, ca_file=Path(ca_file),
                    timeout=15.0)
        while True:
            with lock:
                k = next(counter, None)
            if k is None:
                break
            if time.monotonic() > start_at + seconds + WRITE_GRACE:
                with lock:
                    errors["not sent (past the grace)"] += 1
                continue
            due = start_at + k / rate
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            elif wait < -0.1:
                with lock:
                    late[0] += 1
            try:
                status, body = write_one(http, k)
            except OSError as err:
                with lock:
                    errors[f"connection: {err.__class__.__name__}"] += 1
                continue
            now = time.monotonic()
            if status in (200, 201):
                revision = _revision(side_name, body)
                with lock:
                    done.append((revision, now))
            else:
                with lock:
                    errors[f"HTTP {status}"] += 1
        http.close()

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    results.put({"done": done, "errors": dict(errors), "late": late[0], "ended": time.monotonic(),
                 "cpu": usage.ru_utime + usage.ru_stime})


# --- the run ------------------------------------------------------------------------------------
@dataclass
class Outcome:
    system: str
    watchers: int
    rate: float
    seconds: float
    opened: int = 0
    open_errors: dict[str, int] = field(default_factory=dict)
    written: int = 0
    write_errors: dict[str, int] = field(default_factory=dict)
    late: int = 0
    achieved: float = 0.0
    delivered: int = 0
    expected: int = 0
    passed: int = 0
    failures: list[str] = field(default_factory=list)
    lag: list[float] = field(default_factory=list)
    caught_up_s: float | None = None
    cpu: list[float] = field(default_factory=list)
    client_cpu: float = 0.0
    writer_cpu: float = 0.0
    cpu_seconds: float = 0.0  # the masters', from the first write until every watcher caught up
    notes: list[str] = field(default_factory=list)  # the masters' warnings

    def met(self) -> bool:
        return (self.watchers >= TARGET_WATCHERS and self.rate >= TARGET_RATE
                and self.achieved >= TARGET_ACHIEVED * self.rate and self.passed == self.watchers)


def notable_log_lines(masters: Masters) -> list[str]:
    """The masters' warnings and leadership changes during the run, counted by master and message (an
    election under load shows here)."""
    counts: Counter[str] = Counter()
    for master in masters.masters:
        if master.log_file.exists():
            for line in master.log_file.read_text(errors="replace").splitlines():
                if found := NOTABLE.search(line):
                    message = re.sub(r"\d+", "N", line[found.start():])[:110]
                    counts[f"{master.name}:{message}"] += 1
    return [f"{n} x {what}" for what, n in sorted(counts.items())]


def current_revision(masters: Masters) -> int:
    http = Http(masters.url(0))
    try:
        status, body = http.json("GET", f"/api/v1/namespaces/{NAMESPACE}/configmaps")
    finally:
        http.close()
    if status != 200:
        raise RuntimeError(f"listing ConfigMaps answered {status}: {body}")
    return int(body["metadata"]["resourceVersion"])


def etcd_revision(cluster: EtcdCluster) -> int:
    http = Http(cluster.url(0), token=None, ca_file=cluster.ca_file)
    try:
        status, body = http.json("POST", "/v3/kv/range", {"key": _b64(ETCD_PREFIX), "count_only": True,
                                                           "range_end": _b64(_prefix_end(ETCD_PREFIX))})
    finally:
        http.close()
    if status != 200:
        raise RuntimeError(f"etcd's range answered {status}: {body}")
    return int(body["header"]["revision"])


@dataclass
class Cluster:
    """The system under load, as a run sees it."""

    side: Side
    urls: list[str]
    ca_file: Path
    since: int  # the revision every watch starts after
    cpu_seconds: Callable[[], list[float]]  # of each member's process
    notes: Callable[[], list[str]]  # its warnings after the run
    log_tails: Callable[[], str]  # printed when the run fails


@contextlib.contextmanager
def berth_cluster(watchers: int, settings: dict[str, Any]) -> Iterator[Cluster]:
    per_master = math.ceil(watchers / 3)
    slots = per_master + STREAM_MARGIN
    limits = {"stream_limit": slots, "stream_limit_per_token": slots,
              "api_connections_per_address": MasterConfig.api_connection_limit}
    root = Path(tempfile.mkdtemp(prefix="berth-bench-fanout-"))
    masters = Masters(root, 3, {**limits, **settings})
    try:
        masters.start_all()
        masters.wait_ready(timeout=60)
        yield Cluster(BERTH, [masters.url(i) for i in range(len(masters))], masters.ca_file,
                      current_revision(masters), masters.cpu_seconds, lambda: notable_log_lines(masters),
                      lambda: masters.log_tails(2000))
    finally:
        masters.close()
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def etcd_cluster() -> Iterator[Cluster]:
    binary = ensure_etcd()
    with running_etcd(binary) as cluster:
        def cpu() -> list[float]:
            return [process_cpu_seconds(p.pid) if p else float("nan") for p in cluster.procs]

        def tails() -> str:
            return "\n".join((cluster.root / f"e{i + 1}.log").read_text(errors="replace")[-2000:]
                             for i in range(cluster.size))

        yield Cluster(ETCD, [cluster.url(i) for i in range(cluster.size)], cluster.ca_file,
                      etcd_revision(cluster), cpu, list, tails)


def run(cluster: Cluster, watchers: int, rate: float, seconds: float) -> Outcome:
    fleet: Fleet | None = None
    writer: Any = None
    outcome = Outcome(cluster.side.name, watchers, rate, seconds)
    since = cluster.since
    try:
        fleet = Fleet(cluster, watchers, seconds)
        fleet.thread.start()
        began = time.monotonic()
        fleet.run(fleet.open_all(), OPEN_TIMEOUT + watchers)
        outcome.opened = sum(1 for w in fleet.watchers if w.status == 200 and not w.closed)
        outcome.open_errors = dict(fleet.connect_errors + Counter(
            w.errors[0][:60].decode(errors="replace") for w in fleet.watchers if w.errors))
        print(f"  {outcome.opened}/{watchers} watches open in {time.monotonic() - began:.1f} s "
              f"(from revision {since}); refused or failed: {outcome.open_errors or 'none'}", flush=True)

        ctx = mp.get_context("spawn")
        results = ctx.Queue()
        start_at = time.monotonic() + 3.0  # the child's start-up is not the load's
        writer = ctx.Process(target=writer_process, args=(
            cluster.side.name, cluster.urls, str(cluster.ca_file), rate, seconds, WRITER_THREADS,
            start_at, results), daemon=True)
        writer.start()
        time.sleep(max(0.0, start_at - time.monotonic()))
        cpu_start, own_start, load_start = cluster.cpu_seconds(), own_cpu_seconds(), time.monotonic()
        answer = results.get(timeout=seconds + WRITE_GRACE + 60)
        writer.join(30)
        elapsed = answer["ended"] - start_at
        done = sorted(answer["done"])
        outcome.written = len(done)
        outcome.write_errors = answer["errors"]
        outcome.late = answer["late"]
        outcome.achieved = len(done) / elapsed
        outcome.writer_cpu = answer["cpu"] / elapsed * 100
        print(f"  wrote {len(done)} in {elapsed:.1f} s ({outcome.achieved:.0f}/s of {rate:.0f}/s asked; "
              f"{outcome.late} sent over 100 ms late); errors: {outcome.write_errors or 'none'}", flush=True)

        # every watcher catches up with the last confirmed write (or the drain time passes)
        last = done[-1][0] if done else since
        drain_end = time.monotonic() + DRAIN_TIMEOUT
        while time.monotonic() < drain_end and fleet.received_at_least(last) < outcome.opened:
            time.sleep(0.2)
        outcome.caught_up_s = time.monotonic() - answer["ended"]
        cpu_end, own_end = cluster.cpu_seconds(), own_cpu_seconds()
        load_elapsed = time.monotonic() - load_start
        outcome.cpu = [(e - s) / load_elapsed * 100 for s, e in zip(cpu_start, cpu_end, strict=True)]
        outcome.cpu_seconds = sum(cpu_end) - sum(cpu_start)
        outcome.client_cpu = (own_end - own_start) / load_elapsed * 100
        fleet.stop()

        confirmed = [revision for revision, _ in done]
        committed_at = dict(done)
        unconfirmed = sum(n for what, n in outcome.write_errors.items()  # may have been applied
                          if what.startswith(("HTTP 5", "connection")))
        outcome.expected = len(confirmed)
        kinds: Counter[str] = Counter()
        for w in fleet.watchers:
            verdict = check_watcher(w.revisions, confirmed)
            outcome.delivered += verdict.delivered
            if verdict.ok(unconfirmed) and not w.errors:
                outcome.passed += 1
                continue
            kinds["error" if w.errors else "behind" if verdict.behind else "gap" if verdict.missing
                  else "duplicate" if verdict.duplicates else "out of order" if verdict.out_of_order
                  else "unexpected"] += 1
            if len(outcome.failures) < 5:
                said = f"; {w.errors[0][:200].decode(errors='replace')}" if w.errors else ""
                outcome.failures.append(f"watcher {w.index} (master {w.master}): {verdict}{said}")
        for w in fleet.watchers:
            if not w.timed:
                continue
            start = 0
            for when, upto in w.blocks:
                for revision in w.revisions[start:upto]:
                    at = committed_at.get(revision)
                    if at is not None:
                        outcome.lag.append(when - at)
                start = upto
        outcome.lag.sort()
        if kinds:
            outcome.failures.insert(0, f"failed watchers by first fault: {dict(kinds)}")
        outcome.notes = cluster.notes()
        return outcome
    except Exception:
        print(cluster.log_tails(), file=sys.stderr)
        raise
    finally:
        if writer is not None and writer.is_alive():
            writer.terminate()
            writer.join(10)
        if fleet is not None and fleet.thread.is_alive():
            fleet.stop()


def report(o: Outcome) -> None:
    def ms(q: float) -> str:
        return f"{percentile(o.lag, q) * 1000:.1f}" if o.lag else "-"

    print(f"\n{o.system}: {o.watchers} watchers ({o.opened} open), {o.rate:.0f} writes/s asked for "
          f"{o.seconds:.0f} s")
    print(f"  writes confirmed      {o.written} ({o.achieved:.0f}/s achieved); "
          f"errors {o.write_errors or 'none'}")
    print(f"  events delivered      {o.delivered} of {o.expected * o.watchers} "
          f"({o.expected} per watcher); watchers complete and in order: {o.passed}/{o.watchers}")
    print(f"  lag p50 / p99 / max   {ms(50)} / {ms(99)} / {ms(100)} ms "
          f"(commit seen by the writer -> watcher receipt; {len(o.lag)} events of {LAG_SAMPLE} watchers)")
    print(f"  caught up             {o.caught_up_s:.1f} s after the last write's answer"
          if o.caught_up_s is not None else "  caught up             -")
    per_event = per_event_us(o)
    print(f"  CPU % (writes + catch-up) members {' / '.join(f'{c:.0f}' for c in o.cpu)}; client: watchers "
          f"{o.client_cpu:.0f}, writers {o.writer_cpu:.0f} (of the writes); members' CPU per delivered "
          f"event {per_event:.1f} µs")
    for line in o.failures:
        print(f"  {line}")
    for line in o.notes:
        print(f"  log {line}")
    print(f"  target ({TARGET_WATCHERS} watchers, {TARGET_RATE} writes/s achieved, every event once and "
          f"in order): {mark(o.met())}")


def per_event_us(o: Outcome) -> float:
    return o.cpu_seconds / o.delivered * 1e6 if o.delivered else float("nan")


def side_by_side(etcd: Outcome, berth: Outcome) -> list[str]:
    """One row per figure, etcd's, Berth's and Berth/etcd."""
    def lag(o: Outcome, q: float) -> float:
        return percentile(o.lag, q) * 1000 if o.lag else float("nan")

    rows = [("writes/s achieved", etcd.achieved, berth.achieved, "{:.0f}"),
            ("watchers complete and in order", etcd.passed, berth.passed, "{:.0f}"),
            ("lag p50 ms", lag(etcd, 50), lag(berth, 50), "{:.1f}"),
            ("lag p99 ms", lag(etcd, 99), lag(berth, 99), "{:.1f}"),
            ("members' CPU per delivered event µs", per_event_us(etcd), per_event_us(berth), "{:.2f}"),
            ("watchers' client CPU %", etcd.client_cpu, berth.client_cpu, "{:.0f}")]
    lines = [f"\n{'':38} {'etcd':>10} {'Berth':>10} {'B/e':>7}"]
    for name, e, b, form in rows:
        ratio = f"{b / e:.2f}x" if e and e == e and b == b else "-"
        lines.append(f"{name:38} {form.format(e):>10} {form.format(b):>10} {ratio:>7}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10 s of writes instead of 30")
    parser.add_argument("--watchers", type=int, default=TARGET_WATCHERS)
    parser.add_argument("--rate", type=float, default=TARGET_RATE, help="writes per second, in total")
    parser.add_argument("--seconds", type=float, default=None, help="of writes (default 30, --quick 10)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a master setting (VALUE as YAML); timings.NAME=... for a Raft timing")
    parser.add_argument("--versus-etcd", action="store_true",
                        help="the same load against a 3-member etcd first, then side by side")
    args = parser.parse_args()
    if args.watchers < 1 or args.rate <= 0:
        parser.error("--watchers and --rate must be positive")
    seconds = args.seconds if args.seconds is not None else 10.0 if args.quick else 30.0
    interrupt_on_sigterm()
    settings = parse_settings(args.set)
    print(machine_header(), flush=True)
    etcd: Outcome | None = None
    if args.versus_etcd:
        print("etcd 3.4, 3 members", flush=True)
        with etcd_cluster() as cluster:
            etcd = run(cluster, args.watchers, args.rate, seconds)
        report(etcd)
    print("Berth, 3 masters", flush=True)
    with berth_cluster(args.watchers, settings) as cluster:
        outcome = run(cluster, args.watchers, args.rate, seconds)
    report(outcome)
    if etcd is not None:
        print("\n".join(side_by_side(etcd, outcome)))
    print(machine_header())
    return 0 if outcome.met() else 1


if __name__ == "__main__":
    sys.exit(main())
