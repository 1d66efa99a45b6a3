"""The four roles of the tokens file as built-in ClusterRoles and ClusterRoleBindings.

They live in code, not in the store: every master has them from its first request, with no
bootstrap write racing between masters or waiting for a leader; nobody, an admin included, can
delete or narrow them and lock every admin out (writes to them are refused, resources.py); and an
upgrade changes them with the code that enforces them. `berth get clusterroles` lists them beside
the stored ones, labelled as Kubernetes labels its defaults.

A tokens file's `role:` puts its user in the role's group; each group is bound to its role here:
admin → system:masters → cluster-admin, operator → berth:operators → berth-operator, viewer →
berth:viewers → view. An agent (`role: agent`, group system:nodes) is decided by the node
authorizer (node.py) and by nothing else, as Kubernetes' Node authorizer, which no binding widens.
"""

from __future__ import annotations

from typing import Any

from berth.kinds import KINDS
from master.rbac.rules import ALL, BERTH_GROUPS, RBAC_GROUP, READ_VERBS, Rule

# Kinds only admins write. A Namespace's delete deletes everything in it, and its create is
# cluster-wide (an operator still makes one implicitly by creating an object in it, which
# gives no more than the object itself does). Endpoints are the endpoints controller's: an
# admin may write those of a Service without a selector (api/service_admission.py). PersistentVolumes
# and StorageClasses are cluster-wide storage (a volume names a host's directory; a class, where the
# provisioner makes and deletes them), as in Kubernetes' default roles; claims are anyone's who writes.
ADMIN_WRITTEN = frozenset({"Namespace", "Endpoints", "PersistentVolume", "StorageClass"})
RBAC_KINDS = frozenset({"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"})
# Subresources a user acts on (the system writes status and the agents' reports); scale is the
# scalable kinds' (master/objects/kinds.SCALABLE)
USER_SUBRESOURCES = ("pods/log", "pods/exec", "pods/portforward", "pods/eviction", "deployments/scale",
                     "replicasets/scale")
DEFAULTS_LABEL = "berth.io/bootstrapping"  # Kubernetes' kubernetes.io/bootstrapping: rbac-defaults
AUTHENTICATED = "system:authenticated"  # every user with a valid token is in it
NODES = "system:nodes"
ROLE_GROUPS = {"admin": "system:masters", "operator": "berth:operators", "viewer": "berth:viewers",
               "agent": NODES}

_GROUPS = list(BERTH_GROUPS)
_RBAC_PLURALS = sorted(KINDS[k].plural for k in RBAC_KINDS)
_READ = sorted(READ_VERBS)
_BERTH_PLURALS = sorted(k.plural for k in KINDS.values() if k.kind not in RBAC_KINDS)
_RBAC_READ = Rule((RBAC_GROUP,), tuple(_RBAC_PLURALS), tuple(_READ))

BUILTIN_ROLES: dict[str, tuple[Rule, ...]] = {
    "cluster-admin": (Rule((ALL,), (ALL,), (ALL,)),),
    # Kubernetes' edit, cluster-wide, on Berth's kinds: everything but the admins' kinds, the system's
    # subresources (status, reports, encryption) and RBAC's kinds, which it reads only
    "berth-operator": (
        Rule(tuple(_GROUPS), (*sorted(k.plural for k in KINDS.values()
                                      if k.kind not in ADMIN_WRITTEN | RBAC_KINDS), *USER_SUBRESOURCES),
             (ALL,)),
        Rule(tuple(_GROUPS), (*sorted(KINDS[k].plural for k in ADMIN_WRITTEN), "*/status"), tuple(_READ)),
        _RBAC_READ,
    ),
    "view": (
        Rule(tuple(_GROUPS), (*_BERTH_PLURALS, "*/status", "*/scale", "pods/log"), tuple(_READ)),
        _RBAC_READ,
    ),
}
BUILTIN_BINDINGS: dict[str, tuple[str, str]] = {  # binding name -> (group, cluster role)
    "cluster-admin": ("system:masters", "cluster-admin"),
    "berth-operator": ("berth:operators", "berth-operator"),
    "view": ("berth:viewers", "view"),
}
_META = {"labels": {DEFAULTS_LABEL: "rbac-defaults"}, "resourceVersion": 0}
_VERSION = f"{RBAC_GROUP}/v1"


def builtin_objects(kind: str) -> list[dict[str, Any]]:
    """The built-ins of `kind` as the API shows them (ClusterRole, ClusterRoleBinding; else none)."""
    if kind == "ClusterRole":
        return [{"apiVersion": _VERSION, "kind": kind, "metadata": {"name": name, **_META},
                 "rules": [rule.as_dict() for rule in rules]} for name, rules in BUILTIN_ROLES.items()]
    if kind == "ClusterRoleBinding":
        return [{"apiVersion": _VERSION, "kind": kind, "metadata": {"name": name, **_META},
                 "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
                 "subjects": [{"apiGroup": RBAC_GROUP, "kind": "Group", "name": group}]}
                for name, (group, role) in BUILTIN_BINDINGS.items()]
    return []


def is_builtin(kind: str, name: str) -> bool:
    return (kind == "ClusterRole" and name in BUILTIN_ROLES) or (
        kind == "ClusterRoleBinding" and name in BUILTIN_BINDINGS)
