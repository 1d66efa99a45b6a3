"""Simulated agents for the benchmarks: many light agents on one asyncio loop, and what the
benchmarks read of the nodes they keep alive (bench/heartbeats.py, bench/cluster_scale.py).

One raw HTTP/1.1 keep-alive connection per agent, requests pre-encoded as bytes, responses
parsed by hand, a timer callback per beat and one sweep for timeouts: no coroutine, future
or task per heartbeat, so the client's CPU stays small next to the masters' on shared cores.
An agent registers its Node (and, given `resources`, reports them, as the real agent does),
then heartbeats: at the interval the masters tell it (`heartbeatIntervalSeconds` in each
answer of a large cluster, master/heartbeat_rate.py), the Swarm's `interval` when they tell
none; or, with
`obey=False`, always at the Swarm's fixed `interval`. A beat answered 503 (a follower whose
relay to the leader fails) is sent on to the next master, as the real agent's client does,
until every master was tried; the window counts those moves.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from agent.main import told_interval
from bench._common import Http, Masters, tls_context
from master.objects.conditions import ready_condition

REQUEST_TIMEOUT = 5.0  # as agent.masters.Masters
REGISTER_CONCURRENCY = 16
REGISTER_ATTEMPTS = 5
HEARTBEAT_BODY = b'{"cpuPercent": 3.0, "memoryUsed": 123456}'

# --- the simulated agents --------------------------------------------------------------

@dataclass
class Window:
    """What happened to the heartbeats sent while this window was open."""

    masters: int
    offered: int = 0
    sent: int = 0
    skipped: int = 0  # due while the previous beat was still unanswered
    ok: int = 0
    in_flight: int = 0
    errors: Counter = field(default_factory=Counter)
    latencies: list[list[float]] = field(default_factory=list)  # of the 200s, by master sent to
    sent_to: list[int] = field(default_factory=list)  # beats sent, by master
    tick_delay_max: float = 0.0  # how late the client's loop fired a beat (its own overload)
    moved: int = 0  # beats sent on to another master after a 503, as the real agent does

    def __post_init__(self) -> None:
        self.latencies = [[] for _ in range(self.masters)]
        self.sent_to = [0] * self.masters


def address(url: str) -> tuple[str, int]:
    """(host, port) of a master's https://HOST:PORT."""
    host, port = url.removeprefix("https://").rsplit(":", 1)
    return host, int(port)


class Conn(asyncio.Protocol):
    """One keep-alive connection of one agent: HTTP/1.1 responses parsed by hand."""

    def __init__(self, agent: SimAgent) -> None:
        self.agent = agent
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.agent.lost(self)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        at = head.find(b"\r\ncontent-length:")
        if at < 0:  # waitress sends Content-Length for these answers; anything else is an error
            self.agent.done(self, None, b"", "unparseable answer")
            self.close()
            return
        line_end = head.find(b"\r\n", at + 2)
        length = int(head[at + 17:line_end if line_end > 0 else len(head)])
        if len(self.buffer) < end + 4 + length:
            return
        body = bytes(self.buffer[end + 4:end + 4 + length])
        del self.buffer[:end + 4 + length]
        status = int(head[9:12])
        self.agent.done(self, status, body, None)
        if b"\r\nconnection: close" in head:
            self.close()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()
            self.transport = None


