"""The host's one nftables table, `ip berth`, rendered whole as text: pure, no I/O.

As kube-proxy's nftables mode: one table of Berth's own, replaced atomically by one
`nft -f` transaction (the table made if absent, deleted, and written anew), so no packet
ever meets half a ruleset, and nothing else's rules are touched.

Source addresses. A pod talking to a pod on another host keeps its own address (the
Kubernetes network model: no NAT between pods). The engine's bridge network masquerades
everything leaving its subnet, so this chain runs just before NAT's usual priority and
binds such a connection to its own address first: the kernel makes one NAT decision per
connection, and later chains (the engine's masquerade) are skipped. Traffic from pods to
anything else is masqueraded to the host's address.
"""

from __future__ import annotations

TABLE = "berth"


def render(pod_cidr: str, pod_cidrs: list[str]) -> str:
    """The table for a host whose pods live in `pod_cidr`, in a cluster of `pod_cidrs`."""
    every = ", ".join(sorted({pod_cidr, *pod_cidrs}))
    return f"""table ip {TABLE}
delete table ip {TABLE}
table ip {TABLE} {{
\tset pod-cidrs {{
\t\ttype ipv4_addr
\t\tflags interval
\t\telements = {{ {every} }}
\t}}

\tchain postrouting {{
\t\ttype nat hook postrouting priority srcnat - 1; policy accept;
\t\tip saddr {pod_cidr} ip daddr @pod-cidrs snat ip to ip saddr comment "pod to pod: no NAT"
\t\tip saddr {pod_cidr} masquerade comment "pod to the outside"
\t}}
}}
"""
