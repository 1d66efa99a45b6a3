"""The OpenAPI 3.1 document, generated from the very pydantic models that validate.

It is a contract, checked by `python -m bench.fuzz` (Schemathesis, every check) and
tests/test_api_contract.py: a request it allows is never a 400, one it refuses never a 2xx, and
every status an operation can answer is listed with its body. So each operation's statuses are
composed here from the layers a request crosses (`_statuses`), not written per path.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from flask import Blueprint, Response, jsonify
from jsonschema import Draft202012Validator
from pydantic.json_schema import models_json_schema

from master.api.auth import authorize
from master.api.body import MAX_NUMBER_CHARS
from master.api.context import principal
from master.api.openapi_schemas import (
    ERROR,
    JSON_VALUE_REF,
    Schema,
    bounded_numbers,
    closed,
    json_value,
    with_hidden_values,
    written,
)
from master.errors import ApiError
from master.objects.fields import DNS1123_LABEL
from master.objects.kinds import BY_ANY_NAME, KINDS, SCALABLE, Eviction, KindInfo, Scale
from master.objects.rbac_kinds import SelfSubjectAccessReview, SelfSubjectRulesReview
from master.objects.selectors import FIELD_SELECTOR_PATTERN, LABEL_SELECTOR_PATTERN, MAX_SELECTOR_CHARS

bp = Blueprint("openapi", __name__)
_ERROR = {"$ref": "#/components/schemas/Error"}
MERGE_PATCH, JSON_PATCH = "application/merge-patch+json", "application/json-patch+json"
# What each status means, wherever it is answered: the one place its description is written.
STATUSES = {
    400: "the request does not fit this description: a body or parameter of the wrong type or form, "
         "an unknown field, a value out of bounds (the error names the field)",
    401: "no bearer token, or one this master does not know",
    403: "no role bound to the token's user or groups allows this (RBAC); a role or binding granting more "
         "than its writer holds; a built-in role; or the namespace is being deleted",
    404: "no such object, or a path that can name none (a name or namespace that is no DNS label)",
    409: "a conflict with what is stored: the name is taken, or the resourceVersion sent is stale",
    410: "since is older than the oldest revision this master keeps: list again",
    413: "the body, or the object it makes, is larger than this master takes",
    422: "the request fits this description but breaks a rule it cannot state: fields that must agree "
         "with each other or with the path, a field fixed once set, a patch whose result is not valid",
    429: "too many at once: streams of this token, or evictions the disruption budget allows",
    503: "no leader, or the write was not confirmed in time: retry (on another master)",
}
# The layers a request crosses, and what each may answer (see docs/architecture.md, "A request's path")
DOOR = (401,)  # server.py's admission and app.py: a bearer token
ROLE = (403,)  # auth.authorize
BODY = (400, 413)  # body.py, the door's size limit
WRITE = (400, 409, 422, 503)  # validation beyond the schema, the store's apply, Raft
STORED = (404,)  # one object by name; or a path whose names are no DNS labels (routing: no route)


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Schema) -> Schema:
    return {"content": {"application/json": {"schema": schema}}}


def _statuses(*layers: tuple[int, ...]) -> list[int]:
    return sorted({code for layer in layers for code in layer})


def _responses(ok: Schema, errors: list[int], ok_status: int = 200,
               ok_media: str = "application/json") -> Schema:
    responses: Schema = {str(ok_status): {"description": "OK", "content": {ok_media: {"schema": ok}}}}
    for code in errors:
        responses[str(code)] = {"description": STATUSES[code], **_json(_ERROR)}
    return responses


def _watch_responses() -> Schema:
    """JSON lines, or server-sent events when Accept asks for text/event-stream (watch.py)."""
    responses = _responses({"type": "string"}, _statuses(DOOR, ROLE, (400, 410, 429)),
                           ok_media="application/x-ndjson")
    responses["200"]["content"]["text/event-stream"] = {"schema": {"type": "string"}}
    return responses


def _query(name: str, schema: Schema, description: str, required: bool = False) -> Schema:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


def _path(name: str) -> Schema:
    """Names and namespaces are DNS labels (ObjectMeta): a path with another names nothing."""
    return {"name": name, "in": "path", "required": True,
            "schema": {"type": "string", "minLength": 1, "maxLength": 63, "pattern": DNS1123_LABEL}}


DRY_RUN = _query("dryRun", {"type": "string", "enum": ["All"]},
                 "All: every check of the write made, nothing kept (kubectl's --dry-run=server)")
CONSISTENT = _query("consistent", {"type": "string"},
                    "1, true or yes: read after every write committed before the request")
SELECTORS = [
    _query("labelSelector", {"type": "string", "maxLength": MAX_SELECTOR_CHARS,
                             "pattern": LABEL_SELECTOR_PATTERN},
           "app=web,tier!=db,env in (a,b),gpu,!spot"),
    _query("fieldSelector", {"type": "string", "maxLength": MAX_SELECTOR_CHARS,
                             "pattern": FIELD_SELECTOR_PATTERN},
           "metadata.name, metadata.namespace, spec.nodeName or status.phase, with =, == or !="),
]
DELETE_PARAMS = [
    _query("gracePeriodSeconds", {"type": "integer", "minimum": 0, "maximum": 3600},
           "seconds a pod's containers have to stop (0: at once)"),
    _query("propagationPolicy", {"type": "string", "enum": ["Background", "Orphan"]},
           "Background: the dependents go after the owner (the default); Orphan: they stay"),
    _query("resourceVersion", {"type": "string", "pattern": "^[0-9]{0,19}$"},
           "delete only the object at this version (409 otherwise); empty: at any"),
    DRY_RUN,
]
JSON_PATCH_BODY = {"type": "array", "maxItems": 1000, "items": {  # other members ignored, as RFC 6902 says
    "type": "object", "required": ["op", "path"], "additionalProperties": JSON_VALUE_REF,
    "properties": {"op": {"enum": ["add", "remove", "replace", "move", "copy", "test"]},
                   "path": {"type": "string"}, "from": {"type": "string"}, "value": JSON_VALUE_REF}}}


def _patch_body() -> Schema:
    """A merge patch (RFC 7386) is any object, a JSON Patch (RFC 6902) a list of operations: whether
    the result is a valid object is known once it is applied (a 422 when not)."""
    return {"required": True, "content": {
        MERGE_PATCH: {"schema": {"type": "object", "additionalProperties": JSON_VALUE_REF}},
        JSON_PATCH: {"schema": JSON_PATCH_BODY}}}


def _schemas() -> Schema:
    _, defs = models_json_schema(
        [*((info.model, "validation") for info in KINDS.values()), (Scale, "validation"),
         (Eviction, "validation"), (SelfSubjectAccessReview, "validation"),
         (SelfSubjectRulesReview, "validation")],
        ref_template="#/components/schemas/{model}",
    )
    schemas: Schema = bounded_numbers(closed(dict(defs.get("$defs", {}))), MAX_NUMBER_CHARS)
    for kind in KINDS:
        schemas[f"{kind}Write"] = written(schemas[kind])
    schemas["Secret"] = with_hidden_values(schemas["Secret"], "data")  # as a role that may not see them
    schemas["Error"] = ERROR
    schemas["JsonValue"] = json_value(MAX_NUMBER_CHARS)
    return schemas


def _manifest(yaml: bool) -> Schema:
    """What apply takes (body.parse_documents): one document of any kind, naming its kind; in JSON
    also a list of them, or a `...List` holding them (YAML's many documents are a stream, which no
    schema describes)."""
    one = {"anyOf": [{"allOf": [_ref(f"{kind}Write"), {"required": ["kind"]}]} for kind in KINDS]}
    if yaml:
        return one
    many = {"type": "array", "minItems": 1, "items": one}
    listed = {"type": "object", "required": ["kind", "items"], "additionalProperties": JSON_VALUE_REF,
              "properties": {"kind": {"type": "string", "pattern": "List$"}, "items": many}}
    return {"anyOf": [one, many, listed]}


def _listing(info: KindInfo) -> Schema:
    return {"type": "object", "required": ["apiVersion", "kind", "metadata", "items"], "properties": {
        "apiVersion": {"const": "berth/v1"}, "kind": {"const": f"{info.kind}List"},
        "metadata": {"type": "object", "properties": {"resourceVersion": {"type": "integer"}}},
        "items": {"type": "array", "items": {"$ref": f"#/components/schemas/{info.kind}"}}}}


def _kind_paths(info: KindInfo) -> dict[str, Schema]:
    """A kind's collection and objects, and its /scale where it has one."""
    ref, body = _ref(info.kind), _ref(f"{info.kind}Write")
    base = f"/api/v1/namespaces/{{namespace}}/{info.plural}" if info.namespaced else f"/api/v1/{info.plural}"
    scope = [_path("namespace")] if info.namespaced else []
    one = [*scope, _path("name")]
    named = STORED if info.namespaced else ()  # a namespace in the path: no route unless a DNS label
    paths = {
        base: {"parameters": scope,
               "get": {"summary": f"list {info.plural}", "parameters": [*SELECTORS, CONSISTENT],
                       "responses": _responses(_listing(info), _statuses(DOOR, ROLE, (400, 503), named))},
               "post": {"summary": f"create a {info.singular}", "parameters": [DRY_RUN],
                        "requestBody": {"required": True, **_json(body)},
                        "responses": _responses(ref, _statuses(DOOR, ROLE, BODY, WRITE, named), 201)}},
        f"{base}/{{name}}": {
            "parameters": one,
            "get": {"parameters": [CONSISTENT],
                    "responses": _responses(ref, _statuses(DOOR, ROLE, STORED, (503,)))},
            "put": {"summary": f"replace a {info.singular}", "parameters": [DRY_RUN],
                    "requestBody": {"required": True, **_json(body)},
                    "responses": _responses(ref, _statuses(DOOR, ROLE, BODY, WRITE, STORED))},
            "patch": {"summary": f"patch a {info.singular}", "parameters": [DRY_RUN],
                      "requestBody": _patch_body(),
                      "responses": _responses(ref, _statuses(DOOR, ROLE, BODY, WRITE, STORED))},
            "delete": {"summary": f"delete a {info.singular}", "parameters": DELETE_PARAMS,
                       "responses": _responses(ref, _statuses(DOOR, ROLE, WRITE, STORED))},
        },
    }
    if info.namespaced:
        paths[f"/api/v1/{info.plural}"] = {"get": {
            "summary": f"list {info.plural} in every namespace", "parameters": [*SELECTORS, CONSISTENT],
            "responses": _responses(_listing(info), _statuses(DOOR, ROLE, (400, 503)))}}
    if info.kind in SCALABLE:
        scale = _ref("Scale")
        paths[f"{base}/{{name}}/scale"] = {
            "parameters": one,
            "get": {"summary": "replicas alone",
                    "responses": _responses(scale, _statuses(DOOR, ROLE, STORED))},
            "put": {"parameters": [DRY_RUN], "requestBody": {"required": True, **_json(scale)},
                    "responses": _responses(scale, _statuses(DOOR, ROLE, BODY, WRITE, STORED))},
            "patch": {"parameters": [DRY_RUN], "requestBody": _patch_body(),
                      "responses": _responses(scale, _statuses(DOOR, ROLE, BODY, WRITE, STORED))},
        }
    return paths


