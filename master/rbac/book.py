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


RoleKey = tuple[str, str, str, Any]  # kind, namespace, name, resourceVersion: one version of a role
EVERY_NAMESPACE = object()  # grants(): every grant, whatever its namespace


class RuleBook:
    """`parsed`: the rules of roles an earlier book read (by RoleKey): stored objects never change,
    so a rebuild after one binding's change parses none of the roles again."""

    def __init__(self, roles: Iterable[Obj] = (), cluster_roles: Iterable[Obj] = (),
                 role_bindings: Iterable[Obj] = (), cluster_role_bindings: Iterable[Obj] = (),
                 builtins: bool = True, parsed: dict[RoleKey, tuple[Rule, ...]] | None = None) -> None:
        earlier, self.parsed = parsed or {}, {}
        cluster = {o["metadata"]["name"]: self._rules(o, earlier) for o in cluster_roles}
        if builtins:  # a stored object cannot take a built-in's name (resources.py refuses it)
            cluster.update(BUILTIN_ROLES)
        local = {(o["metadata"]["namespace"], o["metadata"]["name"]): self._rules(o, earlier) for o in roles}
        self._cluster, self._local = cluster, local
        # subject -> namespace (None: a ClusterRoleBinding's) -> its grants there
        self._by_subject: dict[tuple[str, str], dict[str | None, list[Grant]]] = defaultdict(dict)
        bindings = [_builtin_binding(name, group, role) for name, (group, role) in BUILTIN_BINDINGS.items()]
        for binding in [*(bindings if builtins else []), *cluster_role_bindings, *role_bindings]:
            self._add(binding, cluster, local)

    def _rules(self, role: Obj, earlier: dict[RoleKey, tuple[Rule, ...]]) -> tuple[Rule, ...]:
        meta = role["metadata"]
        key = (role["kind"], meta.get("namespace", ""), meta["name"], meta.get("resourceVersion"))
        rules = earlier.get(key) if key[3] is not None else None
        if rules is None:
            rules = tuple(Rule.of(rule) for rule in role.get("rules") or ())
        self.parsed[key] = rules
        return rules

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
            self._by_subject[(subject["kind"], subject["name"])].setdefault(namespace, []).append(grant)

    def role_rules(self, kind: str, namespace: str, name: str) -> tuple[Rule, ...] | None:
        """A role's rules (a ClusterRole's whatever `namespace`); None if there is none."""
        return self._cluster.get(name) if kind == "ClusterRole" else self._local.get((namespace, name))

    def grants(self, user: str, groups: Iterable[str], namespace: Any = EVERY_NAMESPACE) -> Iterator[Grant]:
        """The subject's grants that hold in `namespace` ("" cluster-scoped, None every namespace at
        once: ClusterRoleBindings' alone), or all of them (EVERY_NAMESPACE)."""
        for subject in (("User", user), *(("Group", group) for group in groups)):
            held = self._by_subject.get(subject)
            if not held:
                continue
            if namespace is EVERY_NAMESPACE:
                for grants in held.values():
                    yield from grants
                continue
            yield from held.get(None, ())
            if namespace:
                yield from held.get(namespace, ())

    def rules_for(self, user: str, groups: Iterable[str], namespace: str | None) -> list[Rule]:
        """Every rule that holds for this subject in `namespace` ("" cluster-scoped, None everywhere)."""
        return [rule for grant in self.grants(user, groups, namespace) for rule in grant.rules]

    def decide(self, user: str, groups: Iterable[str], request: Request) -> Decision:
        for grant in self.grants(user, groups, request.namespace):
            if any(allows(rule, request) for rule in grant.rules):
                return Decision(True, f"allowed by {grant.binding} of {grant.role}")
        return Decision(False, f"no role bound to it grants {request.describe()}")

    def writes_somewhere(self, user: str, groups: Iterable[str]) -> bool:
        """Whether any of its rules, in any namespace, grants a write (an apply's first question,
        before its documents are read: whoever may write nothing never gets them parsed)."""
        return any(verb == "*" or verb in WRITE_VERBS for grant in self.grants(user, groups)
                   for rule in grant.rules for verb in rule.verbs)


def _builtin_binding(name: str, group: str, role: str) -> Obj:
    return {"kind": "ClusterRoleBinding", "metadata": {"name": name},
            "roleRef": {"kind": "ClusterRole", "name": role}, "subjects": [{"kind": "Group", "name": group}]}


BUILTIN_BOOK = RuleBook()  # outside a master (unit tests, tools): the built-ins alone
