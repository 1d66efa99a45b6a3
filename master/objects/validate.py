"""Turn a client's document into a stored object, or say exactly which field is wrong."""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from master.errors import ApiError, bad_request
from master.objects.fields import FORBIDDEN, NOT_SUPPORTED_YET
from master.objects.kinds import KINDS, KINDS_NOT_YET, KindInfo

DEFAULT_NAMESPACE = "default"
# Parts of pydantic's error locations that name its own machinery (union members,
# validators), never a field the user wrote.
_MACHINERY = re.compile(
    r"^(\[key\]|constrained-\w+|function-[\w-]+\[.*\]|union\[.*\]|str|int|float|bool|"
    r"list\[.*\]|dict\[.*\]|nullable\[.*\]|tagged-union\[.*\]|lax-or-strict\[.*\])$"
)


def field_path(loc: tuple[int | str, ...]) -> str:
    """pydantic's error location as the dotted path a manifest author reads."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in KINDS or _MACHINERY.match(part):
            continue
        else:
            path += f".{part}" if path else str(part)
    return path


def error_from_validation(err: ValidationError) -> ApiError:
    details, fields = [], set()
    for item in err.errors(include_url=False):
        field = field_path(item["loc"])
        if field in fields:
            continue  # one message per field: a union reports each member's complaint
        fields.add(field)
        message = str(item["msg"]).removeprefix("Value error, ")
        details.append({"field": field, "error": message, "reason": item["type"]})
    first = details[0]
    reason = "FieldValueUnknown" if first["reason"] == "extra_forbidden" else "FieldValueInvalid"
    if first["reason"] == "missing":
        reason = "FieldValueRequired"
    if first["reason"] == NOT_SUPPORTED_YET:
        reason = "FieldValueNotSupported"
    if first["reason"] == FORBIDDEN:
        reason = "FieldValueForbidden"
    return ApiError(400, reason, f"{first['field']}: {first['error']}", first["field"], details)


def kind_of(document: Any) -> KindInfo:
    if not isinstance(document, dict):
        raise bad_request("an object must be a JSON/YAML mapping", "")
    kind = document.get("kind")
    if not isinstance(kind, str) or not kind:
        raise ApiError(400, "FieldValueRequired", "kind is required", "kind")
    info = KINDS.get(kind)
    if info is None and kind in KINDS_NOT_YET:
        raise ApiError(400, "FieldValueNotSupported",
                       f"kind {kind} is not supported yet: {KINDS_NOT_YET[kind]}", "kind")
    if info is None:
        raise ApiError(400, "FieldValueNotSupported", f"unknown kind {kind!r}", "kind")
    return info


def validate_object(document: Any, expected: KindInfo | None = None) -> dict[str, Any]:
    """The normalised object (defaults filled in, namespace set) ready to propose to the store.

    Types are strict, as the published schema states them: pydantic's lax mode would take "3" for
    an integer and "yes" for a boolean, values the OpenAPI document refuses (bench.fuzz found it).

    A status it carries is ignored, as Kubernetes does on spec writes: a fetched object can
    be sent back, but status reaches the store only through `validate_status`."""
    if isinstance(document, dict) and expected is not None:
        document = {"kind": expected.kind, **document}
    info = kind_of(document)
    if expected is not None and info is not expected:
        raise bad_request(f"kind {info.kind} does not belong at this path ({expected.plural})", "kind")
    document = {k: v for k, v in document.items() if k != "status"}
    try:
        model = info.model.model_validate(document, strict=True)  # "3" is no integer, "yes" no boolean
    except ValidationError as err:
        raise error_from_validation(err) from None
    except Exception as err:  # a validator's own bug must be the client's 400, not a 500
        raise bad_request(f"{info.kind} cannot be read: {err.__class__.__name__}: {err}"[:1000]) from None
    obj = model.model_dump(mode="json", exclude_none=True)
    meta = obj["metadata"]
    if not meta.get("ownerReferences"):
        meta.pop("ownerReferences", None)  # most objects have none: keep them as they were sent
    for system_only in ("deletionTimestamp", "deletionGracePeriodSeconds", "finalizers"):
        meta.pop(system_only, None)  # set by a DELETE only (the store keeps the stored ones)
    if info.namespaced:
        meta.setdefault("namespace", DEFAULT_NAMESPACE)
    elif "namespace" in meta:
        raise bad_request(f"{info.kind} is cluster-scoped: no namespace", "metadata.namespace")
    return obj


def validate_status(info: KindInfo, status: Any) -> dict[str, Any]:
    """A status as written through the API: the kind's status schema, what was sent kept as sent
    (quantity strings normalised), nothing filled in."""
    if info.status_model is None:
        raise ApiError(404, "NotFound", f"{info.plural} have no status subresource (no client writes it)",
                       "status")
    try:
        model = info.status_model.model_validate(status)
    except ValidationError as err:
        raise _under_status(error_from_validation(err)) from None
    except Exception as err:  # as in validate_object: never a 500
        raise bad_request(f"status cannot be read: {err.__class__.__name__}: {err}"[:1000],
                          "status") from None
    return model.model_dump(mode="json", exclude_unset=True)


def _under_status(err: ApiError) -> ApiError:
    """Name the fields as the body names them: status.conditions[0], not conditions[0]."""
    def under(field: str) -> str:
        return f"status.{field}" if field else "status"

    first = err.details[0] if err.details else {"field": err.field or "", "error": err.message}
    err.field, err.message = under(first["field"]), f"{under(first['field'])}: {first['error']}"
    err.details = [{**d, "field": under(d["field"])} for d in err.details]
    return err