_ACCESS_REVIEW = {"type": "object", "required": ["spec", "status"], "properties": {
    "spec": _ref("SelfSubjectAccessReviewSpec"), "status": {
        "type": "object", "required": ["allowed", "reason"],
        "properties": {"allowed": {"type": "boolean"}, "denied": {"type": "boolean"},
                       "reason": {"type": "string"}}}}}
_RULES_REVIEW = {"type": "object", "required": ["status"], "properties": {"status": {
    "type": "object", "required": ["resourceRules", "incomplete"], "properties": {
        "resourceRules": {"type": "array", "items": _ref("PolicyRule")}, "incomplete": {"type": "boolean"},
        "evaluationError": {"type": "string"}}}}}
_SELF_REVIEW = {"type": "object", "required": ["status"], "properties": {"status": {
    "type": "object", "properties": {"userInfo": {"type": "object", "properties": {
        "username": {"type": "string"}, "groups": {"type": "array", "items": {"type": "string"}}}}}}}}


def _cluster_paths() -> dict[str, Schema]:
    """Everything that is not one kind's: eviction, rebalance, apply, watch, the cluster, health."""
    anything = {"type": "object"}
    return {
        "/api/v1/namespaces/{namespace}/pods/{name}/eviction": {
            "parameters": [_path("namespace"), _path("name")],
            "post": {"summary": "evict the pod: a graceful delete its disruption budget allows",
                     "parameters": [DRY_RUN], "requestBody": {"required": True, **_json(_ref("Eviction"))},
                     "responses": _responses(anything, _statuses(DOOR, ROLE, BODY, WRITE, STORED, (429,)),
                                             201)}},
        "/api/v1/rebalance": {
            "get": {"summary": "what the rebalancer would move now",
                    "responses": _responses(anything, _statuses(DOOR, ROLE))},
            "post": {"summary": "carry one round of the rebalancer out now",
                     "responses": _responses(anything, _statuses(DOOR, ROLE))}},
        "/api/v1/secrets/rotate": {"post": {
            "summary": "admins: seal every Secret again with the first key of encryption_key_file",
            "parameters": [DRY_RUN], "responses": _responses(anything, _statuses(DOOR, ROLE, WRITE))}},
        "/api/v1/snapshot": {"get": {
            "summary": "admins (get secrets/snapshot): every stored object at one revision, as a snapshot "
                       "file (`berth-master snapshot save`; Secrets as stored, sealed)",
            "responses": _responses({"type": "string"}, _statuses(DOOR, ROLE),
                                    ok_media="application/octet-stream")}},
        "/api/v1/apply": {"post": {
            "summary": "create or update every document of a manifest, all or none",
            "parameters": [_query("namespace", {"type": "string", "maxLength": 63,
                                                "pattern": "^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$"},
                                  "for documents that name none (default, unless given)"), DRY_RUN],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _manifest(False)},
                                                          "application/yaml": {"schema": _manifest(True)}}},
            "responses": _responses(anything, _statuses(DOOR, ROLE, BODY, WRITE))}},
        "/api/v1/watch": {"get": {
            "summary": "stream events as JSON lines (server-sent events if Accept asks for "
                       "text/event-stream), from `since` (or now) for timeoutSeconds",
            "parameters": [
                _query("kind", {"type": "string", "enum": sorted(BY_ANY_NAME)}, "a kind, by any of its names",
                       required=True),
                _query("since", {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
                       "a revision (now, unless given)"),
                _query("namespace", {"type": "string"}, "only this namespace's objects"),
                SELECTORS[0],
                _query("timeoutSeconds", {"type": "number", "minimum": 0, "maximum": 3600},
                       "how long the stream lasts (300 s unless given)")],
            "responses": _watch_responses()}},
        "/api/v1/selfsubjectaccessreviews": {"post": {
            "summary": "may I? the decision a request of these attributes would get (every user's)",
            "requestBody": {"required": True, **_json(_ref("SelfSubjectAccessReview"))},
            "responses": _responses(_ACCESS_REVIEW, _statuses(DOOR, BODY), 201)}},
        "/api/v1/selfsubjectrulesreviews": {"post": {
            "summary": "what may I do in spec.namespace? the rules bound to the token there (every user's)",
            "requestBody": {"required": True, **_json(_ref("SelfSubjectRulesReview"))},
            "responses": _responses(_RULES_REVIEW, _statuses(DOOR, BODY), 201)}},
        "/api/v1/selfsubjectreviews": {"post": {
            "summary": "who am I? the token's user and groups (every user's)",
            "responses": _responses(_SELF_REVIEW, _statuses(DOOR), 201)}},
        "/api/v1/cluster": {"get": {"summary": "the masters and their Raft state",
                                    "responses": _responses(anything, _statuses(DOOR))}},
        "/api/v1/cluster/members": {"post": {
            "summary": "add a running master to Raft, answered once committed (cluster-admin's; one change "
                       "at a time: 409; 422 when the masters reachable would not be a majority after)",
            "requestBody": {"required": True, **_json({
                "type": "object", "additionalProperties": False, "required": ["address", "apiURL"],
                "properties": {"address": {"type": "string", "description": "its Raft HOST:PORT"},
                               "apiURL": {"type": "string", "description": "its API, https://HOST:PORT"}}})},
            "responses": _responses(anything, _statuses(DOOR, ROLE, BODY, WRITE), 201)}},
        "/api/v1/cluster/members/{address}": {"delete": {
            "summary": "remove a master from Raft, answered once committed (cluster-admin's; 422 when the "
                       "members left reachable would not be a majority; the leader hands over first: 503)",
            "parameters": [{"name": "address", "in": "path", "required": True,
                            "schema": {"type": "string"}, "description": "its Raft HOST:PORT"}],
            "responses": _responses(anything, _statuses(DOOR, ROLE, STORED, WRITE))}},
        "/metrics": {"get": {
            "summary": "this master's Prometheus metrics, in Prometheus' text format (whoever may list "
                       "every node and every namespace's pods; not an agent)",
            "responses": _responses({"type": "string"}, _statuses(DOOR, ROLE), ok_media="text/plain")}},
        "/api/v1/openapi.json": {"get": {"summary": "this document",
                                         "responses": _responses(anything, _statuses(DOOR))}},
        "/healthz": {"get": {"summary": "this master's process answers", "security": [],
                             "responses": _responses(anything, [])}},
        "/readyz": {"get": {"summary": "this master knows a leader and has caught up", "security": [],
                            "responses": {"200": {"description": "ready", **_json(anything)},
                                          "503": {"description": "not ready", **_json(anything)}}}},
        "/version": {"get": {"summary": "the release this master runs (major, minor, gitVersion, platform, "
                                        "pythonVersion)", "security": [],
                             "responses": _responses(anything, [])}},
    }