class SimAgent:
    """A node's agent reduced to its traffic: register once, then one POST per interval."""

    def __init__(self, bench: Swarm, index: int, name: str, token: str, master: int, url: str) -> None:
        self.bench = bench
        self.index = index
        self.name = name
        self.master = master
        self.host, self.port = host, port = address(url)
        auth = f"Host: {host}:{port}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        self.beat = (f"POST /api/v1/nodes/{name}/heartbeat HTTP/1.1\r\n{auth}"
                     f"Content-Length: {len(HEARTBEAT_BODY)}\r\n\r\n").encode() + HEARTBEAT_BODY
        node = json.dumps({"apiVersion": "berth/v1", "kind": "Node", "metadata": {"name": name},
                           "spec": {"address": f"10.250.{index // 250}.{index % 250 + 1}"}}).encode()
        self.register_request = (f"POST /api/v1/nodes HTTP/1.1\r\n{auth}"
                                 f"Content-Length: {len(node)}\r\n\r\n").encode() + node
        resources = json.dumps({"status": bench.resources}).encode()
        self.resources_request = (f"PATCH /api/v1/nodes/{name}/status HTTP/1.1\r\n"
                                  f"{auth.replace('application/json', 'application/merge-patch+json')}"
                                  f"Content-Length: {len(resources)}\r\n\r\n").encode() + resources
        self.interval = bench.interval
        self.tries = 1  # masters tried for the beat in flight
        self.conn: Conn | None = None
        self.connecting = False
        self.outgoing: bytes | None = None
        # the request in flight: (sent at, window or None, callback)
        self.pending: tuple[float, Window | None, Any] | None = None
        self.next_due = 0.0
        self.beating = False

    def move_on(self) -> None:
        """To the next master, as the real agent's client does after a 503 (agent/masters.py: a
        follower whose relay to the leader fails answers 503)."""
        targets = self.bench.targets
        self.master = targets[(targets.index(self.master) + 1) % len(targets)]
        self.host, self.port = self.bench.addresses[self.master]
        if self.conn is not None:
            conn, self.conn = self.conn, None
            conn.close()

    # --- one request at a time over one connection --------------------------------------
    def send(self, payload: bytes, window: Window | None, callback: Any) -> None:
        self.pending = (time.perf_counter(), window, callback)
        if self.conn is not None and self.conn.transport is not None:
            self.conn.transport.write(payload)
        elif not self.connecting:
            self.outgoing = payload
            self.connecting = True
            self.bench.loop.create_task(self._connect())
        else:
            self.outgoing = payload

    async def _connect(self) -> None:
        conn = Conn(self)
        try:
            await self.bench.loop.create_connection(lambda: conn, self.host, self.port, ssl=self.bench.tls,
                                                    server_hostname=self.host)
        except OSError as err:
            self.connecting = False
            self._finish(None, b"", f"connect: {err.__class__.__name__}")
            return
        self.connecting = False
        self.conn = conn
        if self.pending is not None and self.outgoing is not None and conn.transport is not None:
            conn.transport.write(self.outgoing)
        self.outgoing = None

    def done(self, conn: Conn, status: int | None, body: bytes, error: str | None) -> None:
        if conn is self.conn:
            self._finish(status, body, error)

    def lost(self, conn: Conn) -> None:
        if conn is self.conn:
            self.conn = None
            self._finish(None, b"", "connection closed")

    def expire(self, now: float) -> None:
        if self.pending is not None and not self.connecting and now - self.pending[0] > REQUEST_TIMEOUT:
            if self.conn is not None:
                conn, self.conn = self.conn, None
                conn.close()
            self._finish(None, b"", "timeout")

    def _finish(self, status: int | None, body: bytes, error: str | None) -> None:
        if self.pending is None:
            return
        sent, window, callback = self.pending
        self.pending = None
        self.outgoing = None
        callback(self, window, status, body, error, time.perf_counter() - sent)

    def close(self) -> None:
        self.beating = False
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    # --- heartbeats -----------------------------------------------------------------------
    def start_beating(self, first: float) -> None:
        self.beating = True
        self.next_due = first
        self.bench.loop.call_at(first, self.tick)

    def tick(self) -> None:
        if not self.beating:
            return
        loop = self.bench.loop
        window = self.bench.window
        if window is not None:
            window.offered += 1
            window.tick_delay_max = max(window.tick_delay_max, loop.time() - self.next_due)
        if self.pending is not None:
            if window is not None:
                window.skipped += 1
        else:
            if window is not None:
                window.sent += 1
                window.sent_to[self.master] += 1
                window.in_flight += 1
            self.tries = 1
            self.send(self.beat, window, _beat_answered)
        self.next_due += self.interval
        loop.call_at(self.next_due, self.tick)


