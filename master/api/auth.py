"""Bearer tokens, and who may do what, decided in one place.

Tokens are kept only as SHA-256 digests, so the tokens file can be read by the
master without the master ever holding the clear tokens. A token names a user, with a `role`
(admin, operator, viewer, agent: each puts the user in a group bound to a built-in ClusterRole,
master/rbac/builtin.py) and/or `groups`. Decisions are RBAC's (master/rbac/): an agent's by the
node authorizer, everyone else's by the roles bound to the user and its groups, read from the
store through the master's cache (ApiContext.rbac); outside a master, by the built-ins alone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from flask import current_app, has_app_context

from berth.kinds import KINDS
from master.api import ui
from master.errors import ApiError
from master.rbac.book import BUILTIN_BOOK, Decision, RuleBook
from master.rbac.builtin import ADMIN_WRITTEN, AUTHENTICATED, NODES, RBAC_KINDS, ROLE_GROUPS
from master.rbac.node import AGENT_READ, AGENT_REPORTS, RESTRICTED_LABELS, node_decision
from master.rbac.rules import RBAC_GROUP, READ_VERBS, SECRET_VALUES, Request

__all__ = ["ADMIN_WRITTEN", "AGENT_READ", "AGENT_REPORTS", "READ_VERBS", "RESTRICTED_LABELS"]

ROLES = tuple(ROLE_GROUPS)
# answered to anyone, no token asked: the health checks, and the web page's files (they hold no data)
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/version", *ui.PATHS})
# The admins' subresource `encryption`, sealing every Secret again (api/encryption.py), reads and writes
# every value: of the built-in roles only cluster-admin's `*` grants it, and as its request names no
# namespace, only a ClusterRoleBinding naming `secrets/encryption` could grant it to anyone else.
MAX_GROUPS = 64


@dataclass(frozen=True)
class Principal:
    """An authenticated user: its name, the role its token entry gave (None: groups alone) and the
    groups it gave. `all_groups` adds the role's group and system:authenticated."""

    name: str
    role: str | None = None
    groups: tuple[str, ...] = field(default=())

    @property
    def all_groups(self) -> tuple[str, ...]:
        implied = (ROLE_GROUPS[self.role],) if self.role in ROLE_GROUPS else ()
        return (*implied, *self.groups, AUTHENTICATED)

    @property
    def is_node(self) -> bool:
        """An agent: decided by the node authorizer, its user name being its node's."""
        return self.role == "agent" or NODES in self.groups

    def describe(self) -> str:
        what = [self.role] if self.role else []
        if self.groups:
            what.append("groups " + ", ".join(self.groups))
        return f"{self.name} ({'; '.join(what)})"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenBook:
    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self._by_digest: dict[str, Principal] = {}
        for number, entry in enumerate(entries):
            name, role, sha = entry.get("name"), entry.get("role"), str(entry.get("sha256", ""))
            groups = entry.get("groups", [])
            good_groups = (isinstance(groups, list) and len(groups) <= MAX_GROUPS
                           and all(isinstance(g, str) and 0 < len(g) <= 253 for g in groups))
            if (not name or not good_groups or len(sha) != 64 or (role is None and not groups)
                    or (role is not None and role not in ROLES)):
                raise ValueError(f"tokens[{number}]: needs name, a sha256 digest, and a role in {ROLES} "
                                 "or a list of groups (or both)")
            self._by_digest[sha.lower()] = Principal(str(name), role, tuple(groups))

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
              subresource: str | None = None, node: str | None = None, namespace: str | None = None) -> None:
    """Raise 403 unless `principal` may `verb` objects of `kind` (named `name`) in `namespace`.

    Called before the request's body is parsed, so a role that may not write never makes the
    master read its documents. kind=None is for cluster-wide calls (cluster status, OpenAPI
    document: get, anyone's; a manifest of any kinds: apply, whoever may write something). On
    create, name=None asks whether some name could be allowed (the body is not read yet); the
    view asks again with the name. `namespace`: "" or None for a cluster-scoped kind, None for
    a request across every namespace (only ClusterRoleBindings grant those). `subresource`:
    "status" (written by the system: cluster-admin's, and an agent's for its own Node), an
    agent's report (AGENT_REPORTS), "log", "exec", "portforward", "scale", "eviction" (a pod's:
    whoever may delete the pod may evict it, as Kubernetes' roles grant both together),
    "encryption" (the admins', above). `node`: a list limited to the pods bound to that node (an
    agent reads its own node's pods only, as Kubernetes' NodeRestriction).
    """
    decision = decide(principal, verb, kind, name, subresource=subresource, node=node, namespace=namespace)
    if not decision.allowed:
        target = f"{kind} {name}" if name else (kind or "the cluster")
        if subresource:
            target += f" ({subresource})"
        if namespace:
            target += f" in namespace {namespace}"
        raise ApiError(403, "Forbidden", f"{principal.describe()} may not {verb} {target}: {decision.reason}",
                       None)


