"""Pods end to end in the lab: 60 pods at once until all Running, what an idle cluster costs its
hosts, and what SSH adds per pod.

    python -m bench.pods                 # 60 pods on 3 lab hosts; 20 pods for the SSH comparison
    python -m bench.pods --pods 30 --compare 10 --idle 10

Part 1: a lab of 3 hosts (`bp`, removed afterwards), 3 masters on loopback with the
scheduler and the runtime (restart back-off 1 s), the hosts registered as Ready nodes.
60 pods (busybox `sleep`, 50m / 16Mi each) are created at once (one apply, one Raft entry); printed:
the time until every pod is bound, and until every pod is Running (status written by the
leader), with the spread over the hosts. Then, with nothing changing, for --idle seconds: the CPU
the runtime's SSH commands cost the hosts (all of sshd's processes, the podman they ran
included) and the leader's own CPU. Part 1 runs twice, side by side: as the runtime works
now (a host is listed when a signal says it may have changed, or every 10 s) and as it
worked before (every Ready host listed every round: runtime_resync_seconds ~ 0), the
hosts emptied between the two.
Part 2: the commands the runtime runs to start one pod (clear a stale sandbox, create
the pod sandbox, start it, run the container), for --compare pods on one host, once over
the runtime's SSH pool (one kept connection, TCP_NODELAY) and once run locally inside
the host (nsenter), alternating pod by pod; printed: median and p90 per pod both ways
and their ratio (target <= 1.2).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil

from bench._common import Http, add_lab_option, interrupt_on_sigterm, machine_header, mark, running_masters
from berth.lab import hosts as lab_hosts
from berth.lab.hosts import IMAGE, Lab
from master.liveness import READY, with_ready
from master.runtime.driver import DRIVERS
from master.runtime.ssh import Host, SshPool

TARGET_RATIO = 1.2
RESYNC_NOW = 10.0  # the default
RESYNC_BEFORE = 0.001  # every Ready host listed every round, as the runtime did before signals
PODMAN = DRIVERS["podman"]


def pod(name: str, uid: str = "") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "bench"}
    if uid:
        meta["uid"] = uid
    return {"apiVersion": "berth/v1", "kind": "Pod", "metadata": meta, "spec": {"containers": [{
        "name": "main", "image": IMAGE, "command": ["sleep", "3600"],
        "resources": {"requests": {"cpu": "50m", "memory": "16Mi"}}}]}}


def register_nodes(admin: Http, lab: Lab) -> None:
    for host in lab.host_names():
        node = {"apiVersion": "berth/v1", "kind": "Node", "metadata": {"name": host},
                "spec": {"address": lab.address(host)}}
        code, body = admin.json("POST", "/api/v1/nodes", node)
        assert code == 201, body
        status = {**with_ready({}, READY, "2026-01-01T00:00:00Z"),
                  "allocatable": {"cpu": 8000, "memory": 16 * 2**30}}
        code, body = admin.json("PUT", f"/api/v1/nodes/{host}/status", {"status": status})
        assert code == 200, body


def _cpu_seconds(pid: int) -> float:
    """The process's CPU with that of its reaped children (utime, stime, cutime, cstime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _subtree(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(lab_hosts.children(current))
    return found


def ssh_cpu_seconds(lab: Lab) -> float:
    """CPU of every sshd of the hosts and all they ran: each live process once, each ended one in
    its live ancestor's reaped-children time."""
    total = 0.0
    for host in lab.host_names():
        init = lab_hosts.host_init_pid(lab, host)
        assert init is not None, host
        for top in lab_hosts.children(init):
            if b"sshd" in Path(f"/proc/{top}/cmdline").read_bytes():
                for pid in _subtree(top):
                    with contextlib.suppress(OSError, IndexError):  # ended while being read
                        total += _cpu_seconds(pid)
    return total