def _beat_answered(agent: SimAgent, window: Window | None, status: int | None, body: bytes,
                   error: str | None, latency: float) -> None:
    if status == 200 and agent.bench.obey:
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        agent.interval = told_interval(answer, agent.bench.interval)  # as the real agent reads it
        if isinstance(answer, dict) and "heartbeatIntervalSeconds" in answer:
            agent.bench.latest_told = agent.interval
            agent.bench.told[agent.interval] += 1
    if status == 503 and agent.tries < len(agent.bench.targets) and not agent.connecting:
        agent.tries += 1  # still one beat in flight: its latency counts from the last master tried
        if window is not None:
            window.moved += 1
        agent.move_on()
        agent.send(agent.beat, window, _beat_answered)
        return
    if window is None:
        return
    window.in_flight -= 1
    if status == 200:
        window.ok += 1
        window.latencies[agent.master].append(latency)
    else:
        window.errors[error or f"HTTP {status}"] += 1


class Swarm:
    """All simulated agents, on one asyncio loop in one thread."""

    def __init__(self, masters: Masters, tokens: list[tuple[str, str, str]], targets: list[int],
                 interval: float, obey: bool = True, resources: dict[str, Any] | None = None) -> None:
        """Agent i talks to master targets[i % len(targets)], once per `interval` seconds (or as
        the masters tell, with `obey`); with `resources` (a Node status's capacity and
        allocatable), each reports them once registered, as the real agent does."""
        self.interval = interval
        self.targets = targets
        self.addresses = {i: address(masters.url(i)) for i in targets}
        self.obey = obey
        self.resources = resources
        self.told: Counter = Counter()  # intervals the masters told, answers by value
        self.latest_told: float | None = None  # the interval the latest answer told
        self.tls = tls_context(masters.ca_file)  # one context: its session cache is shared
        self.loop = asyncio.new_event_loop()
        self.window: Window | None = None
        self.agents = [SimAgent(self, i, name, token, targets[i % len(targets)],
                                masters.url(targets[i % len(targets)]))
                       for i, (name, _role, token) in enumerate(tokens)]
        self.registered_at: list[float] = []
        self.register_failures: Counter = Counter()
        self.thread = threading.Thread(target=self._run, name="swarm", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._sweep)
        self.loop.run_forever()

    def _sweep(self) -> None:
        now = time.perf_counter()
        for agent in self.agents:
            agent.expire(now)
        self.loop.call_later(0.25, self._sweep)

    def start(self) -> None:
        self.thread.start()

    def call(self, fn: Any, *args: Any) -> None:
        self.loop.call_soon_threadsafe(fn, *args)

    # --- registration ---------------------------------------------------------------------
    async def register_all(self) -> None:
        gate = asyncio.Semaphore(REGISTER_CONCURRENCY)
        await asyncio.gather(*(self._register(agent, gate) for agent in self.agents))

    async def _ask(self, agent: SimAgent, request: bytes) -> tuple[int | None, bytes, str | None]:
        answer: asyncio.Future = self.loop.create_future()

        def callback(_agent: SimAgent, _window: Any, status: int | None, body: bytes,
                     error: str | None, _latency: float) -> None:
            if not answer.done():
                answer.set_result((status, body, error))

        agent.send(request, None, callback)
        return await answer

    async def _register(self, agent: SimAgent, gate: asyncio.Semaphore) -> None:
        async with gate:
            for attempt in range(REGISTER_ATTEMPTS):
                status, body, error = await self._ask(agent, agent.register_request)
                if status in (201, 409) and self.resources is not None:  # then its capacity
                    status, body, error = await self._ask(agent, agent.resources_request)
                    status = 201 if status == 200 else status
                if status in (201, 409):  # 409: it exists already (idempotent, as the real agent)
                    break
                self.register_failures[error or f"HTTP {status}: {body[:120]!r}"] += 1
                await asyncio.sleep(0.5 * (attempt + 1))
            else:
                return  # this agent never heartbeats: its node stays not Ready, and it shows
        self.registered_at.append(time.monotonic())
        # spread the beats over the interval, as independent agents would be
        agent.start_beating(self.loop.time() + (agent.index * 0.6180339887) % 1.0 * self.interval)

    # --- measurement window -----------------------------------------------------------------
    def open_window(self, masters: int) -> Window:
        window = Window(masters)
        self.call(setattr, self, "window", window)
        return window

    def close_window(self, wait: float) -> None:
        """Stop counting beats; wait (bounded) for the ones in flight to be answered or expire."""
        window = self.window
        self.call(setattr, self, "window", None)
        deadline = time.monotonic() + wait
        while window is not None and window.in_flight > 0 and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        if not self.thread.is_alive():
            self.loop.close()
            return

        def halt() -> None:
            for agent in self.agents:
                agent.close()
            self.loop.call_later(0.1, self.loop.stop)

        self.call(halt)
        self.thread.join(timeout=10)
        if not self.thread.is_alive():
            self.loop.close()



