"""The Services' data path on one host: rendering the nftables table and loading it.

    python -m bench.ruleset                    # 1,000 services x 10 endpoints
    python -m bench.ruleset --services 5000 --endpoints 10

Synthetic Services (each one TCP port, a cluster IP, every fifth a NodePort, every tenth
ClientIP affinity) and Endpoints, as the agent's informers hold them. Measured, median of
--repeat runs: `service_ports` + `render` (pure Python), and `nft -f` of the whole table into
a network namespace made for the run (the first load, into an empty namespace, then a
reload replacing it, which is what every change costs the agent). Anchor, side by side in
the same namespace: one service's endpoints changed by `nft` commands on the loaded table
alone (what an incremental data path, kube-proxy's nftables mode, pays for one change).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time

from agent.ruleset import render
from agent.services import service_ports
from bench._common import machine_header

POD_CIDR = "10.244.0.0/24"


def objects(services: int, endpoints: int) -> tuple[list[dict], list[dict]]:
    made, eps = [], []
    for i in range(services):
        name = f"svc{i}"
        spec = {"type": "NodePort" if i % 5 == 0 else "ClusterIP",
                "clusterIP": f"10.96.{i // 250}.{i % 250 + 1}",
                "ports": [{"name": "http", "port": 80, "protocol": "TCP",
                           **({"nodePort": 30000 + i} if i % 5 == 0 else {})}]}
        if i % 10 == 0:
            spec["sessionAffinity"] = "ClientIP"
        made.append({"metadata": {"namespace": "bench", "name": name}, "spec": spec})
        addresses = [{"ip": f"10.244.{(i * endpoints + j) // 250 % 250}.{(i * endpoints + j) % 250 + 2}"}
                     for j in range(endpoints)]
        eps.append({"metadata": {"namespace": "bench", "name": name},
                    "subsets": [{"addresses": addresses, "ports": [{"name": "http", "port": 8080}]}]})
    return made, eps


def timed(action) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def nft(namespace: str, text: str | None = None, *args: str) -> None:
    argv = ["ip", "netns", "exec", namespace, "nft", *(["-f", "-"] if text is not None else list(args))]
    subprocess.run(argv, input=text, text=True, check=True, capture_output=True, timeout=300)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(machine_header())
    services, endpoints = objects(args.services, args.endpoints)
    cidrs = [f"10.244.{i}.0/24" for i in range(250)]
    renders, text = [], ""
    for _ in range(args.repeat):
        started = time.perf_counter()
        text = render(POD_CIDR, cidrs, service_ports(services, endpoints))
        renders.append(time.perf_counter() - started)
    rules = text.count("\n")
    namespace = f"berth-bench-rs-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    try:
        first = timed(lambda: nft(namespace, text))
        reloads = [timed(lambda: nft(namespace, text)) for _ in range(args.repeat)]
        changed = services[7]["metadata"]["name"]
        chain = next(p.chain for p in service_ports(services, endpoints) if p.service == changed)
        incremental = [timed(lambda: nft(namespace, None, "flush", "chain", "ip", "berth", chain))
                       for _ in range(args.repeat)]
    finally:
        subprocess.run(["ip", "netns", "del", namespace], check=False)
    print(f"{args.services} services x {args.endpoints} endpoints: {rules} lines of nft, "
          f"{len(text) / 1e6:.1f} MB")
    print("| step | median ms | |\n|---|---|---|")
    print(f"| service_ports + render (Python) | {statistics.median(renders) * 1000:.0f} | |")
    print(f"| nft -f, first load | {first * 1000:.0f} | |")
    full = statistics.median(reloads)
    print(f"| nft -f, reload replacing the table (each change) | {full * 1000:.0f} | |")
    one = statistics.median(incremental)
    print(f"| anchor: one service's chain changed alone (nft command) | {one * 1000:.0f} | "
          f"full reload / incremental = {full / one:.0f}x |")
    total = statistics.median(renders) + full
    print(f"a change reaches the kernel in {total * 1000:.0f} ms (render + reload), target < 1000 ms: "
          f"{'ok' if total < 1 else 'MISSED'}")


if __name__ == "__main__":
    main()
