"""10,000 pods end to end: 3 masters, 1,000 simulated agents, 10 Deployments x 1,000 replicas.

    python -m bench.cluster_scale                 # 10 x 1,000 replicas on 1,000 agents
    python -m bench.cluster_scale --quick         # 2 x 500 on 200 agents
    python -m bench.cluster_scale --deployments 4 --replicas 250 --agents 500
    python -m bench.cluster_scale --set timings.raft_min_timeout=1.5 --set timings.raft_max_timeout=3

Three real masters (berth.lab.masters) run the node lifecycle, the scheduler, the deployment,
ReplicaSet and garbage-collector controllers and the runtime, the runtime on simulated hosts
(`simulated_hosts: true`, master/runtime/simulated.py): each command it would run on a host
over SSH is answered from memory and every container starts at once, so a bound pod becomes
Running through the runtime's real rounds, planner and batched status writes. The agents are
bench/swarm.py's: each registers its Node through the API, reports its capacity and
heartbeats at the interval the masters tell (agent i to master i mod 3).

Once every node is Ready, the Deployments are applied in one `POST /api/v1/apply`, and two
watch streams on a follower note when each pod was first seen bound (spec.nodeName) and
Running (status.phase), and every Node that turned NotReady. Printed: pods/s from the apply
to every pod bound and to every pod Running (and the seconds to half and to all of them),
Raft entries/s (the leader's commit index over the same time) and the writes they carried
(store revisions), the heartbeats answered and
their p99, a reader's p99 (a GET of one Deployment from the leader every READ_EVERY s), the
nodes that flapped, and each master's CPU and RSS (at the end, and the most sampled).
Targets: >= 500 pods/s bound end to end, every heartbeat answered, 0 nodes flapping.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import requests

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
)
from bench.swarm import REQUEST_TIMEOUT, Swarm, ready_count
from master.config import MasterConfig
from master.objects.conditions import ready_condition

CONTROLLERS = ["node-lifecycle", "scheduler", "deployment", "replicaset", "garbage-collector", "runtime"]
NAMESPACE = "bench"
GI = 2**30
NODE_SIZE = {"cpu": 16_000, "memory": 64 * GI}  # millicores, bytes: ample for the pods asked
TARGET_BOUND_PER_S = 500.0
READ_EVERY = 0.2  # seconds between the reader's GETs
RSS_EVERY = 1.0  # seconds between RSS samples


# --- the figures (pure) --------------------------------------------------------------------

@dataclass(frozen=True)
class Progress:
    """How a set of pods reached one state after a moment: seconds to half and to all of them, and
    pods per second to all (None: not all of them did)."""

    reached: int
    half_s: float | None
    all_s: float | None
    per_s: float | None


def progress(started: float, reached_at: list[float], total: int) -> Progress:
    """From when each pod reached the state (monotonic seconds, any order) and how many should."""
    times = sorted(t - started for t in reached_at)
    half = times[(total + 1) // 2 - 1] if total and len(times) >= (total + 1) // 2 else None
    done = times[total - 1] if total and len(times) >= total else None
    return Progress(len(times), half, done, total / done if done else None)


def per_second(before: int | None, after: int | None, seconds: float) -> float | None:
    """A counter's rate over `seconds` (None when either reading is missing or no time passed)."""
    if before is None or after is None or seconds <= 0:
        return None
    return (after - before) / seconds


def difference(before: int | None, after: int | None) -> int | None:
    return None if before is None or after is None else after - before


def answered_share(ok: int, offered: int) -> float | None:
    return ok / offered if offered else None


# --- what the run watches ------------------------------------------------------------------

class Stream:
    """One watch stream from a master (a thread): each event to `seen`, until stopped."""

    def __init__(self, url: str, ca: Path, kind: str, since: int, seen: Any) -> None:
        self.session = requests.Session()
        self.session.verify = str(ca)
        self.session.trust_env = False
        self.session.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        self.url = f"{url}/api/v1/watch?kind={kind}&since={since}&timeoutSeconds=3600"
        self.seen = seen
        self.error: str | None = None
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"watch-{kind}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            with self.session.get(self.url, stream=True, timeout=(10, 30)) as answer:
                if answer.status_code != 200:
                    self.error = f"HTTP {answer.status_code}: {answer.text[:200]}"
                    return
                for line in answer.iter_lines():
                    if self.stopped.is_set():
                        return
                    if line:
                        self.seen(json.loads(line), time.monotonic())
        except (requests.RequestException, ValueError) as err:
            if not self.stopped.is_set():
                self.error = repr(err)

    def stop(self) -> None:
        self.stopped.set()
        self.session.close()
        self.thread.join(timeout=5)


