"""Kubernetes-style REST for every kind: list, get, create, replace, merge-patch, delete, apply."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from flask import Blueprint, Response, jsonify, request
from werkzeug.routing import BaseConverter

from master.api.auth import Principal, authorize, authorize_object, redact, sees_secret_values
from master.api.body import documents, one_document
from master.api.context import context, principal
from master.api.openapi import as_described
from master.api.pod_security import check_pod_security
from master.api.rbac_admission import admit_rbac, check_not_builtin
from master.api.service_admission import admitted_service, check_endpoints_written
from master.api.volume_admission import check_host_paths, pod_spec_of
from master.errors import ApiError, bad_request, not_found
from master.json_codec import compact
from master.objects.fields import DNS1123_LABEL
from master.objects.json_patch import json_patch
from master.objects.kinds import BY_PLURAL, KindInfo
from master.objects.merge_patch import merge_patch
from master.objects.selectors import parse_field_selector, parse_selector
from master.objects.services import Picks, lost_race
from master.objects.tolerations import check_room_for_defaults, with_default_tolerations
from master.objects.updates import check_pod_cidr_sent
from master.objects.validate import DEFAULT_NAMESPACE, kind_of, validate_object, validate_status
from master.rbac.builtin import RBAC_KINDS, builtin_objects
from master.store.commands import (
    Batch,
    Command,
    Create,
    Delete,
    Op,
    Put,
    ReleaseDependents,
    Replace,
    UpdateStatus,
    deletion,
)
from master.store.state import Outcome

bp = Blueprint("resources", __name__)
_PATCH_RETRIES = 5
LIST_SLICE = 50  # objects encoded in one go by a list


def plural_part(plurals: Iterable[str]) -> str:
    """A route's part that matches these plurals alone. A path that names no kind of its scope is
    then no route at all: werkzeug answers 404, and 405 with `Allow` where the path is served for
    other methods (`POST /api/v1/pods` lists, it never creates), instead of a view's 404."""
    return f"<any({','.join(sorted(plurals))}):plural>"


class DnsLabelConverter(BaseConverter):
    """A route's name or namespace: a DNS label, as every object's (ObjectMeta), so a path naming
    anything else names nothing (404) rather than an empty list (registered by app.py as `dns`)."""

    regex = r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?"


ALL = f"/api/v1/{plural_part(BY_PLURAL)}"  # lists: every kind's, namespaced ones across namespaces
CLUSTER = f"/api/v1/{plural_part(p for p, i in BY_PLURAL.items() if not i.namespaced)}"
NAMESPACED = (f"/api/v1/namespaces/<dns:namespace>/"
              f"{plural_part(p for p, i in BY_PLURAL.items() if i.namespaced)}")


# --- helpers ---------------------------------------------------------------------------

def _kind(plural: str, namespace: str | None, across_namespaces: bool = False) -> KindInfo:
    info = BY_PLURAL.get(plural)
    if info is None:
        raise ApiError(404, "NotFound", f"no resource type {plural!r}", "kind")
    if namespace is not None and not info.namespaced:
        raise ApiError(404, "NotFound", f"{info.plural} are cluster-scoped: no namespace path", "kind")
    if namespace is None and info.namespaced and not across_namespaces:
        raise ApiError(404, "NotFound", f"{info.plural} live in a namespace: use "
                       f"/api/v1/namespaces/NS/{info.plural}", "metadata.namespace")
    return info


def _consistent_read() -> None:
    if request.args.get("consistent", "").lower() in ("1", "true", "yes"):
        context().store.barrier()


def _write(command: Command) -> Outcome:
    """Through Raft; or with `?dryRun=All` (kubectl's --dry-run=server), what it would do, computed
    by the very code of the write on this master's state, and nothing kept."""
    dry = request.args.get("dryRun")
    if dry is None:
        return context().store.propose(command)
    if dry != "All":
        raise bad_request("dryRun must be All", "dryRun")
    return context().store.dry_run(command)


