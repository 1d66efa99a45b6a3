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


def covers(owner: Iterable[Rule], rule: Rule) -> bool:
    """Whether `owner`'s rules grant everything `rule` grants (Kubernetes' validation.Covers): the
    rule is broken into atoms (one group, resource, verb, name) and each must be allowed by one of
    the owner's rules. A wildcard in `rule` is an atom of its own, covered only by a wildcard."""
    owned = list(owner)
    names: tuple[str | None, ...] = rule.resource_names or (None,)
    for group in rule.api_groups:
        for resource in rule.resources:
            for verb in rule.verbs:
                for name in names:
                    if not any(_owner_grants(o, group, resource, verb, name) for o in owned):
                        return False
    return True


def _owner_grants(owner: Rule, group: str, resource: str, verb: str, name: str | None) -> bool:
    if not (ALL in owner.verbs or verb in owner.verbs):
        return False
    if not (ALL in owner.api_groups or group in owner.api_groups
            or (group in BERTH_GROUPS and any(g in BERTH_GROUPS for g in owner.api_groups))):
        return False
    if not _owner_resource(owner.resources, resource):
        return False
    return not owner.resource_names or (name is not None and name in owner.resource_names)


def _owner_resource(owned: tuple[str, ...], resource: str) -> bool:
    if ALL in owned or resource in owned:
        return True
    base, _, sub = resource.partition("/")
    return bool(sub) and base != ALL and f"*/{sub}" in owned