@cache
def openapi_document() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for info in KINDS.values():
        paths.update(_kind_paths(info))
    paths.update(_cluster_paths())
    return {
        "openapi": "3.1.0",
        "info": {"title": "Berth API", "version": "v1"},
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }


@cache
def _validator(component: str) -> Draft202012Validator:
    """The published schema itself, its references resolved within the document."""
    return Draft202012Validator({"$ref": f"#/components/schemas/{component}",
                                 "components": openapi_document()["components"]})


def fits(document: Any, component: str) -> bool:
    return _validator(component).is_valid(_quiet(document))


class _QuietStr(str):
    def __repr__(self) -> str:
        return f"<a string of {len(self)} characters>"


class _QuietDict(dict):
    def __repr__(self) -> str:
        return f"<a mapping of {len(self)} keys>"


class _QuietList(list):
    def __repr__(self) -> str:
        return f"<a list of {len(self)} items>"


def _quiet(value: Any) -> Any:
    """The document as jsonschema sees it in `fits`: the same values, with short reprs. jsonschema
    writes the instance's repr into every error it makes, once per failed branch, and `fits` only
    counts them: a pod with a 900 KB quantity made megabytes of messages per request, whose freed
    heap glibc kept (an operator's requests took the leader from 100 to 500-800 MiB: bench.abuse)."""
    if isinstance(value, str):
        return _QuietStr(value) if len(value) > 64 else value
    if isinstance(value, dict):
        return _QuietDict((key, _quiet(item)) for key, item in value.items())
    if isinstance(value, list):
        return _QuietList(_quiet(item) for item in value)
    return value


def as_described(err: ApiError, document: Any, component: str) -> ApiError:
    """A body the models refused: a 400 when it breaks the schema this document publishes, a 422
    when it fits it and breaks a rule beyond it (a validator's check across fields). Decided by the
    published schema itself, so the two cannot drift: a client that wrote the body from the document
    learns which of the two it got wrong, and a fuzzer's valid data is never a 400."""
    if err.status in (400, 422):
        err.status = 422 if fits(document, component) else 400
    return err


@bp.get("/api/v1/openapi.json")
def openapi() -> Response:
    authorize(principal(), "get", None)
    return jsonify(openapi_document())