def shown(obj: dict[str, Any], who: Principal) -> dict[str, Any]:
    """An object as `who` may see it: a Secret's values opened for whoever sees them (SealError,
    a 500 naming the key id, if one does not open), hidden from the others, who need no key; a pod
    as an agent may see it (auth.redact)."""
    if obj.get("kind") != "Secret":
        return redact(obj, who)
    sees = sees_secret_values(who, obj["metadata"].get("namespace", ""))
    return redact(context().store.opened(obj) if sees else obj, who, sees)


def _show(obj: dict[str, Any]) -> dict[str, Any]:
    return shown(obj, principal())


def _current(info: KindInfo, namespace: str, name: str) -> dict[str, Any]:
    obj = context().store.get(info.kind, namespace, name)
    if obj is None:
        raise not_found(info.kind, namespace, name)
    return obj


def _ns(info: KindInfo, namespace: str | None) -> str:
    return (namespace or DEFAULT_NAMESPACE) if info.namespaced else ""


def _check_identity(obj: dict[str, Any], namespace: str, name: str | None) -> None:
    """The body names what the path names: a rule across the two no schema states (422)."""
    meta = obj["metadata"]
    if name is not None and meta["name"] != name:
        raise ApiError(422, "Invalid", f"metadata.name {meta['name']!r} does not match the path ({name!r})",
                       "metadata.name")
    if namespace and meta.get("namespace") not in (None, namespace):
        raise ApiError(422, "Invalid", f"metadata.namespace {meta['namespace']!r} does not match the path "
                       f"({namespace!r})", "metadata.namespace")


def _checked_object(info: KindInfo, document: Any, namespace: str, name: str | None,
                    picks: Picks | None = None) -> dict[str, Any]:
    """`picks`: what this request gave Services already (an apply's earlier documents)."""
    if isinstance(document, dict) and isinstance(document.get("metadata"), dict) and namespace:
        document = {**document, "metadata": {"namespace": namespace, **document["metadata"]}}
    try:
        obj = validate_object(document, info)
    except ApiError as err:
        raise as_described(err, document, f"{info.kind}Write") from None
    if info.kind == "Pod":  # admission, on every way a pod is written (create, replace, patch, apply)
        check_room_for_defaults(obj["spec"], "spec.tolerations")
        obj = {**obj, "spec": with_default_tolerations(obj["spec"], context().default_eviction_seconds)}
    if info.kind in ("ReplicaSet", "Deployment"):  # their pods get the same tolerations
        check_room_for_defaults(obj["spec"]["template"]["spec"], "spec.template.spec.tolerations")
    _check_identity(obj, namespace, name)
    check_host_paths(obj, principal(), context().host_path_namespaces)
    if pod_spec_of(obj) is not None:  # the namespace's Pod Security level
        check_pod_security(obj, context().store.get("Namespace", "", obj["metadata"].get("namespace") or ""),
                           principal())
    if info.kind == "Node":
        check_pod_cidr_sent(obj, context().store.get("Node", "", obj["metadata"]["name"]))
    if info.kind == "Service":
        obj = admitted_service(obj, context(), picks or Picks())
    if info.kind == "Endpoints":
        check_endpoints_written(obj, context())
    if info.kind in RBAC_KINDS:  # escalation, built-ins, roleRef
        admit_rbac(obj, principal(), context().store.get(info.kind, namespace, obj["metadata"]["name"]))
    _check_size(obj, "")
    return obj


def _check_size(part: dict[str, Any], field: str) -> None:
    """Every master keeps every object, and each version in its journal and watch window: a
    900 KB ConfigMap updated 100 times once added 280 MiB to a master."""
    limit = context().max_object_bytes
    size = len(compact(part))
    if size > limit:
        what = f"{field} of the object" if field else "the object"
        raise ApiError(413, "RequestEntityTooLarge", f"{what} is {size} bytes as JSON; at most {limit} "
                       "are stored", field or "body")


def _expected_rv(value: Any, field: str) -> int | None:
    """A resourceVersion as sent: an integer, or its decimal digits (Kubernetes' clients send a string)."""
    if value is None or value == "":
        return None
    if isinstance(value, float) and value.is_integer():  # 5.0 is an integer to JSON Schema
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        return int(value)
    raise bad_request("resourceVersion must be a whole number", field)


