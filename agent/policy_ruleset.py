"""The network policies' part of the host's table `ip berth`: pure text, composed by ruleset.py.

Where packets are filtered. Every packet between a pod of this host and anything else crosses the
`forward` hook of the ip family: routed ones (another host's pods, the outside, a Service's
backend after its DNAT), and bridged ones too, pod to pod on this host's bridge, because bridge
netfilter (`net.bridge.bridge-nf-call-iptables`, which the agent turns on) passes bridged IPv4
through the ip hooks with conntrack. A pod's traffic to this host itself (the cluster DNS on the
bridge address) crosses `input`. Both chains run at the filter priority, after the nat
prerouting hook: a connection to a Service is judged by the pod it was sent to (Kubernetes'
semantics), and by its real source (postrouting's masquerade comes after).

How. A reply of an allowed connection passes (`ct state established,related accept`). Then the
source, if it is an egress-isolated pod of this host, jumps to its egress chain, and the
destination, if an ingress-isolated pod of this host, to its ingress chain (a pod of this host
talking to another is judged by both, as two hosts would judge it). Each chain `return`s what
a rule allows and drops the rest. One verdict map per direction sends a pod's address to its
chain; pods whose rules come out the same (a deployment's replicas) share one chain, named by
a hash of its rules, and every peer list is one named interval set, named by a hash of its
networks, shared by every rule that allows it, so 1,000 pods under 100 policies render to
about as many chains and sets as there are distinct rules, not pods times rules.
Pods no policy isolates are in no map: open, as in Kubernetes.
"""

from __future__ import annotations

import hashlib

from agent.network_policy import Allow, PodRules, Ports


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _block(head: str, *body: str) -> list[str]:
    return [f"\t{head} {{", *[f"\t\t{line}" for line in body], "\t}", ""]


def _port_match(ports: Ports) -> str:
    if not ports.ranges:
        return f"meta l4proto {ports.protocol}"
    numbers = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in ports.ranges)
    return f"{ports.protocol} dport {{ {numbers} }}"


class _Sets:
    """The peers' named sets, one per distinct list of networks."""

    def __init__(self) -> None:
        self.by_name: dict[str, tuple[str, ...]] = {}

    def name(self, peers: tuple[str, ...]) -> str:
        name = f"np-peers-{_hash(','.join(peers))}"
        self.by_name[name] = peers
        return name

    def lines(self) -> list[str]:
        lines = []
        for name, peers in sorted(self.by_name.items()):
            lines += _block(f"set {name}", "type ipv4_addr", "flags interval",
                            f"elements = {{ {', '.join(peers)} }}")
        return lines


def _rules(allows: tuple[Allow, ...], direction: str, sets: _Sets) -> list[str]:
    """`return` for what each Allow lets through, then `drop`."""
    other = "saddr" if direction == "ingress" else "daddr"
    lines = []
    for allow in allows:
        if allow.endpoints:
            triples = ", ".join(f"{ip} . {protocol} . {port}" for ip, protocol, port in allow.endpoints)
            lines.append(f"ip daddr . meta l4proto . th dport {{ {triples} }} return")
            continue
        peers = f"ip {other} @{sets.name(allow.peers)} " if allow.peers is not None else ""
        if allow.ports is None:
            lines.append(f"{peers}return")
        else:
            lines += [f"{peers}{_port_match(ports)} return" for ports in allow.ports]
    return lines if "return" in lines else [*lines, "drop"]  # a rule of anyone, any port: open


def render_policies(pods: list[PodRules]) -> list[str]:
    """The sets, chains, maps and two hooks of the policies, as lines of the table's body; nothing
    at all when no pod of this host is isolated."""
    if not pods:
        return []
    sets, chains = _Sets(), {}
    maps: dict[str, list[str]] = {"ingress": [], "egress": []}
    for pod in pods:
        for direction, allows in (("ingress", pod.ingress), ("egress", pod.egress)):
            if allows is None:
                continue
            body = _rules(allows, direction, sets)
            chain = f"np-{direction}-{_hash(chr(10).join(body))}"
            chains[chain] = body
            maps[direction].append(f"{pod.ip} : jump {chain}")
    lines = sets.lines()
    for direction in ("ingress", "egress"):
        elements = [f"elements = {{ {', '.join(maps[direction])} }}"] if maps[direction] else []
        lines += _block(f"map policy-{direction}", "type ipv4_addr : verdict", *elements)
    for chain, body in sorted(chains.items()):
        lines += _block(f"chain {chain}", *body)
    lines += _block("chain policy-forward", "type filter hook forward priority filter; policy accept;",
                    "ct state established,related accept", "ip saddr vmap @policy-egress",
                    "ip daddr vmap @policy-ingress")
    lines += _block("chain policy-input", "type filter hook input priority filter; policy accept;",
                    "ct state established,related accept",
                    'ip saddr vmap @policy-egress comment "a pod to this host: the cluster DNS among it"')
    return lines
