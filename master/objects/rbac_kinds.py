"""The schemas of RBAC: Role, ClusterRole (rules) and RoleBinding, ClusterRoleBinding (a roleRef and
subjects), Kubernetes' rbac.authorization.k8s.io/v1 shapes, under that apiVersion or Berth's.

Kept apart from kinds.py as storage_kinds.py is: kinds.py makes the whole objects. What rules mean
is master/rbac/rules.py; who may write them (escalation, built-ins, immutable roleRef) is
master/api/rbac_admission.py. Every list is bounded and every value named in a rule is one Berth
knows, so a typo (`pod`, `deployments/scael`, `gett`) is refused rather than granting nothing.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from berth.kinds import KINDS
from master.objects.fields import DnsLabel, not_supported_yet
from master.rbac.builtin import RBAC_KINDS
from master.rbac.node import AGENT_REPORTS
from master.rbac.rules import ALL, BERTH_GROUPS, RBAC_GROUP, ROLE_VERBS, SECRET_VALUES, VERBS

RBAC_VERSIONS = Literal["berth/v1", "rbac.authorization.k8s.io/v1"]
API_GROUPS = (*BERTH_GROUPS, ALL, RBAC_GROUP)
RULE_VERBS = (*tuple(sorted(VERBS | ROLE_VERBS)), ALL)
# Each kind's subresources (a rule's `pods/log`); `status` is every kind's, `*/sub` any kind's
SUBRESOURCES: dict[str, frozenset[str]] = {
    "pods": frozenset({"log", "exec", "portforward", "eviction"}),
    "deployments": frozenset({"scale"}), "replicasets": frozenset({"scale"}),
    "nodes": AGENT_REPORTS, "secrets": frozenset({SECRET_VALUES, "encryption"}),
}
ALL_SUBRESOURCES = frozenset({"status"}).union(*SUBRESOURCES.values())
_RBAC_PLURALS = frozenset(KINDS[k].plural for k in RBAC_KINDS)
_PLURALS = frozenset(k.plural for k in KINDS.values())
MAX_ITEMS = 64  # of a rule's lists
SubjectName = Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=r"^[!-~]+$")]
ResourceName = Annotated[str, StringConstraints(min_length=1, max_length=127, pattern=r"^[*a-z0-9/-]+$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _resource_error(resource: str) -> str | None:
    """Why a rule's resource names nothing Berth has (None: it names something)."""
    if resource == ALL:
        return None
    base, slash, sub = resource.partition("/")
    if base != ALL and base not in _PLURALS:
        return f"unknown resource {base!r}: name a kind's plural ({', '.join(sorted(_PLURALS))}) or '*'"
    if not slash:
        return None
    if base == ALL:
        return None if sub in ALL_SUBRESOURCES else (
            f"unknown subresource {sub!r}: one of {', '.join(sorted(ALL_SUBRESOURCES))}")
    if sub == "status" or sub in SUBRESOURCES.get(base, ()):
        return None
    return f"{base} have no subresource {sub!r}"


class PolicyRule(_Strict):
    """Verbs on resources of API groups, optionally only of the objects named in resourceNames."""

    apiGroups: list[Literal["", "berth", "*", "rbac.authorization.k8s.io"]] = Field(
        min_length=1, max_length=4)
    resources: list[ResourceName] = Field(min_length=1, max_length=MAX_ITEMS)
    verbs: list[Literal[
        "get", "list", "watch", "create", "update", "patch", "delete", "deletecollection",
        "bind", "escalate", "*"]] = Field(min_length=1, max_length=MAX_ITEMS)
    resourceNames: list[DnsLabel] = Field(default_factory=list, max_length=MAX_ITEMS)
    nonResourceURLs: not_supported_yet(
        "nonResourceURLs: Berth's paths outside its resources (the cluster's status, the OpenAPI "
        "document) are every user's") = None

    @model_validator(mode="after")
    def _known(self) -> PolicyRule:
        for resource in self.resources:
            error = _resource_error(resource)
            if error:
                raise ValueError(f"resources: {error}")
            base = resource.partition("/")[0]
            if ALL in self.apiGroups or base == ALL:
                continue
            group = RBAC_GROUP if base in _RBAC_PLURALS else "berth"
            if group == RBAC_GROUP and RBAC_GROUP not in self.apiGroups:
                raise ValueError(f"resources: {base} are in apiGroup {RBAC_GROUP}, which apiGroups does not "
                                 "name")
            if group == "berth" and not set(BERTH_GROUPS) & set(self.apiGroups):
                raise ValueError(f"resources: {base} are Berth's (apiGroup \"\" or berth), which apiGroups "
                                 "does not name")
        return self