def pinned_version(document: Any) -> int | None:
    """The resourceVersion a body's metadata pins (None: none), whatever else the body holds."""
    meta = document.get("metadata") if isinstance(document, dict) else None
    if meta is not None and not isinstance(meta, dict):
        raise bad_request("metadata must be an object", "metadata")
    return _expected_rv((meta or {}).get("resourceVersion"), "metadata.resourceVersion")


def as_result(err: ApiError) -> ApiError:
    """A patch's result refused: the patch fit its schema (any object, any list of operations), so
    the result's fault is a 422, whatever field it names (as Kubernetes answers an invalid patch)."""
    if err.status == 400:
        err.status = 422
    return err


def _retry_conflicts(write: Callable[[], Outcome], pinned: bool, picks: Picks | None = None) -> Outcome:
    """Read-modify-write, retried here on 409 unless the client pinned a resourceVersion (a create
    has none to read again: pinned). A Service's address or node port that another master gave
    meanwhile (the store's 409 names it) is given again, whatever was pinned: nobody asked for it,
    and `picks` starts further up the range."""
    for attempt in range(_PATCH_RETRIES):
        try:
            return write()
        except ApiError as err:
            again = picks is not None and lost_race(err)
            if err.status != 409 or (pinned and not again) or attempt == _PATCH_RETRIES - 1:
                raise
            if picks is not None:
                picks.retry()
            context().store.barrier()  # a follower's copy may lag: catch up before reading again
    raise AssertionError("unreachable")  # pragma: no cover


# --- collection ------------------------------------------------------------------------

@bp.get(ALL)
@bp.get(NAMESPACED)
def list_objects(plural: str, namespace: str | None = None) -> Response:
    info = _kind(plural, namespace, across_namespaces=True)
    matches = parse_selector(request.args.get("labelSelector"))
    fields, pinned = parse_field_selector(request.args.get("fieldSelector"))
    authorize(principal(), "list", info.kind, node=pinned.get("spec.nodeName"), namespace=namespace)
    _consistent_read()
    # under the apply lock only what the indexes find (namespace, key=value labels, node);
    # stored objects are never changed, so the full selectors run after the lock is released
    listed, revision = context().store.read(lambda state: state.select(
        info.kind, namespace or pinned.get("metadata.namespace"), labels=matches.required,
        node=pinned.get("spec.nodeName")))
    listed += builtin_objects(info.kind)
    items = [o for o in listed if matches(o["metadata"].get("labels", {})) and fields(o)]
    items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
    head = compact({"apiVersion": "berth/v1", "kind": f"{info.kind}List",
                    "metadata": {"resourceVersion": revision}})[:-1]
    who = principal()
    sees: dict[str, bool] = {}  # by namespace: whether `who` sees the values of its Secrets
    if info.kind == "Secret":  # opened before the answer starts: a value that does not is a 500
        sees = {ns: sees_secret_values(who, ns) for ns in {o["metadata"]["namespace"] for o in items}}
        items = [context().store.opened(o) if sees[o["metadata"]["namespace"]] else o for o in items]

    def body() -> Iterator[bytes]:
        """Encoded a slice at a time: an encoder holds the GIL for as long as it runs, and one
        json.dumps over 10,000 pods (0.6 s) held up every other thread of the master, Raft's too."""
        yield head + b',"items":['
        for start in range(0, len(items), LIST_SLICE):
            encoded = b",".join(compact(redact(o, who, sees.get(o["metadata"].get("namespace", ""))))
                                for o in items[start:start + LIST_SLICE])
            yield (b"," if start else b"") + encoded
        yield b"]}\n"

    return Response(body(), mimetype="application/json")


@bp.post(CLUSTER)
@bp.post(NAMESPACED)
def create_object(plural: str, namespace: str | None = None) -> tuple[Response, int]:
    info = _kind(plural, namespace)
    authorize(principal(), "create", info.kind, namespace=_ns(info, namespace))
    document, picks, ctx = one_document(), Picks(), context()

    def write() -> Outcome:
        obj = _checked_object(info, document, _ns(info, namespace), None, picks)
        authorize_object(principal(), "create", obj)
        return _write(Create(obj, ctx.uid(), ctx.now()))

    return jsonify(_show(_retry_conflicts(write, True, picks).objects[0])), 201


