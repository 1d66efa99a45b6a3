"""The agent's whole footprint on a host running 30 of Berth's containers: RSS and CPU of the agent
and every process it started, with its usage readings every 5 s.

    python -m bench.agent_footprint            # 30 pods, 120 s measured
    python -m bench.agent_footprint --pods 30 --seconds 60

A one-host lab deployed with Ansible as `lab/up.sh` does (a master and an agent on h1, the
agent's defaults: heartbeats every 1 s, usage readings every 5 s, the engine checked every
30 s, the pod network, the cluster DNS), 30 busybox pods sleeping on h1. Once every pod runs
and its usage has been reported, the agent's process tree is sampled every 2 s with psutil.
Targets (issue 15): at most 40 MB RSS and 1 % of a core, children included (those still running
at a sample for RSS; for CPU, also those that ended: the engine's short listings). The reference,
measured before this issue: the agent alone 31.8 MB, and its `podman events` child 32.6 MB more.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import psutil

from bench._common import add_lab_option, interrupt_on_sigterm, machine_header, mark
from bench.host_failure import deployed, wait
from berth.lab import deploy
from berth.lab.hosts import IMAGE, Lab

TARGET_MB = 40.0
TARGET_CPU_PERCENT = 1.0
REFERENCE = "agent 31.8 MB + its `podman events` child 32.6 MB = 64.4 MB (before issue 15)"


def pod(i: int) -> dict:
    meta = {"name": f"idle-{i}", "labels": {"app": "idle"}}
    return {"apiVersion": "berth/v1", "kind": "Pod", "metadata": meta,
            "spec": {"nodeName": "h1", "terminationGracePeriodSeconds": 1, "containers": [
                {"name": "main", "image": IMAGE, "command": ["sleep", "3600"],
                 "resources": {"requests": {"cpu": "10m", "memory": "4Mi"}}}]}}


def agent_pid(lab: Lab) -> int:
    """The agent of h1 as the machine sees it (its pid file holds the one its host's PID namespace
    gives it): the process started with that host's agent settings."""
    settings = str(deploy.state_dir(lab, "h1") / "agent" / "agent.yaml")
    return next(p.pid for p in psutil.process_iter(["cmdline"])
                if settings in (p.info["cmdline"] or []) and any("agent" in a for a in p.info["cmdline"][:3]))


def spent(times: Any) -> float:
    """CPU seconds of a process and of its children that ended (the engine's short listings)."""
    return times.user + times.system + times.children_user + times.children_system


def tree(pid: int) -> list[psutil.Process]:
    agent = psutil.Process(pid)
    return [agent, *agent.children(recursive=True)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pods", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=120.0)
    add_lab_option(parser, "af")
    args = parser.parse_args()
    interrupt_on_sigterm()
    print(f"berth bench/agent_footprint.py: the agent with {args.pods} pods on its host, "
          f"{args.seconds:.0f} s")
    print(f"  {machine_header()}")
    with deployed(Lab(name=args.lab, hosts=1)) as cluster:
        lab = cluster.lab
        for i in range(args.pods):
            made = cluster.cli("apply", "-f", "-", stdin=json.dumps(pod(i)))
            assert made.returncode == 0, made.stderr
        listed = "/api/v1/namespaces/default/pods?labelSelector=app=idle"
        def running() -> int:
            pods = cluster.get(listed)["items"]
            return sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Running")

        wait(lambda: running() == args.pods, 300, "pods running")
        wait(lambda: len(cluster.get("/api/v1/metrics/pods?namespace=default")["items"]) == args.pods, 60,
             "every pod's usage reported")
        pid = agent_pid(lab)
        rss, children = [], set()
        started = {p.pid: p.cpu_times() for p in tree(pid)}
        began = time.monotonic()
        while time.monotonic() - began < args.seconds:
            processes = tree(pid)
            children |= {f"{p.pid} {' '.join(p.cmdline())[:60]}" for p in processes[1:]}
            rss.append(sum(p.memory_info().rss for p in processes) / 2**20)
            time.sleep(2)
        elapsed = time.monotonic() - began
        cpu = 0.0
        for process in tree(pid):
            now = process.cpu_times()
            before = started.get(process.pid)
            cpu += spent(now) - (spent(before) if before else 0.0)
    median_rss, percent = statistics.median(rss), 100 * cpu / elapsed
    print("\n| measure | agent and children | target |\n|---|---|---|")
    print(f"| RSS, median of {len(rss)} samples | {median_rss:.1f} MB (max {max(rss):.1f}) | "
          f"<= {TARGET_MB:.0f} MB {mark(median_rss <= TARGET_MB)} |")
    print(f"| CPU over {elapsed:.0f} s | {percent:.2f} % of a core | <= {TARGET_CPU_PERCENT:.0f} % "
          f"{mark(percent <= TARGET_CPU_PERCENT)} |")
    print(f"| child processes seen | {len(children)} | |")
    print(f"reference: {REFERENCE}")
    for child in sorted(children):
        print(f"  child: {child}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
