"""Bearer tokens and roles: who may do what, decided in one place.

Tokens are kept only as SHA-256 digests, so the tokens file can be read by the
master without the master ever holding the clear tokens.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from master.errors import ApiError

ROLES = ("admin", "operator", "viewer", "agent")
READ_VERBS = frozenset({"get", "list", "watch"})
OPEN_PATHS = frozenset({"/healthz", "/readyz"})  # answered to anyone: no token asked
AGENT_REPORTS = frozenset({"heartbeat", "probes", "runtime-events", "metrics"})  # soft state an agent posts
# Node labels only admins (and operators) set, as Kubernetes' NodeRestriction keeps its own prefix
# from kubelets: pods placed by these labels never land on a host whose agent chose them.
RESTRICTED_LABELS = "node-restriction.berth.io/"
# Kinds only admins write. A Namespace's delete deletes everything in it, and its create is
# cluster-wide (an operator still makes one implicitly by creating an object in it, which
# gives no more than the object itself does). Endpoints are the endpoints controller's: an
# admin may write those of a Service without a selector (api/service_admission.py). PersistentVolumes
# and StorageClasses are cluster-wide storage (a volume names a host's directory; a class, where the
# provisioner makes and deletes them), as in Kubernetes' default roles; claims are anyone's who writes.
ADMIN_WRITTEN = frozenset({"Namespace", "Endpoints", "PersistentVolume", "StorageClass"})
# What an agent reads besides Nodes: its node's service rules are made of Services and Endpoints (as
# kube-proxy's), and the autoscalers say which of its pods' response times to measure. Its network
# policies' rules are made of NetworkPolicies, Namespaces' labels (namespaceSelector) and every pod's
# labels and address, which it reads as peers (see `peer_view`).
AGENT_READ = frozenset({"Service", "Endpoints", "HorizontalPodAutoscaler", "NetworkPolicy", "Namespace"})
# Subresources only admins act on: `encryption`, sealing every Secret again (api/encryption.py), reads
# and writes every value.
ADMIN_SUBRESOURCES = frozenset({"encryption"})


@dataclass(frozen=True)
class Principal:
    name: str
    role: str

    @property
    def sees_secret_values(self) -> bool:
        return self.role == "admin"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenBook:
    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self._by_digest: dict[str, Principal] = {}
        for number, entry in enumerate(entries):
            name, role, sha = entry.get("name"), entry.get("role"), str(entry.get("sha256", ""))
            if not name or role not in ROLES or len(sha) != 64:
                raise ValueError(f"tokens[{number}]: needs name, role in {ROLES} and a sha256 digest")
            self._by_digest[sha.lower()] = Principal(str(name), str(role))

    @classmethod
    def load(cls, path: str | Path) -> TokenBook:
        data = yaml.safe_load(Path(path).read_text()) or {}
        return cls(list(data.get("tokens") or []))

    def authenticate(self, header: str | None) -> Principal:
        if not header or not header.startswith("Bearer "):
            raise ApiError(401, "Unauthorized", "a bearer token is required", "Authorization")
        principal = self._by_digest.get(digest(header.removeprefix("Bearer ").strip()))
        if principal is None:
            raise ApiError(401, "Unauthorized", "the token is not valid", "Authorization")
        return principal


def authorize(principal: Principal, verb: str, kind: str | None, name: str | None = None, *,
              subresource: str | None = None, node: str | None = None) -> None:
    """Raise 403 unless `principal` may `verb` objects of `kind` (named `name`).

    Called before the request's body is parsed, so a role that may not write never makes the
    master read its documents. kind=None is for cluster-wide calls (cluster status, OpenAPI
    document: get; a manifest of any kinds: apply). On create, name=None asks whether some
    name could be allowed (the body is not read yet); the view asks again with the name.
    `subresource`: "status" (written by the system: only admins, and an agent for its own
    Node), an agent's report (AGENT_REPORTS), "log", "exec", "eviction" (a pod's: whoever may
    delete the pod may evict it, as Kubernetes' RBAC usually grants both), "encryption" (admins'
    alone, ADMIN_SUBRESOURCES). `node`: a list limited to the
    pods bound to that node (an agent reads its own node's pods whole, as Kubernetes'
    NodeRestriction; any other pod only as a network policy's peer, `redact`).
    """
    if not _allowed(principal, verb, kind, name, subresource, node):
        target = f"{kind} {name}" if name else (kind or "the cluster")
        if subresource:
            target += f" ({subresource})"
        raise ApiError(403, "Forbidden", f"{principal.name} ({principal.role}) may not {verb} {target}",
                       None)


def authorize_object(principal: Principal, verb: str, obj: dict[str, Any]) -> None:
    """`authorize` once the object is read: its name, and for an agent no restricted label."""
    meta = obj["metadata"]
    authorize(principal, verb, obj["kind"], meta["name"])
    if principal.role == "agent":
        restricted = sorted(k for k in meta.get("labels") or {} if k.startswith(RESTRICTED_LABELS))
        if restricted:
            raise ApiError(403, "Forbidden", f"{principal.name} (agent) may not set the label "
                           f"{restricted[0]}: labels under {RESTRICTED_LABELS} are the admins'",
                           f"metadata.labels.{restricted[0]}")


def _allowed(principal: Principal, verb: str, kind: str | None, name: str | None,
             subresource: str | None, node: str | None) -> bool:
    role = principal.role
    if role == "admin":
        return True
    if subresource in ADMIN_SUBRESOURCES:
        return False
    if subresource == "eviction":
        return kind == "Pod" and _allowed(principal, "delete", "Pod", name, None, node)
    system_written = subresource in AGENT_REPORTS or (subresource == "status" and verb not in READ_VERBS)
    if role == "operator":
        return not system_written and (kind not in ADMIN_WRITTEN or verb in READ_VERBS)
    if role == "viewer":
        return verb in READ_VERBS
    if role != "agent":
        return False
    own_node = kind == "Node" and name == principal.name
    if kind is None:
        return verb == "get"
    if kind == "Pod":
        # its own node's pods whole (`node`: probes, fencing); any other pod only as `peer_view` shows it
        return verb in ("list", "watch")
    if kind in AGENT_READ:
        return verb in READ_VERBS
    if kind != "Node":
        return False
    if verb == "create" and subresource is None:
        return name in (None, principal.name)  # registering itself
    if verb in READ_VERBS:
        return True  # every node's address and pod CIDR: its routes to their pods (agent/pod_network.py)
    # its own Node's status and reports; never its spec, labels or taints (which would let it
    # point the runtime at another host, or lift its own cordon)
    return own_node and (subresource == "status" or subresource in AGENT_REPORTS)


def peer_view(pod: dict[str, Any]) -> dict[str, Any]:
    """A pod as an agent sees one of another node: what a network policy selects and allows by
    (namespace, name, uid, labels; its address and phase; its containers' port names and numbers, for
    an egress rule's named port), and nothing else. An agent's token is on a host an attacker may
    hold: the pod's command, env values, annotations, volumes and images stay out of its reach."""
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    ports = [{"ports": [{k: p[k] for k in ("name", "containerPort", "protocol") if k in p}
                        for p in c.get("ports") or []]} for c in spec.get("containers") or []]
    return {"apiVersion": pod.get("apiVersion"), "kind": "Pod",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "labels", "resourceVersion",
                                               "creationTimestamp", "deletionTimestamp") if k in meta},
            "spec": {"nodeName": spec.get("nodeName"), "containers": ports},
            "status": {k: status[k] for k in ("podIP", "phase") if k in status}}


def redact(obj: dict[str, Any], principal: Principal) -> dict[str, Any]:
    """A Secret as this principal may see it: keys kept, values hidden unless admin. An agent sees
    the pods of its own node whole, any other as a peer (`peer_view`)."""
    if (principal.role == "agent" and obj.get("kind") == "Pod"
            and (obj.get("spec") or {}).get("nodeName") != principal.name):
        return peer_view(obj)
    if obj.get("kind") != "Secret" or principal.sees_secret_values:
        return obj
    return {**obj, "data": dict.fromkeys(obj.get("data") or {})}
