"""The host's one nftables table, `ip berth`, rendered whole as text: pure, no I/O.

As kube-proxy's nftables mode: one table of Berth's own, replaced atomically by one
`nft -f` transaction (the table made if absent, deleted, and written anew), so no packet
ever meets half a ruleset, and nothing else's rules are touched.

Services. A connection to a Service's virtual address and port (or to a node port on any of
the host's own addresses) is looked up in one verdict map and sent to that service port's
chain, which picks one ready backend at random (`numgen`) and rewrites the destination
(DNAT); with ClientIP affinity, a client's address is kept per backend for the timeout and
sent back there first. A service port with no ready backend is refused at once (`reject`,
before any routing: a host without a default route would otherwise answer "network
unreachable") rather than left to time out.

Source addresses. A pod talking to a pod keeps its own address (the Kubernetes network
model: no NAT between pods). The engine's bridge network masquerades everything leaving its
subnet, so the postrouting chain runs just before NAT's usual priority and binds such a
connection to its own address first: the kernel makes one NAT decision per connection, and
later chains (the engine's masquerade) are skipped. Masqueraded instead: traffic that came in
through a node port (its reply must come back through this host), a pod reaching itself
through a service, a pod reaching another pod of this host through a service (the reply
would otherwise go straight across the bridge, around the translation), and anything from
the pods to the outside.

Network policies. Their sets, chains and filter hooks (agent/policy_ruleset.py) are part of the
same table, so a change of a policy and of a service are loaded together, atomically.
"""

from __future__ import annotations

import hashlib

from agent.network_policy import PodRules
from agent.policy_ruleset import render_policies
from agent.services import Backend, ServicePort

TABLE = "berth"
MASQUERADE_MARK = "0x4000"


def _endpoint_chain(port: ServicePort, backend: Backend) -> str:
    """Named by what it leads to, so a backend keeps its chain (and affinity set) by name."""
    digest = hashlib.sha256(f"{port.chain}/{backend.ip}:{backend.port}".encode()).hexdigest()[:12]
    return f"ep-{digest}"


def _service_chains(port: ServicePort) -> list[str]:
    """One rule picks the backend and rewrites to it; with affinity, a chain per backend
    remembers its clients (and is tried first for a client it knows)."""
    if not port.affinity_seconds:
        picks = ", ".join(f"{i} : {b.ip} . {b.port}" for i, b in enumerate(port.backends))
        lines = _block(f"chain {port.chain}", f"meta l4proto {port.protocol} dnat ip to numgen random mod "
                                             f"{len(port.backends)} map {{ {picks} }}")
    else:
        chains = [_endpoint_chain(port, b) for b in port.backends]
        picks = ", ".join(f"{i} : goto {chain}" for i, chain in enumerate(chains))
        lines = _block(f"chain {port.chain}", *[f"ip saddr @aff-{chain} goto {chain}" for chain in chains],
                       f"numgen random mod {len(chains)} vmap {{ {picks} }}")
        for chain, backend in zip(chains, port.backends, strict=True):
            lines += [*_block(f"set aff-{chain}", "type ipv4_addr", "flags dynamic,timeout",
                              f"timeout {port.affinity_seconds}s"),
                      *_block(f"chain {chain}", f"update @aff-{chain} {{ ip saddr }}",
                              f"meta l4proto {port.protocol} dnat ip to {backend.ip}:{backend.port}")]
    if port.node_port:
        lines += _block(f"chain ext-{port.chain}", "jump mark-for-masquerade", f"goto {port.chain}")
    return lines


def _block(head: str, *body: str) -> list[str]:
    return [f"\t{head} {{", *[f"\t\t{line}" for line in body], "\t}", ""]


def _lookups(served: list[ServicePort], empty: list[ServicePort]) -> list[str]:
    """Where each service port goes: its chain, or (no backend) a refusal."""
    def elements(items: list[str]) -> list[str]:
        return [f"elements = {{ {', '.join(items)} }}"] if items else []

    return [
        *_block("map service-ips", "type ipv4_addr . inet_proto . inet_service : verdict",
                *elements([f"{p.cluster_ip} . {p.protocol} . {p.port} : goto {p.chain}" for p in served])),
        *_block("map service-nodeports", "type inet_proto . inet_service : verdict",
                *elements([f"{p.protocol} . {p.node_port} : goto ext-{p.chain}"
                           for p in served if p.node_port])),
        *_block("set no-endpoint-services", "type ipv4_addr . inet_proto . inet_service",
                *elements([f"{p.cluster_ip} . {p.protocol} . {p.port}" for p in empty])),
        *_block("set no-endpoint-nodeports", "type inet_proto . inet_service",
                *elements([f"{p.protocol} . {p.node_port}" for p in empty if p.node_port])),
    ]


def _hooks() -> list[str]:
    lines = [*_block("chain mark-for-masquerade", f"meta mark set meta mark | {MASQUERADE_MARK}"),
             *_block("chain services", "ip daddr . meta l4proto . th dport vmap @service-ips",
                     "fib daddr type local meta l4proto . th dport vmap @service-nodeports"),
             *_block("chain prerouting", "type nat hook prerouting priority dstnat; policy accept;",
                     "jump services"),
             *_block("chain output", "type nat hook output priority -100; policy accept;", "jump services"),
             *_block("chain endpoints-check",
                     "ip daddr . meta l4proto . th dport @no-endpoint-services reject",
                     "fib daddr type local meta l4proto . th dport @no-endpoint-nodeports reject")]
    for hook in ("prerouting", "output"):  # before routing, and before the nat hooks (-100) translate
        lines += _block(f"chain filter-{hook}", f"type filter hook {hook} priority -110; policy accept;",
                        "ct state new jump endpoints-check")
    return lines


def _postrouting(pod_cidr: str) -> list[str]:
    return _block("chain postrouting", "type nat hook postrouting priority srcnat - 1; policy accept;",
                  f"meta mark & {MASQUERADE_MARK} == {MASQUERADE_MARK} masquerade "
                  'comment "came in through a node port"',
                  f"ip saddr {pod_cidr} ip daddr {pod_cidr} ct status dnat masquerade "
                  "comment \"a service's pod on this host, the caller itself included\"",
                  f'ip saddr {pod_cidr} ip daddr @pod-cidrs snat ip to ip saddr comment "pod to pod: no NAT"',
                  f'ip saddr {pod_cidr} masquerade comment "pod to the outside"')


def render(pod_cidr: str, pod_cidrs: list[str], services: list[ServicePort] | None = None,
           policies: list[PodRules] | None = None) -> str:
    """The table for a host whose pods live in `pod_cidr`, in a cluster of `pod_cidrs`, with
    `services` (sorted: an unchanged cluster renders the same text, and nothing is loaded) and the
    network policies of this host's isolated pods (`network_policy.resolve`)."""
    services = services or []
    served = [p for p in services if p.backends]
    lines = [f"table ip {TABLE}", f"delete table ip {TABLE}", f"table ip {TABLE} {{",
             *_block("set pod-cidrs", "type ipv4_addr", "flags interval",
                     f"elements = {{ {', '.join(sorted({pod_cidr, *pod_cidrs}))} }}"),
             *_lookups(served, [p for p in services if not p.backends]), *_hooks(), *_postrouting(pod_cidr)]
    for port in served:
        lines += _service_chains(port)
    lines += render_policies(policies or [])
    while lines[-1] == "":
        lines.pop()
    return "\n".join([*lines, "}", ""])
