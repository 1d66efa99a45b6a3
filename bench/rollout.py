"""A rolling update in the lab: 6 replicas of a real container, from apply to `berth rollout status`.

    python -m bench.rollout                 # 6 replicas, 3 lab hosts
    python -m bench.rollout --replicas 9

A lab of 3 hosts (`br`, removed afterwards) and 3 masters on loopback with the scheduler, the
runtime and the workload controllers. A Deployment of N busybox httpd pods is rolled out, then
its template's env changes (`berth apply`), and `berth rollout status` is started at once; a
sampler counts the Ready pods every 0.1 s meanwhile. Side by side in one run, each from the same
rolled-out start:

  rolling 25%/25%   RollingUpdate with Kubernetes' defaults
  rolling +1/-0     RollingUpdate, maxSurge 1, maxUnavailable 0 (never below N ready)
  recreate          the reference: every old pod stopped, then the new ones started

Printed per strategy: seconds from the apply to `rollout status` succeeding, the fewest Ready
pods seen (and the bound the strategy promises), the most pods at once, and the time as a ratio
of Recreate's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench._common import (
    ADMIN_TOKEN,
    Http,
    add_lab_option,
    interrupt_on_sigterm,
    machine_header,
    mark,
    running_masters,
    trusted_ca,
)
from bench.pods import empty_hosts, register_nodes
from berth.lab import hosts as lab_hosts
from berth.lab.hosts import IMAGE, Lab

SERVE = "echo $GREETING > /tmp/i && exec httpd -f -p 80"
PODS = "/api/v1/namespaces/bench/pods"
CONTROLLERS = ["node-lifecycle", "scheduler", "runtime", "deployment", "replicaset", "garbage-collector"]
STRATEGIES = {  # name -> (strategy, the fewest ready pods it promises for N replicas)
    "rolling 25%/25%": ({"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                        lambda n: n - n // 4),
    "rolling +1/-0": ({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                      lambda n: n),
    "recreate": ({"type": "Recreate"}, lambda n: 0),
}


def manifest(name: str, replicas: int, strategy: dict[str, Any], greeting: str) -> dict[str, Any]:
    return {"apiVersion": "berth/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "bench"},
            "spec": {"replicas": replicas, "strategy": strategy, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {
                         "terminationGracePeriodSeconds": 2,
                         "containers": [{"name": "web", "image": IMAGE,
                                         "command": ["sh", "-c", SERVE],
                                         "env": [{"name": "GREETING", "value": greeting}],
                                         "resources": {"requests": {"cpu": "50m", "memory": "16Mi"}}}]}}}}


def is_ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


class Sampler:
    """Ready and all (not terminating) pods of one app, every 0.1 s, until stopped."""

    def __init__(self, url: str, app: str) -> None:
        self.http, self.app = Http(url), app
        self.ready: list[int] = []
        self.total: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            code, listed = self.http.json("GET", f"{PODS}?labelSelector=app={self.app}")
            if code != 200:
                continue
            live = [p for p in listed["items"] if not p["metadata"].get("deletionTimestamp")]
            self.total.append(len(live))
            self.ready.append(sum(1 for p in live if is_ready(p)))

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.http.close()


def cli(url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "BERTH_SERVER": url, "BERTH_TOKEN": ADMIN_TOKEN,
           "HOME": tempfile.gettempdir(), "BERTH_CERTIFICATE_AUTHORITY": str(trusted_ca())}
    return subprocess.run([sys.executable, "-m", "berth.cli.main", *args], input=stdin, env=env, text=True,
                          capture_output=True, timeout=330, check=False)


def one(url: str, name: str, replicas: int, strategy: dict[str, Any]) -> dict[str, Any]:
    first = cli(url, "apply", "-f", "-", stdin=json.dumps(manifest(name, replicas, strategy, "v1")))
    assert first.returncode == 0, first.stderr
    done = cli(url, "rollout", "status", f"deploy/{name}", "-n", "bench", "--timeout=300s")
    assert done.returncode == 0, done.stdout + done.stderr
    with Sampler(url, name) as sampler:
        began = time.monotonic()
        changed = cli(url, "apply", "-f", "-", stdin=json.dumps(manifest(name, replicas, strategy, "v2")))
        assert changed.returncode == 0, changed.stderr
        done = cli(url, "rollout", "status", f"deploy/{name}", "-n", "bench", "--timeout=300s")
        seconds = time.monotonic() - began
    assert done.returncode == 0, done.stdout + done.stderr
    gone = cli(url, "delete", "deploy", name, "-n", "bench")
    assert gone.returncode == 0, gone.stderr
    return {"seconds": seconds, "least": min(sampler.ready, default=-1),
            "most": max(sampler.total, default=-1), "samples": len(sampler.ready)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replicas", type=int, default=6)
    add_lab_option(parser, "br")
    args = parser.parse_args()
    if not 1 <= args.replicas <= 60:
        parser.error("need 1 <= --replicas <= 60")
    interrupt_on_sigterm()
    print(f"berth bench/rollout.py: a rolling update of {args.replicas} replicas on 3 lab hosts")
    print(f"  {machine_header()}")
    lab = Lab(name=args.lab, hosts=3)
    root = Path(tempfile.mkdtemp(prefix="berth-bench-rollout-"))
    lab_hosts.down(lab)
    results: dict[str, dict[str, Any]] = {}
    try:
        lab_hosts.up(lab)
        empty_hosts(lab)
        settings = {"controllers": CONTROLLERS, "node_grace_seconds": 3600,
                    "ssh_key_file": str(lab.ssh_key), "ssh_known_hosts_file": str(lab.known_hosts),
                    "restart_backoff_seconds": 1, "runtime_resync_seconds": 1}
        with running_masters(root / "masters", 3, settings) as masters:
            url = masters.url(masters.leader_index())
            register_nodes(Http(url), lab)
            for index, (label, (strategy, _)) in enumerate(STRATEGIES.items()):
                results[label] = one(url, f"r{index}", args.replicas, strategy)
    finally:
        lab_hosts.down(lab)
        shutil.rmtree(root, ignore_errors=True)
    n = args.replicas
    reference = results["recreate"]["seconds"]
    print(f"\n{'strategy':<17} {'apply->status s':>15} {'vs recreate':>12} {'fewest ready':>13} "
          f"{'promised':>9} {'most pods':>10}")
    for label, (_, promised) in STRATEGIES.items():
        r = results[label]
        print(f"{label:<17} {r['seconds']:>15.1f} {r['seconds'] / reference:>11.2f}x {r['least']:>13} "
              f"{promised(n):>9} {r['most']:>10}  {mark(r['least'] >= promised(n))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
