"""Pod Security admission: a namespace's level, from its label `berth.io/enforce`, refuses pods
that break it (Kubernetes' Pod Security Standards, enforced as its `pod-security.kubernetes.io/
enforce` label does; a namespace without the label is `privileged`, Kubernetes' default).

Checked on every way a pod spec is written, as hostPath admission is (volume_admission.py): a Pod,
and a ReplicaSet's or Deployment's template. A namespace's level applies to what is written after
the label is set; pods already there stay. The checks read the spec as written, as Kubernetes'
do: `restricted` wants `capabilities.drop` to name ALL (Berth's default drops only NET_RAW,
runtime/security.py). Berth has no seccompProfile field: the engines' default profile,
`RuntimeDefault`, always applies.
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.objects import Obj
from master.api.auth import Principal
from master.api.volume_admission import pod_spec_of
from master.errors import ApiError

LABEL = "berth.io/enforce"
LEVELS = ("privileged", "baseline", "restricted")
# what baseline lets a container add (Kubernetes' Pod Security Standards)
BASELINE_CAPABILITIES = frozenset({"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL",
                                   "MKNOD", "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID",
                                   "SYS_CHROOT"})
RESTRICTED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
RESTRICTED_VOLUMES = frozenset({"configMap", "emptyDir", "secret", "persistentVolumeClaim"})


def level_of(namespace: Obj | None) -> str:
    labels = ((namespace or {}).get("metadata") or {}).get("labels") or {}
    level = labels.get(LABEL, "privileged")
    return level if level in LEVELS else "restricted"  # a level Berth does not know: the strictest


def _containers(spec: Obj) -> Iterator[tuple[str, Obj]]:
    for field in ("initContainers", "containers"):
        for index, container in enumerate(spec.get(field) or []):
            yield f"{field}[{index}]", container


def baseline_problems(spec: Obj) -> Iterator[tuple[str, str]]:
    """(field, what is wrong) of a pod spec against `baseline`."""
    for index, volume in enumerate(spec.get("volumes") or []):
        if volume.get("hostPath") is not None:
            yield f"volumes[{index}].hostPath", "hostPath volumes are not allowed"
    for where, container in _containers(spec):
        context = container.get("securityContext") or {}
        if context.get("privileged"):
            yield f"{where}.securityContext.privileged", "privileged containers are not allowed"
        added = set(((context.get("capabilities") or {}).get("add")) or []) - BASELINE_CAPABILITIES
        if added:
            yield (f"{where}.securityContext.capabilities.add",
                   f"adding {', '.join(sorted(added))} is not allowed")
        for number, port in enumerate(container.get("ports") or []):
            if port.get("hostPort"):
                yield f"{where}.ports[{number}].hostPort", "hostPort is not allowed"


def restricted_problems(spec: Obj) -> Iterator[tuple[str, str]]:
    yield from baseline_problems(spec)
    for index, volume in enumerate(spec.get("volumes") or []):
        source = next((k for k in volume if k != "name"), "")
        if source not in RESTRICTED_VOLUMES and source != "hostPath":  # hostPath: said above
            yield f"volumes[{index}].{source}", f"{source} volumes are not allowed"
    pod_context = spec.get("securityContext") or {}
    for where, container in _containers(spec):
        context = container.get("securityContext") or {}
        if context.get("allowPrivilegeEscalation") is not False:
            yield (f"{where}.securityContext.allowPrivilegeEscalation",
                   "allowPrivilegeEscalation must be false")
        non_root = context.get("runAsNonRoot")
        non_root = pod_context.get("runAsNonRoot") if non_root is None else non_root
        if non_root is not True:
            yield f"{where}.securityContext.runAsNonRoot", "runAsNonRoot must be true (here or in the pod's)"
        for owner, given in ((f"{where}.securityContext", context), ("securityContext", pod_context)):
            if given.get("runAsUser") == 0:
                yield f"{owner}.runAsUser", "runAsUser must not be 0"
        capabilities = context.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            yield f"{where}.securityContext.capabilities.drop", "capabilities.drop must include ALL"
        added = set(capabilities.get("add") or []) - RESTRICTED_CAPABILITIES
        if added:
            yield (f"{where}.securityContext.capabilities.add",
                   f"adding {', '.join(sorted(added))} is not allowed (only NET_BIND_SERVICE)")


def check_pod_security(obj: Obj, namespace: Obj | None, principal: Principal) -> None:
    """403 naming the first field that breaks the namespace's level."""
    found = pod_spec_of(obj)
    if found is None:
        return
    level = level_of(namespace)
    if level == "privileged":
        return
    prefix, spec = found
    problems = restricted_problems(spec) if level == "restricted" else baseline_problems(spec)
    for field, problem in problems:
        name = obj["metadata"].get("namespace") or ""
        raise ApiError(403, "Forbidden", f"{principal.name} may not write this {obj['kind']}: it violates "
                       f"PodSecurity \"{level}\" of namespace {name!r} ({LABEL}): {problem}",
                       f"{prefix}.{field}")
