"""A host crash in the lab: seconds until a deployment's replicas run again elsewhere.

    python -m bench.host_failure              # 4 hosts, a 4-replica deployment, 5 crashes, 3 cuts
    python -m bench.host_failure --runs 3 --leader-runs 1 --partitions 1

A lab of 4 hosts (`hf`, removed afterwards) deployed with Ansible as `lab/up.sh` does (masters on
h1-h3, agents everywhere), a Deployment of 4 busybox replicas spread over the hosts. Each run
crashes a host that holds a replica (every process killed, its cable pulled, as `berth lab
crash`), then measures:

  crash -> ready    seconds until the deployment has 4 Ready replicas on the other hosts
  start -> exact    after `berth lab start` of the host: seconds until it is Ready, its
                    `returning` taint is off, and exactly 4 of the deployment's containers run
                    across all hosts (counted with podman on each)

Five runs on h4 (a worker: no master dies with it), the median printed, then three with the
leader's own host crashed (an election first). Then h4 is cut off from every master (its bridge
traffic to h1-h3 dropped, as `berth lab partition`), three times:

  cut -> ready      seconds until the 4 replicas are Ready on the other hosts
  cut -> fenced     seconds until h4's agent, reaching no master, has stopped its own copies
                    (from the replacements' readiness to this, two copies of a replica ran)
  heal -> exact     after the cut is healed: h4 Ready, untainted, and exactly 4 containers

 The references are the published defaults of
Kubernetes (node-monitor grace 40 s + tolerationSeconds 300 s: about 350 s), Docker Swarm
(about 15 s) and Nomad (10-30 s). Target: crash -> ready <= 10 s.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

from bench._common import add_lab_option, interrupt_on_sigterm, machine_header, mark
from berth.lab import deploy, hosts
from berth.lab.hosts import IMAGE, Lab

TARGET_SECONDS = 10.0
REFERENCES = (("Kubernetes defaults", "~350"), ("Docker Swarm", "~15"), ("Nomad", "10-30"))
MANIFEST = f"""apiVersion: berth/v1
kind: Deployment
metadata: {{name: hf}}
spec:
  replicas: 4
  selector: {{matchLabels: {{app: hf}}}}
  template:
    metadata: {{labels: {{app: hf}}}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: web
        image: {IMAGE}
        command: [sleep, "3600"]
        resources: {{requests: {{cpu: 50m, memory: 16Mi}}}}
"""


class Cluster:
    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.urls = deploy.api_urls(lab)
        self.headers = {"Authorization": f"Bearer {deploy.admin_token(lab)}"}
        self.config = Path(tempfile.mkdtemp(prefix="bench-hf-")) / "config.yaml"
        deploy.write_cli_config(lab, self.config)

    def get(self, path: str) -> Any:
        for url in self.urls:
            try:
                answer = requests.get(url + path, headers=self.headers, timeout=2,
                                      verify=str(deploy.ca_file(self.lab)))
            except requests.RequestException:
                continue
            if answer.status_code == 200:
                return answer.json()
        raise RuntimeError(f"no master answered {path}")

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        env = {"PATH": "/usr/bin:/bin", "BERTH_CONFIG": str(self.config)}
        return subprocess.run([sys.executable, "-m", "berth.cli.main", *args], input=stdin, text=True,
                              capture_output=True, timeout=300, env=env)

    def pods(self) -> list[dict[str, Any]]:
        return self.get("/api/v1/namespaces/default/pods?labelSelector=app=hf")["items"]

    def ready_elsewhere(self, host: str) -> int:
        return sum(1 for p in self.pods() if p["spec"].get("nodeName") != host
                   and not p["metadata"].get("deletionTimestamp")
                   and any(c.get("type") == "Ready" and c.get("status") == "True"
                           for c in (p.get("status") or {}).get("conditions") or []))

    def leader_host(self) -> str:
        leader = self.get("/api/v1/cluster")["leader"] or ""
        return next(h for h in deploy.masters_of(self.lab)
                    if leader.startswith(self.lab.address(h) + ":"))

    def node(self, host: str) -> dict[str, Any]:
        return self.get(f"/api/v1/nodes/{host}")

    def containers(self, only: str | None = None) -> int:
        """The deployment's running containers, counted with podman on each host (or on `only`)."""
        total = 0
        for host in [only] if only else self.lab.host_names():
            argv = ["podman", "ps", "--filter", "label=berth.namespace=default", "--format", "{{.Names}}"]
            listed = hosts.in_host(self.lab, host, argv, check=False)
            if listed.returncode != 0:
                raise RuntimeError(f"podman ps on {host}: {listed.stderr.strip()[:300]}")
            names = listed.stdout.split()
            total += sum(1 for n in names if n.startswith("berth-default-hf-") and n.endswith("-web"))
        return total


@contextlib.contextmanager
def deployed(lab: Lab) -> Iterator[Cluster]:
    """The lab's hosts made and deployed with Ansible as `lab/up.sh` does (whatever an earlier run
    left removed first), every node Ready; removed afterwards, whatever happened."""
    hosts.down(lab)
    try:
        hosts.up(lab)
        deploy.run_playbook(lab)
        deploy.wait_nodes_ready(lab)
        yield Cluster(lab)
    finally:
        hosts.down(lab)


def wait(predicate: Any, timeout: float, what: str) -> float:
    """Seconds until `predicate()` held, polled every 0.1 s (bounded)."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        try:
            if predicate():
                return time.monotonic() - began
        except (RuntimeError, requests.RequestException, StopIteration):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{what}: not within {timeout:.0f} s")


def holder(cluster: Cluster, avoid: str | None) -> str:
    return next(p["spec"]["nodeName"] for p in cluster.pods() if p["spec"].get("nodeName") != avoid)


def place_one_on(cluster: Cluster, host: str) -> None:
    """Nothing moves pods back to a host that came back (no rebalancer here): a replica deleted
    from the fullest host is made again, and the scheduler's spread puts it on the empty one."""
    for _ in range(10):
        pods = [p for p in cluster.pods() if not p["metadata"].get("deletionTimestamp")]
        if any(p["spec"].get("nodeName") == host for p in pods):
            return
        counts: dict[str, int] = {}
        for p in pods:
            counts[p["spec"].get("nodeName", "")] = counts.get(p["spec"].get("nodeName", ""), 0) + 1
        fullest = max(counts, key=lambda n: counts[n])
        victim = next(p["metadata"]["name"] for p in pods if p["spec"].get("nodeName") == fullest)
        cluster.cli("delete", "pod", victim)
        wait(lambda: cluster.ready_elsewhere("") == 4 and len(cluster.pods()) == 4, 60, "4 replicas again")
    raise TimeoutError(f"no replica landed on {host}")


def back_and_exact(cluster: Cluster, host: str) -> bool:
    """The host Ready and untainted (its `returning` taint off: the runtime found it clean), and
    exactly 4 of the deployment's containers running across the hosts."""
    node = cluster.node(host)
    ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                for c in node["status"].get("conditions") or [])
    return ready and not node["spec"].get("taints") and cluster.containers() == 4


