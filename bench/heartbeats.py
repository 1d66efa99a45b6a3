"""1,000 light simulated agents heartbeating 3 masters at the interval they tell, from one process.

    python -m bench.heartbeats                   # 1000 agents, 60 s measured
    python -m bench.heartbeats --quick           # 20 s measured
    python -m bench.heartbeats --agents 500 --seconds 30 --set node_grace_seconds=5
    python -m bench.heartbeats --to-leader       # every agent to the leader: no relay
    python -m bench.heartbeats --agents 5000     # the masters tell a 10 s interval (30 s grace)
    python -m bench.heartbeats --interval 1 --agents 1500   # every second, whatever they tell
    python -m bench.heartbeats --set max_heartbeats_per_second=2000

Three real masters (berth.lab.masters) with one `agent` token per simulated agent (agent sim-N
may register and heartbeat Node sim-N only). The client is one asyncio event loop in a
thread of this process: one raw HTTP/1.1 keep-alive connection per agent (agent i talks to
master i mod 3), requests pre-encoded as bytes, responses parsed by hand, a timer callback
per beat and one sweep for timeouts: no coroutine, future or task per heartbeat, so the
client's CPU (printed) stays small next to the masters' on the 2 shared cores.

Each agent beats at the interval the masters tell in their answers (`heartbeatIntervalSeconds`,
master/heartbeat_rate.py: nothing told, so 1 s, up to `max_heartbeats_per_second` nodes, default
500; then stretched so the cluster sends at most that many beats per second, the grace with it);
`--interval N` fixes it at N seconds instead (the node grace is then still the masters' own).
The interval told and the grace it gives are printed.

Per level: every agent registers its Node (POST /api/v1/nodes, at most REGISTER_CONCURRENCY
at once) and starts heartbeating as soon as its own Node exists, as the real agent does;
the time until the leader's node list shows every node Ready is reported. Then, for the
measured duration: heartbeats offered (one per agent per interval; a beat is skipped when
the agent's previous one is still unanswered), answered 200 per second, p50/p99 latency
direct to the leader and via a follower (which answers at once and relays its heartbeats
to the leader in signed batches, master/reports/relay.py), errors, CPU of each master
and of this client, Raft writes per second (leader revision delta; nothing changes, so
the target is 0), nodes that went NotReady (from the leader's watch stream of the window;
target 0) and how old the leader's newest heartbeat of the stalest node was (from
/api/v1/metrics/nodes every SAMPLE_EVERY seconds: relay delay included; at most about
one interval plus the relay period is healthy, the grace is the limit).

If the level asked for (--agents, default 1000) is not sustained (answered < 99% of
offered, more than 0.1% errors, any Raft write or any NotReady), 250 and 500 agents are
run as well, each on a fresh cluster, and all levels are printed side by side.

--to-leader sends every agent to the leader (what the leader alone sustains, as if
followers redirected agents there).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench._common import (
    Masters,
    busy_cpu_seconds,
    interrupt_on_sigterm,
    machine_header,
    mark,
    own_cpu_seconds,
    parse_settings,
    percentile,
)
from bench.swarm import (
    REGISTER_CONCURRENCY,
    REQUEST_TIMEOUT,
    Swarm,
    delta,
    leader_or,
    not_ready_events,
    ready_count,
    revision,
    stalest,
)
from master.config import MasterConfig
from master.heartbeat_rate import heartbeat_interval, node_grace

INTERVAL = 1.0  # seconds between one agent's heartbeats (--interval)
IDLE_SECONDS = 5.0  # the masters' own CPU with no agent at all, measured first
SETTLE = 2.0  # seconds after every node is Ready before the window opens
SAMPLE_EVERY = 5.0  # CPU samples during the window (for the busiest 5 s)
FALLBACK_LEVELS = (250, 500)
TARGET_ANSWERED = 0.99  # of offered
TARGET_ERROR_SHARE = 0.001
WAITRESS_CONNECTION_LIMIT = MasterConfig.api_connection_limit  # a master accepts no more connections


# --- one level: a fresh cluster, N agents ----------------------------------------------

def run_level(count: int, seconds: float, settings: dict[str, Any], to_leader: bool,
              interval: float | None) -> dict[str, Any]:
    """`interval`: fixed seconds between one agent's beats; None: as the masters tell."""
    print(f"\n== {count} agents{', all to the leader' if to_leader else ''} ==", flush=True)
    tokens = [(f"sim-{i:04d}", "agent", secrets.token_urlsafe(16)) for i in range(count)]
    names = {name for name, _, _ in tokens}
    root = Path(tempfile.mkdtemp(prefix="berth-bench-heartbeats-"))
    # every simulated agent connects from 127.0.0.1, where real ones each have their own address
    per_address = {"api_connections_per_address": WAITRESS_CONNECTION_LIMIT}
    masters = Masters(root, 3, {**per_address, **settings}, extra_tokens=tokens)
    swarm: Swarm | None = None
    result: dict[str, Any] = {"agents": count, "to_leader": to_leader}
    try:
        masters.start_all()
        masters.wait_ready(timeout=60)
        leader = masters.leader_index(timeout=60, request_timeout=10)
        idle_start, idle_at = masters.cpu_seconds(), time.monotonic()
        time.sleep(IDLE_SECONDS)
        result["idle_cpu"] = [(e - s) / (time.monotonic() - idle_at) * 100
                              for s, e in zip(idle_start, masters.cpu_seconds(), strict=True)]
        result["idle_leader"] = leader
        targets = [leader] if to_leader else list(range(len(masters)))
        if count / len(targets) >= WAITRESS_CONNECTION_LIMIT - 10:
            print(f"  note: ~{count // len(targets)} agent connections per master; a master stops accepting "
                  f"connections at {WAITRESS_CONNECTION_LIMIT} (waitress connection_limit in master/main.py)")
        swarm = Swarm(masters, tokens, targets, interval or INTERVAL, obey=interval is None)
        swarm.start()

        # registration, then every node Ready
        began = time.monotonic()
        rev_before = revision(masters, leader)
        registering = asyncio.run_coroutine_threadsafe(swarm.register_all(), swarm.loop)
        registering.result(timeout=60 + count * 0.2)
        registered = time.monotonic()
        result["register_s"] = registered - began
        result["registered"] = len(swarm.registered_at)
        result["register_failures"] = dict(swarm.register_failures)
        print(f"  registered {len(swarm.registered_at)}/{count} nodes in {registered - began:.1f} s "
              f"({len(swarm.registered_at) / max(1e-9, registered - began):.0f}/s, at most "
              f"{REGISTER_CONCURRENCY} at once); retried failures: {dict(swarm.register_failures) or 'none'}",
              flush=True)
        ready_deadline = registered + 60 + count * 0.1
        ready = 0
        while time.monotonic() < ready_deadline:
            ready = ready_count(masters, leader, names)
            if ready == count:
                break
            time.sleep(0.5)
        all_ready = time.monotonic()
        result["ready"] = ready
        result["ready_s"] = all_ready - began if ready == count else None
        result["ready_after_registered_s"] = all_ready - registered if ready == count else None
        state = (f"all {count} Ready {all_ready - began:.1f} s after registration began "
                 f"({all_ready - registered:.1f} s after the last node was registered)"
                 if ready == count else f"only {ready}/{count} Ready after {all_ready - began:.0f} s")
        print(f"  {state}; Raft writes so far {delta(revision(masters, leader), rev_before)}", flush=True)
        time.sleep(SETTLE)

        # the measured window
        leader = leader_or(masters, leader)
        rev_start = revision(masters, leader)
        cpu_start, own_start, busy_start = masters.cpu_seconds(), own_cpu_seconds(), busy_cpu_seconds()
        samples = [(time.monotonic(), cpu_start)]
        staleness: list[float | None] = []
        window = swarm.open_window(len(masters))
        opened = time.monotonic()
        end = opened + seconds
        for _ in range(int(seconds / SAMPLE_EVERY) + 2):
            now = time.monotonic()
            if now >= end:
                break
            time.sleep(min(SAMPLE_EVERY, end - now))
            samples.append((time.monotonic(), masters.cpu_seconds()))
            staleness.append(stalest(masters, leader, names))
            if not swarm.thread.is_alive():
                raise RuntimeError("the client's loop thread died")
        cpu_end, own_end, busy_end = masters.cpu_seconds(), own_cpu_seconds(), busy_cpu_seconds()
        elapsed = time.monotonic() - opened
        swarm.close_window(wait=REQUEST_TIMEOUT + 1)  # beats sent in the window: answered or expired
        leader_end = leader_or(masters, leader)
        rev_end = revision(masters, leader_end)
        flaps, flapped, types = None, None, Counter()
        if rev_start is not None and rev_end is not None:
            flaps, flapped, types = not_ready_events(masters, leader_end, rev_start, rev_end)
        still_ready = ready_count(masters, leader_end, names)

        busiest = max(((b[1][leader] - a[1][leader]) / (b[0] - a[0]) * 100
                       for a, b in itertools.pairwise(samples) if b[0] > a[0]), default=float("nan"))
        result.update({
            "seconds": elapsed, "leader": masters.specs[leader].name,
            "leader_changed": leader_end != leader,
            "cpu": [(e - s) / elapsed * 100 for s, e in zip(cpu_start, cpu_end, strict=True)],
            "leader_index": leader, "leader_busiest": busiest,
            "client_cpu": (own_end - own_start) / elapsed * 100,
            "machine_cpu": (busy_end - busy_start) / elapsed * 100,
            "offered": window.offered, "sent": window.sent, "skipped": window.skipped, "ok": window.ok,
            "lost_in_flight": window.in_flight, "errors": dict(window.errors),
            "sent_to_followers": sum(n for i, n in enumerate(window.sent_to) if i != leader),
            "direct": sorted(window.latencies[leader]),
            "forwarded": sorted(x for i, lat in enumerate(window.latencies) if i != leader for x in lat),
            "tick_delay_max": window.tick_delay_max, "moved": window.moved,
            "writes": delta(rev_end, rev_start), "events": dict(types), "flaps": flaps, "flapped": flapped,
            "still_ready": still_ready,
            "stalest": max(staleness) if staleness and None not in staleness else None,  # type: ignore[type-var]
        })
        result["interval"] = interval or swarm.latest_told or INTERVAL
        # the grace the masters apply: from the count of nodes, whatever interval the agents keep
        base = float(settings.get("node_grace_seconds", MasterConfig.node_grace_seconds))
        rate = float(settings.get("max_heartbeats_per_second", MasterConfig.max_heartbeats_per_second))
        result["grace"] = node_grace(heartbeat_interval(count, rate), base)
        told_range = f"{min(swarm.told):g}-{max(swarm.told):g} s" if swarm.told else "none"
        how = "fixed" if interval else "told" if swarm.latest_told else "none told: the agents' own"
        print(f"  interval {how} {result['interval']:g} s (told over the run, registration included: "
              f"{told_range}); node grace {result['grace']:g} s", flush=True)
        print(f"  measured {elapsed:.0f} s: {window.ok / elapsed:.0f} heartbeats/s answered of "
              f"{window.offered / elapsed:.0f}/s offered; leader CPU {result['cpu'][leader]:.0f}%; "
              f"Raft writes {delta(rev_end, rev_start)}; NotReady {flaps}", flush=True)
        return result
    except Exception:
        print(masters.log_tails(2000), file=sys.stderr)
        raise
    finally:
        if swarm is not None:
            swarm.stop()
        masters.close()
        shutil.rmtree(root, ignore_errors=True)