# --- what the nodes look like from the leader ------------------------------------------

def leader_json(masters: Masters, leader: int, path: str, timeout: float = 15.0) -> tuple[int, Any]:
    client = Http(masters.url(leader), timeout=timeout)
    try:
        return client.json("GET", path)
    finally:
        client.close()


def revision(masters: Masters, index: int, attempts: int = 3) -> int | None:
    """The store revision on master `index` (patient: an overloaded master answers slowly); None if
    it does not answer at all (e.g. waitress's connection_limit reached: it accepts no connection)."""
    for _ in range(attempts):
        status = masters.status(index, timeout=10)
        if status is not None:
            return int(status["revision"])
        time.sleep(0.5)
    print(f"  {masters.specs[index].name}: no /api/v1/cluster answer in {attempts} attempts", flush=True)
    return None


def leader_or(masters: Masters, fallback: int) -> int:
    try:
        return masters.leader_index(timeout=30, request_timeout=10)
    except TimeoutError:
        print(f"  no agreed leader reported in 30 s; assuming it is still {masters.specs[fallback].name}",
              flush=True)
        return fallback


def delta(end: int | None, start: int | None) -> int | None:
    return None if end is None or start is None else end - start


def ready_count(masters: Masters, leader: int, names: set[str]) -> int:
    try:
        code, listing = leader_json(masters, leader, "/api/v1/nodes")
    except (OSError, ValueError):
        return -1
    if code != 200:
        return -1
    return sum(1 for node in listing["items"]
               if node["metadata"]["name"] in names and ready_condition(node) is True)


def stalest(masters: Masters, leader: int, names: set[str]) -> float | None:
    """Seconds since the leader last heard of its least recently heard node (None: no answer)."""
    try:
        code, metrics = leader_json(masters, leader, "/api/v1/metrics/nodes")
    except (OSError, ValueError):
        return None
    if code != 200:
        return None
    ages = [item["secondsSinceHeartbeat"] for name, item in metrics["items"].items() if name in names]
    return max(ages) if len(ages) == len(names) else float("inf")


def not_ready_events(masters: Masters, leader: int, since: int, until: int
                     ) -> tuple[int | None, int | None, Counter]:
    """(NotReady transitions, distinct nodes, events by type) in (since, until], from the leader's watch.

    (None, None, ...) if the watch cannot replay that far back (410: out of its window).
    """
    client = Http(masters.url(leader), timeout=30)
    try:
        code, data = client.request("GET", f"/api/v1/watch?kind=Node&since={since}&timeoutSeconds=1")
    except OSError as err:
        code, data = -1, repr(err).encode()
    finally:
        client.close()
    if code != 200:
        print(f"  watch since {since}: HTTP {code} {data[:200]!r}; NotReady count unknown")
        return None, None, Counter()
    flaps, nodes, types = 0, set(), Counter()
    for line in data.splitlines():
        event = json.loads(line)
        if event["type"] == "BOOKMARK" or event["revision"] > until:
            continue
        types[event["type"]] += 1
        if event["type"] == "MODIFIED" and ready_condition(event["object"]) is False:
            flaps += 1
            nodes.add(event["object"]["metadata"]["name"])
    return flaps, len(nodes), types