class PodClock:
    """When each pod of the run was first seen bound, and first seen Running."""

    def __init__(self) -> None:
        self.bound: dict[str, float] = {}
        self.running: dict[str, float] = {}
        self.lock = threading.Lock()

    def seen(self, event: dict[str, Any], at: float) -> None:
        if event.get("type") not in ("ADDED", "MODIFIED"):
            return
        pod = event["object"]
        uid = pod["metadata"]["uid"]
        with self.lock:
            if pod["spec"].get("nodeName") and uid not in self.bound:
                self.bound[uid] = at
            if (pod.get("status") or {}).get("phase") == "Running" and uid not in self.running:
                self.running[uid] = at

    def counts(self) -> tuple[int, int]:
        with self.lock:
            return len(self.bound), len(self.running)


class NodeFlaps:
    """Nodes seen turning NotReady (their Ready condition not True) on the stream."""

    def __init__(self) -> None:
        self.transitions = 0
        self.nodes: set[str] = set()

    def seen(self, event: dict[str, Any], _at: float) -> None:
        if event.get("type") == "MODIFIED" and ready_condition(event["object"]) is not True:
            self.transitions += 1
            self.nodes.add(event["object"]["metadata"]["name"])


class Sampler:
    """The masters' RSS every RSS_EVERY s (the most seen), and a reader's GET latencies."""

    def __init__(self, masters: Masters, leader: int, path: str) -> None:
        self.processes = [psutil.Process(masters.pid(i)) for i in range(len(masters))]
        self.peak = [0] * len(self.processes)
        self.reads: list[float] = []
        self.read_errors: Counter = Counter()
        self.http = Http(masters.url(leader), timeout=REQUEST_TIMEOUT)
        self.path = path
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self.thread.start()

    def rss(self) -> list[int]:
        return [p.memory_info().rss for p in self.processes]

    def _run(self) -> None:
        next_rss = 0.0
        while not self.stopped.wait(READ_EVERY):
            if time.monotonic() >= next_rss:
                self.peak = [max(a, b) for a, b in zip(self.peak, self.rss(), strict=True)]
                next_rss = time.monotonic() + RSS_EVERY
            began = time.perf_counter()
            try:
                status, _ = self.http.request("GET", self.path)
            except OSError as err:
                self.read_errors[type(err).__name__] += 1
                continue
            if status == 200:
                self.reads.append(time.perf_counter() - began)
            else:
                self.read_errors[f"HTTP {status}"] += 1

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=10)
        self.http.close()


# --- the run -------------------------------------------------------------------------------

