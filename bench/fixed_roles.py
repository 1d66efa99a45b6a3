"""The four fixed roles as Berth decided them before RBAC (master/api/auth.py until issue 17 item 3):
the reference the built-in ClusterRoles are tested equal to (tests/test_rbac.py), and the baseline
`bench.authorizer` measures the RBAC decision against. Not used by the masters.
"""

from __future__ import annotations

READ_VERBS = frozenset({"get", "list", "watch"})
AGENT_REPORTS = frozenset({"heartbeat", "probes", "runtime-events", "metrics"})
ADMIN_WRITTEN = frozenset({"Namespace", "Endpoints", "PersistentVolume", "StorageClass"})
AGENT_READ = frozenset({"Service", "Endpoints", "HorizontalPodAutoscaler", "NetworkPolicy", "Namespace"})
ADMIN_SUBRESOURCES = frozenset({"encryption"})


def fixed_role_allows(role: str, user: str, verb: str, kind: str | None, name: str | None,
                      subresource: str | None, node: str | None) -> bool:
    if role == "admin":
        return True
    if subresource in ADMIN_SUBRESOURCES:
        return False
    if subresource == "eviction":
        return kind == "Pod" and fixed_role_allows(role, user, "delete", "Pod", name, None, node)
    system_written = subresource in AGENT_REPORTS or (subresource == "status" and verb not in READ_VERBS)
    if role == "operator":
        return not system_written and (kind not in ADMIN_WRITTEN or verb in READ_VERBS)
    if role == "viewer":
        return verb in READ_VERBS
    if role != "agent":
        return False
    own_node = kind == "Node" and name == user
    if kind is None:
        return verb == "get"
    if kind == "Pod":  # every pod, another node's as a network policy's peer (auth.peer_view)
        return subresource is None and verb in ("list", "watch")
    if kind in AGENT_READ:
        return verb in READ_VERBS
    if kind != "Node":
        return False
    if verb == "create" and subresource is None:
        return name in (None, user)  # registering itself
    if verb in READ_VERBS:
        return True  # every node's address and pod CIDR: its routes to their pods (agent/pod_network.py)
    # its own Node's status and reports; never its spec, labels or taints (which would let it
    # point the runtime at another host, or lift its own cordon)
    return own_node and (subresource == "status" or subresource in AGENT_REPORTS)

