"""The `/scale` subresource of Deployments and ReplicaSets: `spec.replicas` alone, as Kubernetes serves it.

GET answers a Scale (`spec.replicas`, `status.replicas`, `status.selector` as a label selector
string); PUT and PATCH (a merge or JSON patch of that Scale) change only the replicas, through
the same Replace as any update, with the object's resourceVersion: a Scale sent back with a stale
resourceVersion is a 409, one without it is retried here on conflict. Rights are an update's.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request
from pydantic import ValidationError

from master.api.auth import authorize
from master.api.body import one_document
from master.api.context import principal
from master.api.openapi import as_described
from master.api.resources import (
    _current,
    _expected_rv,
    _kind,
    _ns,
    _retry_conflicts,
    _write,
    as_result,
    pinned_version,
    plural_part,
)
from master.errors import ApiError, bad_request
from master.objects.json_patch import json_patch
from master.objects.kinds import KINDS, SCALABLE, KindInfo, Scale
from master.objects.merge_patch import merge_patch
from master.objects.validate import error_from_validation
from master.store.commands import Replace
from master.store.state import Outcome
from master.workloads.scale import scale_of, with_replicas

bp = Blueprint("scale", __name__)
PATH = f"/api/v1/namespaces/<dns:namespace>/{plural_part(KINDS[k].plural for k in SCALABLE)}/<dns:name>/scale"


def _scalable(plural: str, namespace: str) -> KindInfo:
    info = _kind(plural, namespace)
    if info.kind not in SCALABLE:
        raise ApiError(404, "NotFound", f"{info.plural} have no scale subresource (only "
                       f"{', '.join(SCALABLE)})", "kind")
    return info


def _replicas(document: Any) -> tuple[int, int | None]:
    """The asked-for replicas and the resourceVersion the Scale was read at (None: not given)."""
    if not isinstance(document, dict):
        raise bad_request("the body must be a Scale object", "body")
    try:
        scale = Scale.model_validate(document, strict=True)
    except ValidationError as err:
        raise as_described(error_from_validation(err), document, "Scale") from None
    read_at = _expected_rv(scale.metadata.get("resourceVersion"), "metadata.resourceVersion")
    return scale.spec.replicas, read_at


@bp.get(PATH)
def get_scale(namespace: str, plural: str, name: str) -> Response:
    info = _scalable(plural, namespace)
    authorize(principal(), "get", info.kind, name, subresource="scale", namespace=namespace)
    return jsonify(scale_of(_current(info, _ns(info, namespace), name)))


@bp.put(PATH)
@bp.patch(PATH)
def write_scale(namespace: str, plural: str, name: str) -> Response:
    info = _scalable(plural, namespace)
    verb = "update" if request.method == "PUT" else "patch"
    authorize(principal(), verb, info.kind, name, subresource="scale", namespace=namespace)
    document = one_document()
    ns = _ns(info, namespace)
    pinned = None

    if request.method == "PUT":
        wanted, pinned = _replicas(document)
    elif not isinstance(document, dict) and request.mimetype != "application/json-patch+json":
        raise bad_request("a merge patch must be an object", "body")
    else:
        pinned = pinned_version(document)

    def write() -> Outcome:
        current = _current(info, ns, name)
        replicas = wanted if request.method == "PUT" else _patched(scale_of(current), document)
        obj = with_replicas(current, replicas)
        return _write(Replace(obj, pinned if pinned is not None else current["metadata"]["resourceVersion"]))

    return jsonify(scale_of(_retry_conflicts(write, pinned is not None).objects[0]))


def _patched(scale: dict[str, Any], patch: Any) -> int:
    patched = json_patch(scale, patch) if request.mimetype == "application/json-patch+json" \
        else merge_patch(scale, patch)
    try:
        return _replicas(patched)[0]
    except ApiError as err:
        raise as_result(err) from None