def sustained(r: dict[str, Any]) -> bool:
    errors = sum(r["errors"].values())
    return (r["offered"] > 0 and r["ok"] >= TARGET_ANSWERED * r["offered"]
            and errors <= TARGET_ERROR_SHARE * max(1, r["sent"]) and r["flapped"] == 0 and r["writes"] == 0
            and r["still_ready"] == r["agents"])


# --- the table -------------------------------------------------------------------------

def report(results: list[dict[str, Any]]) -> None:
    results = sorted(results, key=lambda r: r["agents"])
    width = 16

    def ms(values: list[float], q: float) -> str:
        if not values:
            return "-"
        value = percentile(values, q) * 1e3
        return f"{value:.1f}" if value < 100 else f"{value:.0f}"

    def per_beat(r: dict[str, Any], followers: bool) -> str:
        """CPU ms per heartbeat above the master's idle CPU (PySyncObj's ticks): the leader's per
        answered beat, the followers' per beat sent to them."""
        leader = r["leader_index"]
        busy = [(c - idle) / 100 * r["seconds"] for c, idle in zip(r["cpu"], r["idle_cpu"], strict=True)]
        if followers:
            forwarded = r["sent_to_followers"]
            seconds = sum(c for i, c in enumerate(busy) if i != leader)
            return "-" if not forwarded else f"{seconds / forwarded * 1e3:.2f}"
        return "-" if not r["ok"] else f"{busy[leader] / r['ok'] * 1e3:.2f}"

    def cpu(r: dict[str, Any], followers: bool, key: str = "cpu", leader_key: str = "leader_index") -> str:
        if followers:
            return " / ".join(f"{c:.0f}" for i, c in enumerate(r[key]) if i != r[leader_key])
        return f"{r[key][r[leader_key]]:.0f}"

    rows: list[tuple[str, Any, str]] = [
        ("heartbeat interval, s", lambda r: f"{r['interval']:g}", "told by the masters"),
        ("node grace, s", lambda r: f"{r['grace']:g}", ""),
        ("registration, s (nodes/s)",
         lambda r: f"{r['register_s']:.1f} ({r['registered'] / r['register_s']:.0f})", ""),
        ("all Ready after, s", lambda r: "-" if r["ready_s"] is None else f"{r['ready_s']:.1f}", ""),
        ("measured, s", lambda r: f"{r['seconds']:.0f}", ""),
        ("heartbeats/s offered", lambda r: f"{r['offered'] / r['seconds']:.0f}", ""),
        ("heartbeats/s answered 200", lambda r: f"{r['ok'] / r['seconds']:.0f}",
         f">= {TARGET_ANSWERED:.0%} of offered"),
        ("answered / offered", lambda r: f"{r['ok'] / max(1, r['offered']):.1%}", ""),
        ("skipped (previous unanswered)", lambda r: str(r["skipped"]), ""),
        ("errors", lambda r: str(sum(r["errors"].values())), f"<= {TARGET_ERROR_SHARE:.1%} of sent"),
        ("p50 / p99 ms, direct to leader", lambda r: f"{ms(r['direct'], 50)} / {ms(r['direct'], 99)}", ""),
        ("p50 / p99 ms, via a follower", lambda r: f"{ms(r['forwarded'], 50)} / {ms(r['forwarded'], 99)}",
         ""),
        ("leader's stalest node, s", lambda r: "unknown" if r["stalest"] is None else f"{r['stalest']:.2f}",
         "< node grace"),
        ("max ms (either)", lambda r: f"{max(r['direct'] + r['forwarded'], default=0) * 1e3:.0f}",
         "<< node grace"),
        ("leader CPU %, average", lambda r: cpu(r, False), "(of one core)"),
        ("leader CPU %, busiest 5 s", lambda r: f"{r['leader_busiest']:.0f}", ""),
        ("followers CPU %", lambda r: cpu(r, True), ""),
        ("leader CPU ms/beat answered", lambda r: per_beat(r, False), "(above idle)"),
        ("followers CPU ms/beat sent them", lambda r: per_beat(r, True), "(above idle)"),
        ("idle CPU % before: leader", lambda r: cpu(r, False, "idle_cpu", "idle_leader"), "(no agents)"),
        ("idle CPU % before: followers", lambda r: cpu(r, True, "idle_cpu", "idle_leader"), ""),
        ("this client's CPU %", lambda r: f"{r['client_cpu']:.0f}", ""),
        ("machine busy %, of 200", lambda r: f"{r['machine_cpu']:.0f}", ""),
        ("  of which not masters/client",
         lambda r: f"{r['machine_cpu'] - sum(r['cpu']) - r['client_cpu']:.0f}", "(kernel, other processes)"),
        ("Raft writes/s", lambda r: "unknown" if r["writes"] is None else f"{r['writes'] / r['seconds']:.2f}",
         "0"),
        ("nodes NotReady in the window", lambda r: "unknown" if r["flapped"] is None else str(r["flapped"]),
         "0"),
        ("nodes Ready at the end", lambda r: f"{r['still_ready']}/{r['agents']}", "all"),
        ("client beat lateness max, ms", lambda r: f"{r['tick_delay_max'] * 1e3:.0f}", ""),
        ("sustained", lambda r: "yes" if sustained(r) else "NO", ""),
    ]
    print(f"\n  {'agents':<32}" + "".join(f"{r['agents']:>{width}}" for r in results) + "   target")
    for label, value, target in rows:
        print(f"  {label:<32}" + "".join(f"{value(r):>{width}}" for r in results) + f"   {target}")
    for r in results:
        notes = []
        if r["errors"]:
            notes.append("errors " + ", ".join(f"{k}: {v}" for k, v in sorted(r["errors"].items())))
        if r["events"]:
            notes.append("Raft writes in the window by event " + ", ".join(
                f"{k}: {v}" for k, v in sorted(r["events"].items())))
        if r["flaps"]:
            notes.append(f"{r['flaps']} NotReady transitions over {r['flapped']} nodes")
        if r["leader_changed"]:
            notes.append("the leader CHANGED during the window")
        if r["moved"]:
            notes.append(f"{r['moved']} beats sent on to another master after a 503, as the real agent does")
        if r["lost_in_flight"]:
            notes.append(f"{r['lost_in_flight']} beats still unanswered when counting stopped")
        if r["register_failures"]:
            notes.append(f"registration retries {r['register_failures']}")
        if notes:
            print(f"  {r['agents']} agents: " + "; ".join(notes))
    for r in results:
        errors = sum(r["errors"].values())
        answered = r["ok"] / max(1, r["offered"])
        writes = "unknown" if r["writes"] is None else f"{r['writes'] / r['seconds']:.2f}"
        print(f"  {r['agents']:>5} agents: answered {answered:.1%} {mark(answered >= TARGET_ANSWERED)}, "
              f"errors {errors} {mark(errors <= TARGET_ERROR_SHARE * max(1, r['sent']))}, "
              f"Raft writes/s {writes} {mark(r['writes'] == 0)}, NotReady nodes {r['flapped']} "
              f"{mark(r['flapped'] == 0)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 s measured instead of 60 s")
    parser.add_argument("--seconds", type=float, help="measured seconds per level (default 60, --quick 20)")
    parser.add_argument("--agents", type=int, default=1000, help="simulated agents (default 1000)")
    parser.add_argument("--interval", type=float,
                        help="fixed seconds between one agent's heartbeats (default: as the masters tell)")
    parser.add_argument("--to-leader", action="store_true",
                        help="every agent talks to the leader (no forwarding): what the leader alone "
                             "sustains, as if followers redirected agents instead of forwarding")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="a master setting (YAML value), e.g. node_grace_seconds=5; repeatable")
    args = parser.parse_args()
    seconds = args.seconds or (20.0 if args.quick else 60.0)
    if not 1 <= args.agents <= 5000 or not 0 < seconds <= 3600 or not 0.1 <= (args.interval or 1) <= 60:
        parser.error("need 1 <= --agents <= 5000, 0 < --seconds <= 3600 and 0.1 <= --interval <= 60")
    settings = parse_settings(args.settings)
    grace = float(settings.get("node_grace_seconds", MasterConfig.node_grace_seconds))
    interrupt_on_sigterm()
    began = time.monotonic()
    print(f"berth bench/heartbeats.py: {args.agents} simulated agents, a heartbeat each per "
          + (f"{args.interval:g} s, " if args.interval else "interval the masters tell, ")
          + f"{seconds:.0f} s measured, 3 masters on loopback (node grace {grace:g} s at 1 s)"
          + (": every agent to the leader" if args.to_leader else ": agent i to master i mod 3"))
    print(f"  {machine_header()}")
    if settings:
        print(f"  master settings: {settings}")
    results: list[dict[str, Any]] = []
    try:
        results.append(run_level(args.agents, seconds, settings, args.to_leader, args.interval))
        if not sustained(results[0]):
            lower = [n for n in FALLBACK_LEVELS if n < args.agents]
            if lower:
                print(f"\n  {args.agents} agents NOT sustained: running {' and '.join(map(str, lower))} "
                      f"as well, for comparison")
            for n in lower:
                results.append(run_level(n, seconds, settings, args.to_leader, args.interval))
    except KeyboardInterrupt:
        print("\ninterrupted; stopping everything this run started", file=sys.stderr)
        return 130
    if results:
        report(results)
    print(f"\n  total {time.monotonic() - began:.0f} s; load average now "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
