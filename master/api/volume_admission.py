"""Who may give a pod a hostPath volume: it mounts the host's own files, so the pod is no longer
isolated from its host (Kubernetes leaves this to Pod Security's "privileged" level).

Admins may everywhere (whoever may create PersistentVolumes, which name a host's directories too:
of the built-in roles, cluster-admin); anyone else only in the namespaces the master setting
`host_path_namespaces` lists. Checked on every way a pod spec is written: a Pod, and the pod
template of a ReplicaSet or Deployment (whose controller makes pods without asking again).
"""

from __future__ import annotations

from berth.objects import Obj
from master.api.auth import Principal, decide
from master.errors import ApiError

TEMPLATED = ("ReplicaSet", "Deployment")


def pod_spec_of(obj: Obj) -> tuple[str, Obj] | None:
    """(the field path of the pod spec, the spec) of a Pod or a pod template's owner."""
    if obj["kind"] == "Pod":
        return "spec", obj["spec"]
    if obj["kind"] in TEMPLATED:
        return "spec.template.spec", obj["spec"]["template"]["spec"]
    return None


def check_host_paths(obj: Obj, principal: Principal, allowed_namespaces: list[str]) -> None:
    found = pod_spec_of(obj)
    if found is None or decide(principal, "create", "PersistentVolume").allowed:
        return
    namespace = obj["metadata"].get("namespace") or ""
    if namespace in allowed_namespaces:
        return
    field, spec = found
    for index, volume in enumerate(spec.get("volumes") or []):
        if volume.get("hostPath") is not None:
            raise ApiError(403, "Forbidden", f"{principal.describe()} may not give pods a "
                           f"hostPath volume in namespace {namespace!r}: it mounts the host's own files. "
                           "Admins may; others only in the namespaces the master setting "
                           "host_path_namespaces lists", f"{field}.volumes[{index}].hostPath")