# --- one object ------------------------------------------------------------------------

@bp.get(CLUSTER + "/<dns:name>")
@bp.get(NAMESPACED + "/<dns:name>")
@bp.get(CLUSTER + "/<dns:name>/status")
@bp.get(NAMESPACED + "/<dns:name>/status")
def get_object(plural: str, name: str, namespace: str | None = None) -> Response:
    info = _kind(plural, namespace)
    ns = _ns(info, namespace)
    authorize(principal(), "get", info.kind, name, namespace=ns)
    _consistent_read()
    obj = context().store.stored(info.kind, ns, name)  # opened by _show, for whoever sees values
    if obj is None:
        obj = next((o for o in builtin_objects(info.kind) if o["metadata"]["name"] == name), None)
    if obj is None:
        raise not_found(info.kind, ns, name)
    return jsonify(_show(obj))


@bp.put(CLUSTER + "/<dns:name>")
@bp.put(NAMESPACED + "/<dns:name>")
def replace_object(plural: str, name: str, namespace: str | None = None) -> Response:
    info = _kind(plural, namespace)
    authorize(principal(), "update", info.kind, name, namespace=_ns(info, namespace))
    check_not_builtin(info.kind, name)
    document, picks = one_document(), Picks()

    def write() -> Outcome:
        obj = _checked_object(info, document, _ns(info, namespace), name, picks)
        return _write(Replace(obj, obj["metadata"].get("resourceVersion")))

    return jsonify(_show(_retry_conflicts(write, True, picks).objects[0]))


@bp.patch(CLUSTER + "/<dns:name>")
@bp.patch(NAMESPACED + "/<dns:name>")
def patch_object(plural: str, name: str, namespace: str | None = None) -> Response:
    info = _kind(plural, namespace)
    authorize(principal(), "patch", info.kind, name, namespace=_ns(info, namespace))
    check_not_builtin(info.kind, name)
    patch = one_document()
    json_patch_body = request.mimetype == "application/json-patch+json"  # RFC 6902, else RFC 7386
    if not json_patch_body and not isinstance(patch, dict):
        raise bad_request("a merge patch must be an object", "body")
    pinned = None if json_patch_body else pinned_version(patch)
    ns, picks = _ns(info, namespace), Picks()

    def write() -> Outcome:
        current = _current(info, ns, name)
        spec_side = {k: v for k, v in current.items() if k != "status"}
        merged = json_patch(spec_side, patch) if json_patch_body else merge_patch(spec_side, patch)
        try:
            obj = _checked_object(info, merged, ns, name, picks)
        except ApiError as err:
            raise as_result(err) from None
        expected = pinned if pinned is not None else current["metadata"]["resourceVersion"]
        return _write(Replace(obj, expected))

    return jsonify(_show(_retry_conflicts(write, pinned is not None, picks).objects[0]))


@bp.put(CLUSTER + "/<dns:name>/status")
@bp.put(NAMESPACED + "/<dns:name>/status")
@bp.patch(CLUSTER + "/<dns:name>/status")
@bp.patch(NAMESPACED + "/<dns:name>/status")
def write_status(plural: str, name: str, namespace: str | None = None) -> Response:
    info = _kind(plural, namespace)
    authorize(principal(), "update" if request.method == "PUT" else "patch", info.kind, name,
              subresource="status", namespace=_ns(info, namespace))
    document = one_document()
    if not isinstance(document, dict) or not isinstance(document.get("status"), dict):
        raise bad_request("the body must hold a status object", "status")
    ns = _ns(info, namespace)
    pinned = pinned_version(document)

    def write() -> Outcome:
        status, expected = document["status"], pinned
        if request.method == "PATCH":
            current = _current(info, ns, name)
            status = merge_patch(current.get("status") or {}, document["status"])
            expected = pinned if pinned is not None else current["metadata"]["resourceVersion"]
        status = validate_status(info, status)
        _check_size(status, "status")
        return _write(UpdateStatus(info.kind, ns, name, status, expected))

    return jsonify(_show(_retry_conflicts(write, pinned is not None).objects[0]))