def one_crash(cluster: Cluster, host: str) -> tuple[float, float]:
    lab = cluster.lab
    hosts.crash_host(lab, host)
    crash_to_ready = wait(lambda: cluster.ready_elsewhere(host) == 4, 120, "replicas ready elsewhere")
    began = time.monotonic()
    hosts.start_host(lab, host)
    deploy.forget_stale_pids(lab, host)
    deploy.run_playbook(lab, limit=host)
    wait(lambda: back_and_exact(cluster, host), 180, "exact after start")
    return crash_to_ready, time.monotonic() - began


def one_partition(cluster: Cluster, host: str) -> tuple[float, float, float]:
    lab = cluster.lab
    masters = deploy.masters_of(lab)
    for master in masters:
        hosts.partition(lab, host, master)
    try:
        cut_to_ready = wait(lambda: cluster.ready_elsewhere(host) == 4, 120, "replicas ready elsewhere")
        cut_to_fenced = cut_to_ready + wait(lambda: cluster.containers(only=host) == 0, 120,
                                            f"{host}'s own copies stopped")
    finally:
        hosts.heal(lab)
    healed = time.monotonic()

    wait(lambda: back_and_exact(cluster, host), 180, "exact after the heal")
    return cut_to_ready, cut_to_fenced, time.monotonic() - healed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--leader-runs", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=3)
    add_lab_option(parser, "hf")
    args = parser.parse_args()
    if not (1 <= args.runs <= 20 and 0 <= args.leader_runs <= 10 and 0 <= args.partitions <= 10):
        parser.error("need 1 <= --runs <= 20, 0 <= --leader-runs <= 10, 0 <= --partitions <= 10")
    interrupt_on_sigterm()
    print(f"berth bench/host_failure.py: a 4-replica deployment on 4 lab hosts, {args.runs} crashes of h4")
    print(f"  {machine_header()}")
    worker: list[tuple[float, float]] = []
    leader: list[tuple[float, float]] = []
    cuts: list[tuple[float, float, float]] = []
    with deployed(Lab(name=args.lab, hosts=4)) as cluster:
        applied = cluster.cli("apply", "-f", "-", stdin=MANIFEST)
        assert applied.returncode == 0, applied.stderr
        done = cluster.cli("rollout", "status", "deploy/hf", "--timeout=120s")
        assert done.returncode == 0, done.stdout + done.stderr
        for run in range(args.runs):
            place_one_on(cluster, "h4")
            worker.append(one_crash(cluster, "h4"))
            print(f"  run {run + 1}: crash -> ready {worker[-1][0]:.1f} s, "
                  f"start -> exact {worker[-1][1]:.1f} s")
        for _ in range(args.leader_runs):
            host = cluster.leader_host()
            place_one_on(cluster, host)
            leader.append(one_crash(cluster, host))
            print(f"  leader's host {host}: crash -> ready {leader[-1][0]:.1f} s, "
                  f"start -> exact {leader[-1][1]:.1f} s")
        for run in range(args.partitions):
            place_one_on(cluster, "h4")
            cuts.append(one_partition(cluster, "h4"))
            print(f"  cut {run + 1}: cut -> ready {cuts[-1][0]:.1f} s, cut -> fenced {cuts[-1][1]:.1f} s, "
                  f"heal -> exact {cuts[-1][2]:.1f} s")
    median = statistics.median(r[0] for r in worker)
    print(f"\n{'case':<34} {'crash -> ready s':>17} {'start -> exact s':>17}")
    print(f"{'worker host h4, median of ' + str(len(worker)):<34} {median:>17.1f} "
          f"{statistics.median(r[1] for r in worker):>17.1f}")
    print(f"{'worker host h4, worst':<34} {max(r[0] for r in worker):>17.1f} "
          f"{max(r[1] for r in worker):>17.1f}")
    if leader:
        medians = [statistics.median(r[i] for r in leader) for i in (0, 1)]
        name = f"the leader host, median of {len(leader)}"
        print(f"{name:<34} {medians[0]:>17.1f} {medians[1]:>17.1f}")
    if cuts:
        print(f"\n{'h4 cut off from every master':<34} {'median s':>9} {'worst s':>9}")
        for index, name in enumerate(("cut -> ready elsewhere", "cut -> own copies fenced",
                                      "heal -> exact count")):
            values = [c[index] for c in cuts]
            print(f"{name:<34} {statistics.median(values):>9.1f} {max(values):>9.1f}")
        overlap = [c[1] - c[0] for c in cuts]
        print(f"{'two copies at once (fenced - ready)':<34} {statistics.median(overlap):>9.1f} "
              f"{max(overlap):>9.1f}")
    for name, seconds in REFERENCES:
        print(f"{'reference: ' + name:<34} {seconds:>17}")
    print(f"target: crash -> ready <= {TARGET_SECONDS:.0f} s: median {median:.1f} s "
          f"{mark(median <= TARGET_SECONDS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
