"""Who holds which rules: the bindings indexed by subject, and the decision for one request.

A `RuleBook` is built from the RBAC objects (stored ones and the built-ins) and never changed:
the cache (cache.py) builds a new one when the store's RBAC objects change. Deciding is pure:
the subject's bindings are found by user and by each group, then their roles' rules are tried
against the request, as Kubernetes' RBAC authorizer does (deny by default, no deny rules).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from master.rbac.builtin import BUILTIN_BINDINGS, BUILTIN_ROLES
from master.rbac.rules import WRITE_VERBS, Request, Rule, allows

Obj = dict[str, Any]


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


@dataclass(frozen=True)
class Grant:
    """A binding's hold on a role for one subject: `namespace` None for a ClusterRoleBinding (every
    namespace and the cluster-scoped kinds), else the RoleBinding's namespace alone."""

    namespace: str | None
    binding: str  # "ClusterRoleBinding view", "RoleBinding a/devs"
    role: str  # "ClusterRole view", "Role a/pod-writer"
    rules: tuple[Rule, ...]


class RuleBook:
    def __init__(self, roles: Iterable[Obj] = (), cluster_roles: Iterable[Obj] = (),
                 role_bindings: Iterable[Obj] = (), cluster_role_bindings: Iterable[Obj] = (),
                 builtins: bool = True) -> None:
        cluster = {o["metadata"]["name"]: _rules(o) for o in cluster_roles}
        if builtins:  # a stored object cannot take a built-in's name (resources.py refuses it)
            cluster.update(BUILTIN_ROLES)
        local = {(o["metadata"]["namespace"], o["metadata"]["name"]): _rules(o) for o in roles}
        self._cluster, self._local = cluster, local
        self._by_subject: dict[tuple[str, str], list[Grant]] = defaultdict(list)
        bindings = [_builtin_binding(name, group, role) for name, (group, role) in BUILTIN_BINDINGS.items()]
        for binding in [*(bindings if builtins else []), *cluster_role_bindings, *role_bindings]:
            self._add(binding, cluster, local)

    def _add(self, binding: Obj, cluster: dict[str, tuple[Rule, ...]],
             local: dict[tuple[str, str], tuple[Rule, ...]]) -> None:
        meta, ref = binding["metadata"], binding["roleRef"]
        namespace = meta.get("namespace") if binding["kind"] == "RoleBinding" else None
        if ref["kind"] == "ClusterRole":
            rules, role = cluster.get(ref["name"]), f"ClusterRole {ref['name']}"
        else:
            rules, role = local.get((namespace or "", ref["name"])), f"Role {namespace}/{ref['name']}"
        if rules is None:
            return  # a binding to a role not (or no longer) there grants nothing, as in Kubernetes
        where = f"{namespace}/{meta['name']}" if namespace else meta["name"]
        grant = Grant(namespace, f"{binding['kind']} {where}", role, rules)
        for subject in binding.get("subjects") or ():
            self._by_subject[(subject["kind"], subject["name"])].append(grant)

    def role_rules(self, kind: str, namespace: str, name: str) -> tuple[Rule, ...] | None:
        """A role's rules (a ClusterRole's whatever `namespace`); None if there is none."""
        return self._cluster.get(name) if kind == "ClusterRole" else self._local.get((namespace, name))

    def grants(self, user: str, groups: Iterable[str]) -> Iterator[Grant]:
        yield from self._by_subject.get(("User", user), ())
        for group in groups:
            yield from self._by_subject.get(("Group", group), ())

    def rules_for(self, user: str, groups: Iterable[str], namespace: str | None) -> list[Rule]:
        """Every rule that holds for this subject in `namespace` ("" cluster-scoped, None everywhere)."""
        return [rule for grant in self.grants(user, groups) if _applies(grant, namespace)
                for rule in grant.rules]

    def decide(self, user: str, groups: Iterable[str], request: Request) -> Decision:
        for grant in self.grants(user, groups):
            if _applies(grant, request.namespace) and any(allows(rule, request) for rule in grant.rules):
                return Decision(True, f"allowed by {grant.binding} of {grant.role}")
        return Decision(False, f"no role bound to it grants {request.describe()}")

    def writes_somewhere(self, user: str, groups: Iterable[str]) -> bool:
        """Whether any of its rules, in any namespace, grants a write (an apply's first question,
        before its documents are read: whoever may write nothing never gets them parsed)."""
        return any(verb == "*" or verb in WRITE_VERBS for grant in self.grants(user, groups)
                   for rule in grant.rules for verb in rule.verbs)


def _applies(grant: Grant, namespace: str | None) -> bool:
    return grant.namespace is None or (namespace is not None and grant.namespace == namespace)


def _rules(role: Obj) -> tuple[Rule, ...]:
    return tuple(Rule.of(rule) for rule in role.get("rules") or ())


def _builtin_binding(name: str, group: str, role: str) -> Obj:
    return {"kind": "ClusterRoleBinding", "metadata": {"name": name},
            "roleRef": {"kind": "ClusterRole", "name": role}, "subjects": [{"kind": "Group", "name": group}]}


BUILTIN_BOOK = RuleBook()  # outside a master (unit tests, tools): the built-ins alone