def decide(principal: Principal, verb: str, kind: str | None, name: str | None = None, *,
           subresource: str | None = None, node: str | None = None, namespace: str | None = None) -> Decision:
    """`authorize`'s answer without raising (a SelfSubjectAccessReview's), cached per master."""
    if principal.is_node:
        return node_decision(principal.name, verb, kind, name, subresource, node)
    scoped = namespace if kind is None or KINDS[kind].namespaced else ""
    key = (principal, verb, kind, name, subresource, scoped)
    cache = current_app.extensions["berth"].rbac if has_app_context() else None
    if cache is None:
        return decide_with(BUILTIN_BOOK, principal, verb, kind, name, subresource, scoped)
    return cache.decide(key, lambda book: decide_with(book, principal, verb, kind, name, subresource, scoped))


def current_book() -> RuleBook:
    """The roles and bindings this master has applied (outside a master: the built-ins)."""
    cache = current_app.extensions["berth"].rbac if has_app_context() else None
    return BUILTIN_BOOK if cache is None else cache.book()


def request_of(verb: str, kind: str, name: str | None, subresource: str | None,
               namespace: str | None) -> Request:
    """RBAC's attributes of a request on a kind: its plural and API group."""
    group = RBAC_GROUP if kind in RBAC_KINDS else ""
    return Request(verb, KINDS[kind].plural, group, subresource, name, namespace)


def decide_with(book: RuleBook, principal: Principal, verb: str, kind: str | None, name: str | None,
            subresource: str | None, namespace: str | None) -> Decision:
    user, groups = principal.name, principal.all_groups
    if kind is None:
        if verb == "get":
            return Decision(True, "every user reads the cluster's status and API document "
                                  "(Kubernetes' system:discovery)")
        if verb == "apply" and book.writes_somewhere(user, groups):
            return Decision(True, "a role bound to it writes (each document is then authorized)")
        return Decision(False, "no role bound to it writes anything")
    decision = book.decide(user, groups, request_of(verb, kind, name, subresource, namespace))
    if not decision.allowed and kind == "Pod" and subresource == "eviction" and verb == "create":
        deleting = book.decide(user, groups, request_of("delete", kind, name, None, namespace))
        if deleting.allowed:
            return Decision(True, f"evicting is deleting: {deleting.reason}")
    return decision


def authorize_object(principal: Principal, verb: str, obj: dict[str, Any]) -> None:
    """`authorize` once the object is read: its name and namespace, and for an agent no
    restricted label."""
    meta = obj["metadata"]
    authorize(principal, verb, obj["kind"], meta["name"], namespace=meta.get("namespace") or "")
    if principal.is_node:
        restricted = sorted(k for k in meta.get("labels") or {} if k.startswith(RESTRICTED_LABELS))
        if restricted:
            raise ApiError(403, "Forbidden", f"{principal.name} (agent) may not set the label "
                           f"{restricted[0]}: labels under {RESTRICTED_LABELS} are the admins'",
                           f"metadata.labels.{restricted[0]}")


def _allowed(principal: Principal, verb: str, kind: str | None, name: str | None,
             subresource: str | None, node: str | None) -> bool:
    """The decision alone, cluster-wide (the tests of the built-in roles ask this)."""
    return decide(principal, verb, kind, name, subresource=subresource, node=node).allowed


def sees_secret_values(principal: Principal, namespace: str) -> bool:
    """Whether a Secret's values in `namespace` are shown to it: `get` on the pseudo-subresource
    secrets/values (rules.SECRET_VALUES), which of the built-ins only cluster-admin grants."""
    return decide(principal, "get", "Secret", subresource=SECRET_VALUES, namespace=namespace).allowed


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


def redact(obj: dict[str, Any], principal: Principal, sees: bool | None = None) -> dict[str, Any]:
    """A Secret as this principal may see it: keys kept, values hidden unless it sees them (`sees`:
    already decided by the caller). An agent sees the pods of its own node whole, any other as a
    network policy's peer (`peer_view`)."""
    if (principal.is_node and obj.get("kind") == "Pod"
            and (obj.get("spec") or {}).get("nodeName") != principal.name):
        return peer_view(obj)
    if obj.get("kind") != "Secret":
        return obj
    if sees if sees is not None else sees_secret_values(principal, obj["metadata"].get("namespace", "")):
        return obj
    return {**obj, "data": dict.fromkeys(obj.get("data") or {})}