def empty_hosts(lab: Lab) -> None:
    """No pods left from a run before, and podman's first-use set-up done, so both runs start alike."""
    for host in lab.host_names():
        lab_hosts.in_host(lab, host, ["podman", "run", "--rm", IMAGE, "true"], check=False)
        lab_hosts.in_host(lab, host, ["podman", "pod", "rm", "--all", "--force", "--time", "0"], check=False)
        lab_hosts.in_host(lab, host, ["podman", "rm", "--all", "--force", "--time", "0"], check=False)


def end_to_end(lab: Lab, root: Path, count: int, idle: float, resync: float) -> dict[str, Any]:
    settings = {"controllers": ["node-lifecycle", "scheduler", "runtime"], "node_grace_seconds": 3600,
                "ssh_key_file": str(lab.ssh_key), "ssh_known_hosts_file": str(lab.known_hosts),
                "restart_backoff_seconds": 1, "runtime_resync_seconds": resync}
    with running_masters(root / "masters", 3, settings) as masters:
        admin = Http(masters.url(masters.leader_index()), timeout=30)
        register_nodes(admin, lab)
        manifests = [pod(f"p{i:03d}") for i in range(count)]
        began = time.monotonic()
        code, body = admin.json("POST", "/api/v1/apply", manifests)  # one Raft command: all at once
        assert code == 200, body
        bound_at = running_at = None
        spread: Counter = Counter()
        deadline = began + 300
        while time.monotonic() < deadline:
            code, listing = admin.json("GET", "/api/v1/namespaces/bench/pods")
            items = listing["items"] if code == 200 else []
            bound = [p for p in items if p["spec"].get("nodeName")]
            running = [p for p in items if (p.get("status") or {}).get("phase") == "Running"]
            if bound_at is None and len(bound) == count:
                bound_at = time.monotonic() - began
                spread = Counter(p["spec"]["nodeName"] for p in bound)
            if len(running) == count:
                running_at = time.monotonic() - began
                break
            time.sleep(0.1)
        admin.close()
        time.sleep(3)  # the last status writes and the looks they cause
        leader = psutil.Process(masters.pid(masters.leader_index()))
        hosts_before, leader_before = ssh_cpu_seconds(lab), sum(leader.cpu_times()[:2])
        time.sleep(idle)
        hosts_cpu = ssh_cpu_seconds(lab) - hosts_before
        leader_cpu = sum(leader.cpu_times()[:2]) - leader_before
    return {"bound": bound_at, "running": running_at, "spread": dict(sorted(spread.items())),
            "hosts_cpu": hosts_cpu / idle / len(lab.host_names()), "leader_cpu": leader_cpu / idle}


def start_commands(obj: dict[str, Any]) -> list[list[str]]:
    container = obj["spec"]["containers"][0]
    return [PODMAN.remove_sandbox(obj), PODMAN.create_sandbox(obj), PODMAN.start_sandbox(obj),
            PODMAN.run_container(obj, container)]


