"""`berth describe` for PersistentVolumes, PersistentVolumeClaims and StorageClasses, as kubectl's pages.

What a person reads a volume for: its class, whether and to whom it is bound, what it keeps on
release, where it is (its source and the nodes that reach it) and why it failed; a claim: its status,
the volume it got, what that gives, and the pods using it (kubectl's "Used By"); a class: whether it is
the default, its provisioner and parameters, its policies.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from berth.cli.columns import _get, _list, access_modes_text, default_class, storage_status, volume_claim
from berth.cli.describe import events_lines, header, section
from berth.objects import Obj

NONE = "<none>"
WIDTH = 22
SOURCES = {  # kubectl's words for each source
    "local": "LocalVolume (a persistent volume backed by local storage on a node)",
    "hostPath": "HostPath (bare host directory volume)",
    "nfs": "NFS (an NFS mount that lasts the lifetime of a pod)",
    "sshfs": "Sshfs (a directory of a storage node, mounted over SSH)",
}


def _finalizers(obj: Obj) -> str:
    given = _list(_get(obj, "metadata", "finalizers"))
    return f"[{', '.join(str(f) for f in given)}]" if given else "[]"


def _requirement(requirement: Any) -> str:
    key, operator = _get(requirement, "key"), _get(requirement, "operator")
    values = ",".join(str(v) for v in _list(_get(requirement, "values")))
    return f"{key} {operator.lower() if isinstance(operator, str) else operator} [{values}]" if values \
        else f"{key} {operator}"


def _affinity_lines(volume: Obj) -> list[str]:
    terms = _list(_get(volume, "spec", "nodeAffinity", "required", "nodeSelectorTerms"))
    if not terms:
        return [f"{'Node Affinity:'.ljust(WIDTH)}{NONE}"]
    lines = ["Node Affinity:", "  Required Terms:"]
    for number, term in enumerate(terms):
        expressions = [_requirement(r) for r in _list(_get(term, "matchExpressions"))]
        lines.append(f"    Term {number}:        {expressions[0] if expressions else NONE}")
        lines += [" " * 22 + text for text in expressions[1:]]
    return lines


def _source_lines(volume: Obj) -> list[str]:
    spec = volume.get("spec") or {}
    for key, words in SOURCES.items():
        source = spec.get(key)
        if isinstance(source, dict):
            lines = ["Source:", f"    Type:      {words}"]
            for field in ("server", "path", "type", "readOnly"):
                if field in source:
                    value = source[field]
                    shown = ("true" if value else "false") if isinstance(value, bool) else str(value)
                    lines.append(f"    {(field[:1].upper() + field[1:] + ':').ljust(11)}{shown}")
            return lines
    return ["Source:  <unknown>"]


def describe_volume(volume: Obj, events: list[Obj] | None, now: datetime,
                    events_error: str | None = None) -> str:
    spec, status = volume.get("spec") or {}, volume.get("status") or {}
    lines = header(volume, WIDTH)
    section(lines, "Finalizers", [_finalizers(volume)], WIDTH)
    section(lines, "StorageClass", [str(spec.get("storageClassName") or "")], WIDTH)
    section(lines, "Status", [storage_status(volume, now)], WIDTH)
    section(lines, "Claim", [volume_claim(volume, now)], WIDTH)
    section(lines, "Reclaim Policy", [str(spec.get("persistentVolumeReclaimPolicy") or "Retain")], WIDTH)
    section(lines, "Access Modes", [access_modes_text(spec.get("accessModes"))], WIDTH)
    section(lines, "VolumeMode", [str(spec.get("volumeMode") or "Filesystem")], WIDTH)
    section(lines, "Capacity", [str(_get(spec, "capacity", "storage") or "")], WIDTH)
    lines += _affinity_lines(volume)
    section(lines, "Message", [str(status.get("message") or "")], WIDTH)
    lines += _source_lines(volume)
    lines += events_lines(volume, events, now, events_error)
    return "\n".join(lines) + "\n"


def claim_users(claim: Obj, pods: list[Obj]) -> list[str]:
    """The names of the pods whose volumes name this claim (kubectl's "Used By")."""
    name = _get(claim, "metadata", "name")
    return sorted(str(_get(p, "metadata", "name")) for p in pods
                  if any(_get(v, "persistentVolumeClaim", "claimName") == name
                         for v in _list(_get(p, "spec", "volumes"))))


def describe_claim(claim: Obj, pods: list[Obj], events: list[Obj] | None, now: datetime,
                   events_error: str | None = None) -> str:
    """`pods`: those of the claim's namespace (the ones using it are listed)."""
    spec, status = claim.get("spec") or {}, claim.get("status") or {}
    lines = header(claim, WIDTH)
    section(lines, "Finalizers", [_finalizers(claim)], WIDTH)
    section(lines, "StorageClass", [str(spec.get("storageClassName") or "")], WIDTH)
    section(lines, "Status", [storage_status(claim, now)], WIDTH)
    section(lines, "Volume", [str(spec.get("volumeName") or "")], WIDTH)
    section(lines, "Requested", [str(_get(spec, "resources", "requests", "storage") or "")], WIDTH)
    section(lines, "Capacity", [str(_get(status, "capacity", "storage") or "")], WIDTH)
    section(lines, "Access Modes", [access_modes_text(status.get("accessModes"))], WIDTH)
    section(lines, "VolumeMode", [str(spec.get("volumeMode") or "Filesystem")], WIDTH)
    section(lines, "Used By", claim_users(claim, pods) or [NONE], WIDTH)
    lines += events_lines(claim, events, now, events_error)
    return "\n".join(lines) + "\n"


def describe_class(klass: Obj, events: list[Obj] | None, now: datetime,
                   events_error: str | None = None) -> str:
    lines = header(klass, WIDTH)
    section(lines, "IsDefaultClass", ["Yes" if default_class(klass) else "No"], WIDTH)
    section(lines, "Provisioner", [str(klass.get("provisioner") or "")], WIDTH)
    parameters = klass.get("parameters")
    section(lines, "Parameters", [",".join(f"{k}={v}" for k, v in parameters.items())
                                  if isinstance(parameters, dict) and parameters else NONE], WIDTH)
    section(lines, "AllowVolumeExpansion", ["<unset>"], WIDTH)
    section(lines, "MountOptions", [NONE], WIDTH)
    section(lines, "ReclaimPolicy", [str(klass.get("reclaimPolicy") or "Delete")], WIDTH)
    section(lines, "VolumeBindingMode", [str(klass.get("volumeBindingMode") or "Immediate")], WIDTH)
    lines += events_lines(klass, events, now, events_error)
    return "\n".join(lines) + "\n"
