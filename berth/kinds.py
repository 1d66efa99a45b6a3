"""The kinds Berth stores, by the names kubectl users type: the one table every side reads.

The master adds its schemas to these (master/objects/kinds.py); the CLI resolves what a
user types (`po`, `deploy`, `svc`...) and builds paths from them, without the master's code.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    short: tuple[str, ...]
    namespaced: bool

    @property
    def singular(self) -> str:
        return self.kind.lower()

    def names(self) -> tuple[str, ...]:
        return (self.plural, self.singular, *self.short)


KINDS: dict[str, Kind] = {k.kind: k for k in (
    Kind("Namespace", "namespaces", ("ns",), False),
    Kind("Node", "nodes", ("no",), False),
    Kind("Pod", "pods", ("po",), True),
    Kind("Deployment", "deployments", ("deploy",), True),
    Kind("ReplicaSet", "replicasets", ("rs",), True),
    Kind("PodDisruptionBudget", "poddisruptionbudgets", ("pdb",), True),
    Kind("HorizontalPodAutoscaler", "horizontalpodautoscalers", ("hpa",), True),
    Kind("Service", "services", ("svc",), True),
    Kind("Endpoints", "endpoints", ("ep",), True),
    Kind("NetworkPolicy", "networkpolicies", ("netpol",), True),
    Kind("ConfigMap", "configmaps", ("cm",), True),
    Kind("Secret", "secrets", (), True),
    Kind("PersistentVolume", "persistentvolumes", ("pv",), False),
    Kind("PersistentVolumeClaim", "persistentvolumeclaims", ("pvc",), True),
    Kind("StorageClass", "storageclasses", ("sc",), False),
    Kind("Event", "events", ("ev",), True),
    Kind("Role", "roles", (), True),
    Kind("RoleBinding", "rolebindings", (), True),
    Kind("ClusterRole", "clusterroles", (), False),
    Kind("ClusterRoleBinding", "clusterrolebindings", (), False),
)}
_BY_ANY_NAME: dict[str, Kind] = {name: k for k in KINDS.values() for name in (*k.names(), k.kind.lower())}


def lookup_kind(name: str) -> Kind | None:
    """Kind by kind, plural, singular or short name, as kubectl accepts them."""
    return KINDS.get(name) or _BY_ANY_NAME.get(name.lower())