def ssh_versus_local(lab: Lab, count: int) -> dict[str, list[float]]:
    host = "h3"
    pool = SshPool(str(lab.ssh_key), str(lab.known_hosts))
    target = Host(host, lab.address(host))
    pool.run(target, ["true"])  # the connection is kept: open it before measuring
    times: dict[str, list[float]] = {"ssh": [], "local": []}
    made: list[dict[str, Any]] = []
    try:
        for i in range(count):
            for way in ("ssh", "local") if i % 2 == 0 else ("local", "ssh"):
                obj = pod(f"cmp-{way}-{i}", uid=f"{i:08d}{'s' if way == 'ssh' else 'l'}")
                made.append(obj)
                began = time.perf_counter()
                for argv in start_commands(obj):
                    if way == "ssh":
                        result = pool.run(target, argv)
                        ok, err = result.ok, result.stderr
                    else:
                        local = lab_hosts.in_host(lab, host, argv, check=False)
                        ok, err = local.returncode == 0, local.stderr.encode()
                    if not ok:
                        raise RuntimeError(f"{way}: {argv[:3]} failed: {err[:300]!r}")
                times[way].append(time.perf_counter() - began)
    finally:
        for obj in made:
            pool.run(target, PODMAN.remove_sandbox(obj))
        pool.close()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pods", type=int, default=60)
    parser.add_argument("--compare", type=int, default=20, help="pods started each way in part 2")
    parser.add_argument("--idle", type=float, default=20.0, help="seconds of the idle measurement")
    add_lab_option(parser, "bp")
    args = parser.parse_args()
    if not 1 <= args.pods <= 500 or not 2 <= args.compare <= 200 or not 2 <= args.idle <= 600:
        parser.error("need 1 <= --pods <= 500, 2 <= --compare <= 200 and 2 <= --idle <= 600")
    interrupt_on_sigterm()
    print(f"berth bench/pods.py: {args.pods} pods at once on 3 lab hosts; {args.compare} pods started "
          f"over SSH and locally")
    print(f"  {machine_header()}")
    lab = Lab(name=args.lab, hosts=3)
    root = Path(tempfile.mkdtemp(prefix="berth-bench-pods-"))
    lab_hosts.down(lab)
    try:
        lab_hosts.up(lab)
        empty_hosts(lab)
        e2e = end_to_end(lab, root, args.pods, args.idle, RESYNC_NOW)
        empty_hosts(lab)
        before = end_to_end(lab, root, args.pods, args.idle, RESYNC_BEFORE)
        empty_hosts(lab)
        times = ssh_versus_local(lab, args.compare)
    except KeyboardInterrupt:
        print("\ninterrupted; stopping everything this run started", file=sys.stderr)
        return 130
    finally:
        lab_hosts.down(lab)
        shutil.rmtree(root, ignore_errors=True)
    bound = "not all" if e2e["bound"] is None else f"{e2e['bound']:.1f} s"
    running = "not all in 300 s" if e2e["running"] is None else f"{e2e['running']:.1f} s"
    print(f"\n  {args.pods} pods created at once: all bound after {bound}, all Running after {running}")
    print(f"  spread over the hosts: {e2e['spread']}")
    if e2e["running"]:
        print(f"  {args.pods / e2e['running']:.1f} pods/s started")
    print(f"\n  idle for {args.idle:g} s afterwards ({args.pods // 3} pods per host, no agents here):")
    print(f"  {'':<40}{'listed on signals':>18}{'every round':>13}{'ratio':>8}")
    for key, label in (("hosts_cpu", "per host: sshd + podman CPU, % of a core"),
                       ("leader_cpu", "leader master CPU, % of a core")):
        ratio_idle = e2e[key] / before[key] if before[key] else float("nan")
        print(f"  {label:<40}{e2e[key] * 100:>18.2f}{before[key] * 100:>13.2f}{ratio_idle:>8.2f}")
    running_before = "not all" if before["running"] is None else f"{before['running']:.1f} s"
    print(f"  (every round: all Running after {running_before}, spread {before['spread']})")

    def q(values: list[float], share: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    ssh_median, local_median = statistics.median(times["ssh"]), statistics.median(times["local"])
    ratio = ssh_median / local_median
    print(f"\n  starting one pod (4 podman commands), {args.compare} pods each way, alternating:")
    print(f"  {'':<28}{'median ms':>12}{'p90 ms':>10}")
    print(f"  {'over SSH (kept connection)':<28}{ssh_median * 1e3:>12.0f}{q(times['ssh'], 0.9) * 1e3:>10.0f}")
    print(f"  {'locally in the host':<28}{local_median * 1e3:>12.0f}{q(times['local'], 0.9) * 1e3:>10.0f}")
    print(f"  ratio SSH / local (median): {ratio:.2f}  target <= {TARGET_RATIO}  "
          f"{mark(ratio <= TARGET_RATIO)}")
    print(f"  load average now {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
