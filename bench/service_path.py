"""A Service's data path in the lab: its cluster IP against the pods' own addresses, and how soon
it follows readiness.

    python -m bench.service_path              # lab "sp" (3 hosts), removed afterwards
    python -m bench.service_path --requests 2000

A lab deployed with Ansible as `lab/up.sh` does, an `echo` Deployment of 2 busybox httpd
replicas (each answers with its own name; ready while /tmp/ready exists) behind a ClusterIP
Service. The client is a small Python HTTP/1.0 loop run in the network namespace of a `loader`
pod on h1 (the machine's Python, entered with nsenter: the image has none), so its requests take
a pod's path; every request is a new connection, so each pays the DNAT lookup.

  throughput  --requests GETs at 1 and 8 concurrent connections, through the cluster IP and,
              side by side, straight to the two pod addresses in turn (the anchor: the direct
              path, as kube-proxy's kernel path is measured against it); target >= 90 %
  not ready   a replica's /tmp/ready removed: seconds until the last request it answers
              (its probe's period, 1 s, included); target <= 2 s; median of 3
  new ready   the deployment scaled to 3: seconds from the API showing the new pod Ready to
              its first answer; median of 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from typing import Any

from bench._common import add_lab_option, interrupt_on_sigterm, machine_header, mark
from bench.host_failure import Cluster, deployed, wait
from berth.containers import container_name
from berth.lab import hosts
from berth.lab.hosts import IMAGE, Lab

TARGET_RATIO = 0.9
TARGET_NOT_READY_SECONDS = 2.0
MANIFEST = f"""apiVersion: berth/v1
kind: Deployment
metadata: {{name: echo}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: echo}}}}
  template:
    metadata: {{labels: {{app: echo}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: {IMAGE}
        command: [sh, -c, 'mkdir -p /www && hostname > /www/index.html && touch /tmp/ready &&
                          exec httpd -f -p 8080 -h /www']
        ports: [{{name: http, containerPort: 8080}}]
        readinessProbe: {{exec: {{command: [cat, /tmp/ready]}}, periodSeconds: 1, failureThreshold: 1}}
        resources: {{requests: {{cpu: 10m, memory: 8Mi}}}}
---
apiVersion: berth/v1
kind: Service
metadata: {{name: echo}}
spec:
  selector: {{app: echo}}
  ports: [{{port: 80, targetPort: http}}]
"""

# Run inside h1 with the machine's Python: argv = mode, targets (host:port,...), then numbers.
CLIENT = r'''
import http.client, json, sys, threading, time
mode, targets = sys.argv[1], [t.rsplit(":", 1) for t in sys.argv[2].split(",")]

def get(i):
    host, port = targets[i % len(targets)]
    c = http.client.HTTPConnection(host, int(port), timeout=3)
    try:
        c.request("GET", "/")
        return c.getresponse().read().decode().strip()
    finally:
        c.close()

if mode == "load":
    total, workers = int(sys.argv[3]), int(sys.argv[4])
    latencies, errors, lock, counter = [], [], threading.Lock(), [0]
    def work():
        while True:
            with lock:
                i = counter[0]; counter[0] += 1
            if i >= total:
                return
            began = time.perf_counter()
            try:
                get(i)
            except OSError as err:
                with lock:
                    errors.append(str(err))
                continue
            took = time.perf_counter() - began
            with lock:
                latencies.append(took)
    began = time.perf_counter()
    threads = [threading.Thread(target=work) for _ in range(workers)]
    [t.start() for t in threads]; [t.join() for t in threads]
    print(json.dumps({"seconds": time.perf_counter() - began, "latencies": sorted(latencies),
                      "errors": errors[:5], "failed": len(errors)}))
else:  # "watch": who answers, every 20 ms, for the given seconds
    answers, end = [], time.time() + float(sys.argv[3])
    while time.time() < end:
        try:
            answers.append((time.time(), get(0)))
        except OSError:
            answers.append((time.time(), ""))
        time.sleep(0.02)
    print(json.dumps(answers))
'''


LOADER = {"apiVersion": "berth/v1", "kind": "Pod", "metadata": {"name": "loader"},
          "spec": {"nodeName": "h1", "terminationGracePeriodSeconds": 1, "containers": [
              {"name": "main", "image": IMAGE, "command": ["sleep", "3600"],
               "resources": {"requests": {"cpu": "10m", "memory": "8Mi"}}}]}}
_loader_pid: list[str] = []


def client(lab: Lab, *args: str) -> Any:
    """The client script, in the loader pod's network namespace (lab addresses only)."""
    done = hosts.in_host(lab, "h1", ["nsenter", "-t", _loader_pid[0], "-n", sys.executable, "-c", CLIENT,
                                     *args], timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the client failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def ready_pods(cluster: Cluster) -> list[dict[str, Any]]:
    pods = cluster.get("/api/v1/namespaces/default/pods?labelSelector=app=echo")["items"]
    def ready(pod: dict[str, Any]) -> bool:
        conditions = (pod.get("status") or {}).get("conditions") or []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    return [p for p in pods if not p["metadata"].get("deletionTimestamp") and ready(p)]


def in_pod(lab: Lab, pod: dict[str, Any], *command: str) -> None:
    host = pod["spec"]["nodeName"]
    hosts.in_host(lab, host, [lab.runtime(host), "exec", "--", container_name(pod, "main"), *command])


def throughput(lab: Lab, cluster_ip: str, pods: list[dict[str, Any]], requests: int) -> list[str]:
    direct = ",".join(f"{p['status']['podIP']}:8080" for p in pods)
    rows = []
    for workers in (1, 8):
        figures = {}
        for name, targets in (("cluster IP", f"{cluster_ip}:80"), ("direct", direct)):
            result = client(lab, "load", targets, str(requests), str(workers))
            lat = result["latencies"]
            if result["failed"]:
                raise RuntimeError(f"{name}: {result['failed']} requests failed: {result['errors']}")
            figures[name] = (len(lat) / result["seconds"], statistics.median(lat) * 1000,
                             lat[int(len(lat) * 0.99) - 1] * 1000)
        ratio = figures["cluster IP"][0] / figures["direct"][0]
        for name, (rate, p50, p99) in figures.items():
            rows.append(f"| {workers} | {name} | {rate:.0f} | {p50:.2f} | {p99:.2f} | "
                        f"{f'{ratio:.0%} {mark(ratio >= TARGET_RATIO)}' if name == 'cluster IP' else ''} |")
    return rows


def not_ready_delay(lab: Lab, cluster: Cluster, cluster_ip: str) -> float:
    tired = sorted(ready_pods(cluster), key=lambda p: p["metadata"]["name"])[0]
    name = tired["metadata"]["name"]
    watcher: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: watcher.update(answers=client(lab, "watch", f"{cluster_ip}:80",
                                                                             "8")))
    thread.start()
    time.sleep(2)  # the watch is answering before the change (both replicas seen)
    removed_at = time.time()
    in_pod(lab, tired, "rm", "/tmp/ready")
    thread.join()
    in_pod(lab, tired, "touch", "/tmp/ready")
    wait(lambda: len(ready_pods(cluster)) == 2, 30, "both replicas ready again")
    last = max((at for at, who in watcher["answers"] if who == name), default=removed_at)
    return max(0.0, last - removed_at)


def new_ready_delay(lab: Lab, cluster: Cluster, cluster_ip: str, replicas: int) -> float:
    before = {p["metadata"]["name"] for p in ready_pods(cluster)}
    watcher: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: watcher.update(answers=client(lab, "watch", f"{cluster_ip}:80",
                                                                             "25")))
    thread.start()
    cluster.cli("scale", "deploy/echo", f"--replicas={replicas}")
    wait(lambda: len(ready_pods(cluster)) == replicas, 20, "the new replica ready")
    seen_ready = time.time()
    new = next(p["metadata"]["name"] for p in ready_pods(cluster) if p["metadata"]["name"] not in before)
    thread.join()
    first = min((at for at, who in watcher["answers"] if who == new), default=float("nan"))
    return first - seen_ready


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    add_lab_option(parser, "sp")
    args = parser.parse_args()
    interrupt_on_sigterm()
    print(f"berth bench/service_path.py: a ClusterIP service of 2 replicas in a 3-host lab, {args.requests} "
          "requests a run")
    print(f"  {machine_header()}")
    with deployed(Lab(name=args.lab, hosts=3)) as cluster:
        lab = cluster.lab
        applied = cluster.cli("apply", "-f", "-", stdin=MANIFEST)
        assert applied.returncode == 0, applied.stderr
        loaded = cluster.cli("apply", "-f", "-", stdin=json.dumps(LOADER))
        assert loaded.returncode == 0, loaded.stderr
        wait(lambda: len(ready_pods(cluster)) == 2, 120, "2 replicas ready")
        loader_path = "/api/v1/namespaces/default/pods/loader"
        wait(lambda: cluster.get(loader_path)["status"].get("phase") == "Running", 120, "the loader running")
        loader = cluster.get(loader_path)
        _loader_pid.append(hosts.in_host(lab, "h1", ["podman", "inspect", "--format", "{{.State.Pid}}", "--",
                                                     container_name(loader, "main")]).stdout.strip())
        cluster_ip = cluster.get("/api/v1/namespaces/default/services/echo")["spec"]["clusterIP"]
        wait(lambda: len((cluster.get("/api/v1/namespaces/default/endpoints/echo")["subsets"] or [{}])[0]
                         .get("addresses") or []) == 2, 30, "2 endpoints")
        rows = throughput(lab, cluster_ip, ready_pods(cluster), args.requests)
        not_ready = [not_ready_delay(lab, cluster, cluster_ip) for _ in range(3)]
        new_ready = [new_ready_delay(lab, cluster, cluster_ip, 3 + i) for i in range(3)]
    print("\n| concurrent | path | requests/s | p50 ms | p99 ms | cluster IP / direct |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    median = statistics.median(not_ready)
    runs = ", ".join(f"{x:.2f}" for x in not_ready)
    print(f"\nnot ready -> no more traffic: median {median:.2f} s of {runs} "
          f"(target <= {TARGET_NOT_READY_SECONDS:.0f} s: {mark(median <= TARGET_NOT_READY_SECONDS)})")
    print(f"API shows a new pod Ready -> its first request: median {statistics.median(new_ready):.2f} s of "
          f"{', '.join(f'{x:.2f}' for x in new_ready)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