class RoleRef(_Strict):
    apiGroup: Literal["rbac.authorization.k8s.io"] = RBAC_GROUP
    kind: Literal["Role", "ClusterRole"]
    name: DnsLabel


class ClusterRoleRef(RoleRef):
    """A ClusterRoleBinding's: only a ClusterRole (a Role is one namespace's)."""

    kind: Literal["ClusterRole"]


class Subject(_Strict):
    """A user or a group of the tokens file. ServiceAccount is Kubernetes' and is refused (422) by
    the admission (rbac_admission.py): Berth has no service accounts yet."""

    kind: Literal["User", "Group", "ServiceAccount"]
    name: SubjectName
    apiGroup: Literal["", "rbac.authorization.k8s.io"] | None = None
    namespace: DnsLabel | None = None


class RoleFields(_Strict):
    rules: list[PolicyRule] = Field(default_factory=list, max_length=256)


class ClusterRoleFields(RoleFields):
    aggregationRule: not_supported_yet("aggregationRule: list a ClusterRole's rules in it") = None


class RoleBindingFields(_Strict):
    roleRef: RoleRef
    subjects: list[Subject] = Field(default_factory=list, max_length=1000)


class ClusterRoleBindingFields(RoleBindingFields):
    roleRef: ClusterRoleRef


class ResourceAttributes(_Strict):
    """A request as RBAC sees it: `resource` by any name kubectl takes (`pods`, `po`, `pod`); no
    namespace, for a namespaced resource, asks about every namespace."""

    verb: Literal["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection",
                  "bind", "escalate", "*"]
    resource: Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=r"^(\*|[A-Za-z0-9-]+)$")]
    group: Literal["", "berth", "rbac.authorization.k8s.io"] | None = None
    subresource: Annotated[str, StringConstraints(min_length=1, max_length=63,
                                                  pattern=r"^[a-z-]+$")] | None = None
    namespace: DnsLabel | Literal[""] | None = None
    name: DnsLabel | None = None


class SelfSubjectAccessReviewSpec(_Strict):
    resourceAttributes: ResourceAttributes


class SelfSubjectRulesReviewSpec(_Strict):
    namespace: DnsLabel | Literal[""] | None = None


class SelfSubjectRulesReview(_Strict):
    """Kubernetes' SelfSubjectRulesReview: what may I do in this namespace? (`can-i --list`)."""

    apiVersion: Literal["berth/v1", "authorization.k8s.io/v1"] = "authorization.k8s.io/v1"
    kind: Literal["SelfSubjectRulesReview"] = "SelfSubjectRulesReview"
    metadata: dict[str, str] = Field(default_factory=dict, max_length=0)
    spec: SelfSubjectRulesReviewSpec = Field(default_factory=SelfSubjectRulesReviewSpec)


class SelfSubjectAccessReview(_Strict):
    """Kubernetes' authorization.k8s.io/v1 SelfSubjectAccessReview: may I? (`berth auth can-i`)."""

    apiVersion: Literal["berth/v1", "authorization.k8s.io/v1"] = "authorization.k8s.io/v1"
    kind: Literal["SelfSubjectAccessReview"] = "SelfSubjectAccessReview"
    metadata: dict[str, str] = Field(default_factory=dict, max_length=0)
    spec: SelfSubjectAccessReviewSpec
