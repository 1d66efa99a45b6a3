"""Network policies on one host: resolving them per pod, rendering the table, loading it.

    python -m bench.network_policy                      # 1,000 pods, 100 policies, 100 pods on this host
    python -m bench.network_policy --local 1000         # every pod on this host (the worst case)

Synthetic cluster: `--pods` pods over 10 namespaces (labelled team=tN) and `--pods / --local`
nodes, each pod labelled app=aK (20 apps a namespace) and role=client or role=server, with a named
port; `--policies` policies, each selecting one app of its namespace (100 policies: half of the
pods): ingress from the clients of its namespace, from the namespaces of a team and from an
ipBlock with an except, on its named port and a port range; every other policy also
egress-isolated (to its namespace's servers on their named port, and DNS). Measured, median of
--repeat runs: `resolve` and `render` (pure Python), and `nft -f` of the whole table into a
network namespace made for the run (a reload replacing it, what every change costs the agent).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import statistics
import subprocess
import time

from agent.network_policy import resolve
from agent.ruleset import render
from bench._common import machine_header

NAMESPACES = 10
APPS = 20
BASE = int(ipaddress.IPv4Address("10.244.0.0"))  # each node a /22 of it: room for 1,000 pods a node


def node_cidr(node: int) -> str:
    return f"{ipaddress.IPv4Address(BASE + node * 1024)}/22"


def cluster(pods: int, local: int) -> tuple[list[dict], list[dict], int]:
    nodes = max(1, pods // max(1, local))
    made = []
    for i in range(pods):
        node = i % nodes
        made.append({"metadata": {"name": f"p{i}", "namespace": f"ns{i % NAMESPACES}",
                                  "labels": {"app": f"a{(i // NAMESPACES) % APPS}",
                                             "role": "client" if i % 3 == 0 else "server"}},
                     "spec": {"nodeName": f"n{node}", "containers": [{"ports": [
                         {"name": "http", "containerPort": 8000 + i % 7, "protocol": "TCP"}]}]},
                     "status": {"phase": "Running",
                                "podIP": str(ipaddress.IPv4Address(BASE + node * 1024 + i // nodes + 2))}})
    namespaces = [{"metadata": {"name": f"ns{n}", "labels": {"team": f"t{n % 3}"}}}
                  for n in range(NAMESPACES)]
    return made, namespaces, nodes


def policies(count: int) -> list[dict]:
    made = []
    for i in range(count):
        spec = {"podSelector": {"matchLabels": {"app": f"a{i // NAMESPACES % APPS}"}},
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}},
                                      {"namespaceSelector": {"matchLabels": {"team": f"t{i % 3}"}}},
                                      {"ipBlock": {"cidr": "192.168.0.0/16", "except": ["192.168.7.0/24"]}}],
                             "ports": [{"port": "http"}, {"port": 9000, "endPort": 9100}]}]}
        if i % 2:
            spec["policyTypes"] = ["Ingress", "Egress"]
            spec["egress"] = [{"to": [{"podSelector": {"matchLabels": {"role": "server"}}}],
                               "ports": [{"port": "http"}]},
                              {"ports": [{"port": 53, "protocol": "UDP"}]}]
        made.append({"metadata": {"name": f"np{i}", "namespace": f"ns{i % NAMESPACES}"}, "spec": spec})
    return made


def timed(action) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--policies", type=int, default=100)
    parser.add_argument("--local", type=int, default=100, help="pods on the measured host")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(machine_header())
    pods, namespaces, nodes = cluster(args.pods, args.local)
    made = policies(args.policies)
    cidrs = [node_cidr(n) for n in range(nodes)]
    resolves, renders, rules, text = [], [], [], ""
    for _ in range(args.repeat):
        started = time.perf_counter()
        rules = resolve(made, pods, namespaces, "n0")
        resolves.append(time.perf_counter() - started)
        started = time.perf_counter()
        text = render(node_cidr(0), cidrs, [], rules)
        renders.append(time.perf_counter() - started)
    namespace = f"berth-bench-np-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    try:
        def load() -> None:
            subprocess.run(["ip", "netns", "exec", namespace, "nft", "-f", "-"], input=text, text=True,
                           check=True, capture_output=True, timeout=300)

        first = timed(load)
        reloads = [timed(load) for _ in range(args.repeat)]
    finally:
        subprocess.run(["ip", "netns", "delete", namespace], check=False)
    print(f"{args.pods} pods ({len([p for p in pods if p['spec']['nodeName'] == 'n0'])} on this host, "
          f"{nodes} nodes), {args.policies} policies: {len(rules)} isolated pods here")
    print(f"table: {text.count(chr(10))} lines, {text.count('chain np-')} policy chains, "
          f"{text.count('set np-peers-')} peer sets")
    print(f"resolve          median {statistics.median(resolves) * 1000:8.1f} ms")
    print(f"render           median {statistics.median(renders) * 1000:8.1f} ms")
    print(f"nft -f (first)          {first * 1000:8.1f} ms")
    print(f"nft -f (reload)  median {statistics.median(reloads) * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
