"""The node authorizer: what an agent may do, confined to its own node (Kubernetes' Node
authorizer with NodeRestriction). An agent's user name is its node's name; its group is
system:nodes. Its requests are decided here alone: no binding widens them.
"""

from __future__ import annotations

from master.rbac.book import Decision
from master.rbac.rules import READ_VERBS

AGENT_REPORTS = frozenset({"heartbeat", "probes", "runtime-events", "metrics"})  # soft state an agent posts
# What an agent reads besides Nodes: its node's service rules are made of Services and Endpoints (as
# kube-proxy's), and the autoscalers say which of its pods' response times to measure. Its network
# policies' rules are made of NetworkPolicies, Namespaces' labels (namespaceSelector) and every pod's
# labels and address, which it reads as peers (api/auth.py `peer_view`).
AGENT_READ = frozenset({"Service", "Endpoints", "HorizontalPodAutoscaler", "NetworkPolicy", "Namespace"})
# Node labels only admins (and operators) set, as Kubernetes' NodeRestriction keeps its own prefix
# from kubelets: pods placed by these labels never land on a host whose agent chose them.
RESTRICTED_LABELS = "node-restriction.berth.io/"


def node_decision(node: str, verb: str, kind: str | None, name: str | None, subresource: str | None,
                  pinned_node: str | None) -> Decision:
    """`pinned_node`: a list limited to the pods bound to that node (an agent lists its own only)."""
    allowed = _allowed(node, verb, kind, name, subresource, pinned_node)
    return Decision(allowed, "the node authorizer: " + ("its own node's" if allowed else
                                                          "an agent acts on its own node only"))


def _allowed(node: str, verb: str, kind: str | None, name: str | None, subresource: str | None,
             pinned_node: str | None) -> bool:
    if subresource in ("encryption", "eviction", "membership"):
        return False
    own_node = kind == "Node" and name == node
    if kind is None:
        return verb == "get"
    if kind == "Pod":
        # its own node's pods whole (`pinned_node`: probes, fencing); any other pod only as a network
        # policy's peer (api/auth.py `redact`)
        return subresource is None and verb in ("list", "watch")
    if kind in AGENT_READ:
        return verb in READ_VERBS
    if kind != "Node":
        return False
    if verb == "create" and subresource is None:
        return name in (None, node)  # registering itself
    if verb in READ_VERBS:
        return True  # every node's address and pod CIDR: its routes to their pods (agent/pod_network.py)
    # its own Node's status and reports; never its spec, labels or taints (which would let it
    # point the runtime at another host, or lift its own cordon)
    return own_node and (subresource == "status" or subresource in AGENT_REPORTS)