@bp.delete(CLUSTER + "/<dns:name>")
@bp.delete(NAMESPACED + "/<dns:name>")
def delete_object(plural: str, name: str, namespace: str | None = None) -> Response:
    """As Kubernetes does (commands.deletion): a pod running on a host is marked Terminating, its
    containers stopped (SIGTERM, then SIGKILL after the grace period), then removed by the runtime
    (`?gracePeriodSeconds=0` deletes at once); a Namespace is marked Terminating and emptied by its
    controller. A stale `resourceVersion` is the store's 409."""
    info = _kind(plural, namespace)
    authorize(principal(), "delete", info.kind, name, namespace=_ns(info, namespace))
    check_not_builtin(info.kind, name)
    expected = _expected_rv(request.args.get("resourceVersion"), "resourceVersion")
    grace = _grace_seconds(request.args.get("gracePeriodSeconds"))
    orphan = _propagation(request.args.get("propagationPolicy")) == "Orphan"
    ns, ctx = _ns(info, namespace), context()
    current = ctx.store.stored(info.kind, ns, name)  # no value needed: a Secret whose key is lost goes too
    if current is None or expected not in (None, current["metadata"]["resourceVersion"]):
        command: Command = Delete(info.kind, ns, name, expected)
    else:
        command = deletion(current, ctx.now(), grace, expected)
        if orphan:
            command = _orphaning(current, command)
    outcome = _write(command)
    return jsonify(_show(outcome.objects[-1]))


def _propagation(value: str | None) -> str:
    """Background (the default: the garbage collector deletes the dependents after the owner) or
    Orphan (they stay, without their reference to it). Foreground is refused, not ignored."""
    if value in (None, "Background", "Orphan"):
        return value or "Background"
    if value == "Foreground":
        raise ApiError(400, "FieldValueNotSupported", "propagationPolicy Foreground is not supported "
                       "yet: use Background (the default) or Orphan", "propagationPolicy")
    raise bad_request("propagationPolicy must be Background or Orphan", "propagationPolicy")


def _orphaning(owner: dict[str, Any], delete: Op) -> Command:
    """The dependents' release and the owner's deletion in one command: the store finds the
    dependents as it applies it, so no garbage collector round, and no dependent made meanwhile,
    comes between them."""
    return Batch((ReleaseDependents(owner["metadata"]["uid"]), delete))


def _grace_seconds(value: str | None) -> int | None:
    """None when not given; "" is no number (the OpenAPI document says an integer)."""
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()) or int(value) > 3600:  # "²" is a digit to isdigit
        raise bad_request("gracePeriodSeconds must be a whole number of seconds from 0 to 3600",
                          "gracePeriodSeconds")
    return int(value)


# --- apply -----------------------------------------------------------------------------

@bp.post("/api/v1/apply")
def apply_manifest() -> Response:
    """Create or update every document, all in one Raft command: all of them or none."""
    authorize(principal(), "apply", None)
    default_ns = request.args.get("namespace") or DEFAULT_NAMESPACE
    if not re.fullmatch(DNS1123_LABEL, default_ns) or len(default_ns) > 63:  # used or not, as documented
        raise bad_request(f"namespace {default_ns[:100]!r} is not a DNS label", "namespace")
    ctx, sent, picks = context(), documents(), Picks()

    def write() -> Outcome:
        ops = []
        for index, document in enumerate(sent):
            try:
                info = kind_of(document)
                meta = document.get("metadata")
                ns = _ns(info, (meta.get("namespace") if isinstance(meta, dict) else None) or default_ns)
                obj = _checked_object(info, document, ns, None, picks)
            except ApiError as err:
                err.message = f"document {index}: {err.message}"
                err.details = [{**d, "document": index} for d in err.details]
                raise
            authorize_object(principal(), "update", obj)
            ops.append(Put(obj, ctx.uid(), ctx.now()))
        return _write(Batch(tuple(ops)))

    outcome = _retry_conflicts(write, True, picks)
    return jsonify({
        "items": [_show(o) for o in outcome.objects],
        "actions": outcome.actions,
    })