def deployments(count: int, replicas: int) -> bytes:
    docs = [{"apiVersion": "berth/v1", "kind": "Deployment",
             "metadata": {"name": f"scale-{i}", "namespace": NAMESPACE},
             "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": f"scale-{i}"}},
                      "template": {"metadata": {"labels": {"app": f"scale-{i}"}}, "spec": {"containers": [{
                          "name": "main", "image": "localhost/busybox:lab", "command": ["sleep", "3600"],
                          "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}}}
            for i in range(count)]
    return "\n---\n".join(json.dumps(d) for d in docs).encode()


def cluster(masters: Masters, index: int) -> dict[str, Any]:
    status = masters.status(index, timeout=10)
    if status is None:
        raise RuntimeError(f"{masters.specs[index].name} does not answer /api/v1/cluster")
    return status


def commit_index(masters: Masters, leader: int) -> tuple[int | None, int | None]:
    """(Raft commit index, store revision) on master `leader`: entries (a group commit's entry carries
    up to 512 writes) and the writes themselves."""
    status = masters.status(leader, timeout=10)
    if status is None:
        return None, None
    return int(status.get("leaderCommitIndex") or status["commitIndex"]), int(status["revision"])


def run(agents: int, count: int, replicas: int, timeout: float, extra: dict[str, Any]) -> dict[str, Any]:
    """`extra`: master settings (--set), over the bench's own."""
    total = count * replicas
    tokens = [(f"sim-{i:04d}", "agent", secrets.token_urlsafe(16)) for i in range(agents)]
    names = {name for name, _, _ in tokens}
    root = Path(tempfile.mkdtemp(prefix="berth-bench-cluster-scale-"))
    settings = {"controllers": CONTROLLERS, "simulated_hosts": True,
                # every simulated agent connects from 127.0.0.1, where real ones each have their own
                "api_connections_per_address": MasterConfig.api_connection_limit, **extra}
    masters = Masters(root, 3, settings, extra_tokens=tokens)
    swarm: Swarm | None = None
    streams: list[Stream] = []
    sampler: Sampler | None = None
    try:
        masters.start_all()
        masters.wait_ready(timeout=60)
        leader = masters.leader_index(timeout=60, request_timeout=10)
        follower = (leader + 1) % len(masters)
        size = {"capacity": NODE_SIZE, "allocatable": NODE_SIZE}
        swarm = Swarm(masters, tokens, list(range(len(masters))), 1.0, resources=size)
        swarm.start()
        began = time.monotonic()
        asyncio.run_coroutine_threadsafe(swarm.register_all(), swarm.loop).result(timeout=120 + agents * 0.2)
        ready, deadline = 0, time.monotonic() + 60 + agents * 0.1
        while time.monotonic() < deadline and (ready := ready_count(masters, leader, names)) != agents:
            time.sleep(0.5)
        if ready != agents:
            raise RuntimeError(f"only {ready}/{agents} nodes Ready")
        time.sleep(2.0)  # the registration's writes settle; every agent beats at least once more
        interval = swarm.latest_told or swarm.interval
        told = f"told {interval:g} s" if swarm.latest_told else f"none told: the agents' own {interval:g} s"
        print(f"  {agents} nodes registered and Ready in {time.monotonic() - began:.1f} s; "
              f"heartbeat interval {told}", flush=True)

        since = int(cluster(masters, follower)["revision"])
        clock, flaps = PodClock(), NodeFlaps()
        streams = [Stream(masters.url(follower), masters.ca_file, "Pod", since, clock.seen),
                   Stream(masters.url(follower), masters.ca_file, "Node", since, flaps.seen)]
        window = swarm.open_window(len(masters))
        cpu_start, own_start = masters.cpu_seconds(), own_cpu_seconds()
        commits_start = commit_index(masters, leader)
        http = Http(masters.url(leader), timeout=60)
        http.headers["Content-Type"] = "application/yaml"
        started = time.monotonic()
        status, body = http.request("POST", "/api/v1/apply", deployments(count, replicas))
        http.close()
        if status != 200:
            raise RuntimeError(f"apply: HTTP {status}: {body[:300]!r}")
        sampler = Sampler(masters, leader, f"/api/v1/namespaces/{NAMESPACE}/deployments/scale-0")
        bound = running = 0
        next_line = started + 5
        while time.monotonic() - started < timeout:
            bound, running = clock.counts()
            if running >= total and bound >= total:
                break
            if any(s.error for s in streams):
                raise RuntimeError(f"watch: {[s.error for s in streams if s.error]}")
            if time.monotonic() >= next_line:
                print(f"  {time.monotonic() - started:5.0f} s: {bound} bound, {running} Running", flush=True)
                next_line += 5
            time.sleep(0.1)
        ended = time.monotonic()
        commits_end = commit_index(masters, leader)
        cpu_end, own_end = masters.cpu_seconds(), own_cpu_seconds()
        sampler.stop()
        rss_end = sampler.rss()
        swarm.close_window(wait=REQUEST_TIMEOUT + 1)
        time.sleep(0.5)  # the Node stream's last events
        elapsed = ended - started
        with clock.lock:
            bound_at, running_at = list(clock.bound.values()), list(clock.running.values())
        return {
            "agents": agents, "deployments": count, "replicas": replicas, "total": total,
            "interval": interval, "leader": masters.specs[leader].name, "seconds": elapsed,
            "bound": progress(started, bound_at, total), "running": progress(started, running_at, total),
            "entries_per_s": per_second(commits_start[0], commits_end[0], elapsed),
            "entries": difference(commits_start[0], commits_end[0]),
            "writes_per_s": per_second(commits_start[1], commits_end[1], elapsed),
            "offered": window.offered, "ok": window.ok, "errors": dict(window.errors),
            "skipped": window.skipped, "moved": window.moved,
            "beats_p99": percentile(sorted(x for lat in window.latencies for x in lat), 99),
            "reads_p99": percentile(sorted(sampler.reads), 99), "reads": len(sampler.reads),
            "read_errors": dict(sampler.read_errors),
            "flaps": flaps.transitions, "flapped": len(flaps.nodes),
            "cpu": [(e - s) / elapsed * 100 for s, e in zip(cpu_start, cpu_end, strict=True)],
            "client_cpu": (own_end - own_start) / elapsed * 100,
            "rss": rss_end, "rss_peak": sampler.peak, "leader_index": leader,
        }
    except Exception:
        print(masters.log_tails(3000), file=sys.stderr)
        raise
    finally:
        if sampler is not None:
            sampler.stop()
        for stream in streams:
            stream.stop()
        if swarm is not None:
            swarm.stop()
        masters.close()
        shutil.rmtree(root, ignore_errors=True)


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def report(r: dict[str, Any]) -> None:
    bound, running = r["bound"], r["running"]
    share = answered_share(r["ok"], r["offered"])
    leader = r["leader_index"]
    mib = 2**20
    print(f"\n  {r['deployments']} Deployments x {r['replicas']} replicas = {r['total']} pods on "
          f"{r['agents']} simulated agents (heartbeat every {r['interval']:g} s), 3 masters, "
          f"leader {r['leader']}")
    fast = bound.per_s is not None and bound.per_s >= TARGET_BOUND_PER_S
    rows = [
        ("pods bound", f"{bound.reached}/{r['total']}", ""),
        ("  s to half / to all bound", f"{seconds(bound.half_s)} / {seconds(bound.all_s)}", ""),
        ("  pods/s, apply to all bound", rate(bound.per_s),
         f">= {TARGET_BOUND_PER_S:.0f} {mark(fast)}"),
        ("pods Running", f"{running.reached}/{r['total']}", ""),
        ("  s to half / to all Running", f"{seconds(running.half_s)} / {seconds(running.all_s)}", ""),
        ("  pods/s, apply to all Running", rate(running.per_s), ""),
        ("Raft entries (leader commit index)", str(r["entries"]), ""),
        ("  entries/s", rate(r["entries_per_s"]), ""),
        ("  writes/s (store revisions)", rate(r["writes_per_s"]), ""),
        ("heartbeats answered / offered",
         f"{r['ok']}/{r['offered']}" + ("" if share is None else f" ({share:.1%})"),
         f"all {mark(r['ok'] == r['offered'] and r['offered'] > 0)}"),
        ("  heartbeat p99 ms (all masters)", f"{r['beats_p99'] * 1e3:.0f}", ""),
        ("reader GET p99 ms (leader)", f"{r['reads_p99'] * 1e3:.0f} over {r['reads']} reads", ""),
        ("nodes flapping (NotReady)", f"{r['flapped']} ({r['flaps']} transitions)",
         f"0 {mark(r['flapped'] == 0)}"),
        ("CPU % leader / followers", f"{r['cpu'][leader]:.0f} / " + " / ".join(
            f"{c:.0f}" for i, c in enumerate(r["cpu"]) if i != leader), "(of one core)"),
        ("this client's CPU %", f"{r['client_cpu']:.0f}", ""),
        ("RSS MiB at the end, each master", " / ".join(f"{x / mib:.0f}" for x in r["rss"]), ""),
        ("RSS MiB most sampled", " / ".join(f"{x / mib:.0f}" for x in r["rss_peak"]), ""),
    ]
    for label, value, target in rows:
        print(f"  {label:<36} {value:>24}   {target}")
    notes = {k: v for k, v in (("heartbeat errors", r["errors"]), ("read errors", r["read_errors"])) if v}
    if r["moved"]:
        notes["beats sent on to another master after a 503 (as the real agent does)"] = r["moved"]
    if r["skipped"]:
        notes["beats skipped (previous unanswered)"] = r["skipped"]
    for key, value in notes.items():
        print(f"  {key}: {value}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 Deployments x 500 on 200 agents")
    parser.add_argument("--deployments", type=int, help="Deployments (default 10, --quick 2)")
    parser.add_argument("--replicas", type=int, help="replicas each (default 1000, --quick 500)")
    parser.add_argument("--agents", type=int, help="simulated agents (default 1000, --quick 200)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for all Running")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="a master setting (YAML value), e.g. timings.raft_min_timeout=1.5; repeatable")
    args = parser.parse_args()
    settings = parse_settings(args.settings)
    count = args.deployments or (2 if args.quick else 10)
    replicas = args.replicas or (500 if args.quick else 1000)
    agents = args.agents or (200 if args.quick else 1000)
    if not 1 <= count <= 100 or not 1 <= replicas <= 5000 or not 1 <= agents <= 5000:
        parser.error("need 1 <= --deployments <= 100, 1 <= --replicas <= 5000 and 1 <= --agents <= 5000")
    interrupt_on_sigterm()
    print(f"berth bench/cluster_scale.py: {count} x {replicas} replicas on {agents} simulated agents, "
          f"3 masters on loopback, simulated hosts")
    print(f"  {machine_header()}", flush=True)
    if settings:
        print(f"  master settings: {settings}")
    try:
        result = run(agents, count, replicas, args.timeout, settings)
    except KeyboardInterrupt:
        print("\ninterrupted; stopping everything this run started", file=sys.stderr)
        return 130
    report(result)
    print(f"  {machine_header()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
