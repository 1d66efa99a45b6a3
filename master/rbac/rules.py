"""RBAC's atoms: a rule, a request's attributes, and whether one grants the other.

Kubernetes' semantics (plugin/pkg/auth/authorizer/rbac, `RuleAllows`): a rule grants a request
when its apiGroups, resources, verbs and resourceNames each match. `*` matches any group, verb
or resource (subresources included); `*/scale` any resource's scale; an empty resourceNames any
name, otherwise the request must name one of them (a create, which names nothing yet, never
matches a rule with names). Pure: no store, no Flask, so the decision is table-tested.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

RBAC_GROUP = "rbac.authorization.k8s.io"
BERTH_GROUPS = ("", "berth")  # both name Berth's own kinds, as "" names Kubernetes' core group
ALL = "*"
READ_VERBS = frozenset({"get", "list", "watch"})
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
VERBS = READ_VERBS | WRITE_VERBS
ROLE_VERBS = frozenset({"bind", "escalate"})  # only meaningful on roles and cluster roles
# Berth's pseudo-subresource: a Secret's values (resources.shown). Reading a Secret shows its keys;
# the values need `get` on `secrets/values` too, so the built-in view and operator roles, which read
# secrets, never see them, and a custom role grants them by naming it (or `*`).
SECRET_VALUES = "values"


@dataclass(frozen=True)
class Rule:
    """One PolicyRule, with its lists as tuples (hashable, cheap to scan: they are short)."""

    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    resource_names: tuple[str, ...] = ()

    @classmethod
    def of(cls, rule: dict[str, Any]) -> Rule:
        """From a stored object's rule (its JSON shape)."""
        return cls(tuple(rule.get("apiGroups") or ()), tuple(rule.get("resources") or ()),
                   tuple(rule.get("verbs") or ()), tuple(rule.get("resourceNames") or ()))

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"apiGroups": list(self.api_groups), "resources": list(self.resources),
                               "verbs": list(self.verbs)}
        if self.resource_names:
            out["resourceNames"] = list(self.resource_names)
        return out


@dataclass(frozen=True)
class Request:
    """What is asked: `resource` is a plural (`pods`), `namespace` "" for cluster-scoped objects
    and None for a request across every namespace (a list or watch of all)."""

    verb: str
    resource: str
    api_group: str = ""
    subresource: str | None = None
    name: str | None = None
    namespace: str | None = None

    @property
    def full_resource(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource

    def describe(self) -> str:
        where = "cluster-wide" if not self.namespace else f"in namespace {self.namespace}"
        if self.namespace is None:
            where = "in every namespace"
        named = f" {self.name}" if self.name else ""
        return f"{self.verb} {self.full_resource}{named} {where}"


def group_matches(groups: Iterable[str], group: str) -> bool:
    return any(wanted in (ALL, group) or (group == "" and wanted == "berth") for wanted in groups)


def resource_matches(resources: Iterable[str], resource: str, subresource: str | None) -> bool:
    combined = f"{resource}/{subresource}" if subresource else resource
    for wanted in resources:
        if wanted in (ALL, combined):
            return True
        if subresource and wanted == f"*/{subresource}":
            return True
    return False


def verb_matches(verbs: Iterable[str], verb: str) -> bool:
    return any(v in (ALL, verb) for v in verbs)


def name_matches(names: tuple[str, ...], name: str | None) -> bool:
    return not names or (name is not None and name in names)


def allows(rule: Rule, request: Request) -> bool:
    return (verb_matches(rule.verbs, request.verb)
            and group_matches(rule.api_groups, request.api_group)
            and resource_matches(rule.resources, request.resource, request.subresource)
            and name_matches(rule.resource_names, request.name))


MAX_ATOMS = 100_000  # of one write's rules, checked one by one when no rule of the writer covers them whole


class TooWide(Exception):
    """A role's rules have more atoms than `covers` checks one by one (each group x resource x verb x
    name, up to 4 x 64 x 11 x 64 a rule): a write would hold a master's thread for minutes."""


def covers(owner: Iterable[Rule], rule: Rule, budget: list[int] | None = None) -> bool:
    """Whether `owner`'s rules grant everything `rule` grants (Kubernetes' validation.Covers): the
    rule is broken into atoms (one group, resource, verb, name) and each must be allowed by one of
    the owner's rules. A wildcard in `rule` is an atom of its own, covered only by a wildcard.
    First one owner rule covering the whole rule is looked for (a cluster-admin's `*` at once);
    only then atoms, charged to `budget` ([atoms left], shared by a write's rules): TooWide past it."""
    owned = list(owner)
    groups, resources = sorted(set(rule.api_groups)), sorted(set(rule.resources))
    verbs, names = sorted(set(rule.verbs)), sorted(set(rule.resource_names)) or [None]
    if any(_covers_whole(o, groups, resources, verbs, names) for o in owned):
        return True
    atoms = len(groups) * len(resources) * len(verbs) * len(names)
    left = budget if budget is not None else [MAX_ATOMS]
    left[0] -= atoms
    if left[0] < 0:
        raise TooWide(f"{atoms} combinations of groups, resources, verbs and names")
    for group in groups:
        for resource in resources:
            for verb in verbs:
                for name in names:
                    if not any(_owner_grants(o, group, resource, verb, name) for o in owned):
                        return False
    return True


def _covers_whole(owner: Rule, groups: list[str], resources: list[str], verbs: list[str],
                  names: list[str | None]) -> bool:
    if ALL not in owner.verbs and not set(verbs) <= set(owner.verbs):
        return False
    if not all(_owner_group(owner.api_groups, group) for group in groups):
        return False
    if not all(_owner_resource(owner.resources, resource) for resource in resources):
        return False
    return not owner.resource_names or all(n is not None and n in owner.resource_names for n in names)


def _owner_group(owned: tuple[str, ...], group: str) -> bool:
    return ALL in owned or group in owned or (group in BERTH_GROUPS and any(g in BERTH_GROUPS for g in owned))


def _owner_grants(owner: Rule, group: str, resource: str, verb: str, name: str | None) -> bool:
    if not (ALL in owner.verbs or verb in owner.verbs):
        return False
    if not _owner_group(owner.api_groups, group):
        return False
    if not _owner_resource(owner.resources, resource):
        return False
    return not owner.resource_names or (name is not None and name in owner.resource_names)


def _owner_resource(owned: tuple[str, ...], resource: str) -> bool:
    if ALL in owned or resource in owned:
        return True
    base, _, sub = resource.partition("/")
    return bool(sub) and base != ALL and f"*/{sub}" in owned
