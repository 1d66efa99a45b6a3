"""The API keeps its OpenAPI contract: the document's pieces (pure), the routes' 405s, and Schemathesis
against three masters on loopback (bench.fuzz, a short run of it: `python -m bench.fuzz` is the long)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from master.api.app import create_app
from master.api.auth import TokenBook, digest
from master.api.context import ApiContext
from master.api.openapi import as_described, openapi_document
from master.api.openapi_schemas import (
    JSON_VALUE_REF,
    bounded_numbers,
    closed,
    json_value,
    with_hidden_values,
    written,
)
from master.api.resources import pinned_version
from master.errors import ApiError
from master.objects.json_patch import json_patch
from master.objects.tolerations import MAX_TOLERATIONS, check_room_for_defaults, with_default_tolerations
from master.objects.validate import validate_object
from tests.harness import MasterCluster, pod

METHODS = ("GET", "PUT", "POST", "DELETE", "PATCH")


@pytest.mark.parametrize(("schema", "expected"), [
    ({"type": "object", "patternProperties": {"^a$": {}}},
     {"type": "object", "patternProperties": {"^a$": {}}, "additionalProperties": False}),
    ({"properties": {"x": {"patternProperties": {"^a$": {}}}}},
     {"properties": {"x": {"patternProperties": {"^a$": {}}, "additionalProperties": False}}}),
    ({"anyOf": [{"patternProperties": {"^a$": {}}}, {"type": "null"}]},
     {"anyOf": [{"patternProperties": {"^a$": {}}, "additionalProperties": False}, {"type": "null"}]}),
    ({"patternProperties": {"^a$": {}}, "additionalProperties": {"type": "string"}},
     {"patternProperties": {"^a$": {}}, "additionalProperties": {"type": "string"}}),
    ({"type": "object", "additionalProperties": True},  # dict[str, Any]: the values the parser reads
     {"type": "object", "additionalProperties": JSON_VALUE_REF}),
])
def test_mappings_with_key_patterns_are_closed(schema: dict[str, Any], expected: dict[str, Any]) -> None:
    assert closed(schema) == expected


@pytest.mark.parametrize(("value", "fits"), [
    (10**32 - 1, True), (10**32, False), (-(10**31 - 1), True), (-(10**31), False),
    (-1.2345678901234567e-300, True), ({"a": [1, "x", None, {"b": 10**40}]}, False), ({"a": [1.5]}, True),
])
def test_any_value_has_the_numbers_the_body_parser_reads(value: Any, fits: bool) -> None:
    """Found by bench.fuzz: a write's `status` (dropped unread) was any JSON, and a 33-digit number
    in it a 400 from the parser (at most 32 characters a number, body.py)."""
    schema = {"$ref": "#/$defs/JsonValue", "$defs": {"JsonValue": json_value(32)}}
    schema = json.loads(json.dumps(schema).replace("#/components/schemas/", "#/$defs/"))
    assert Draft202012Validator(schema).is_valid(value) == fits


@pytest.mark.parametrize(("metadata", "pinned"), [
    ({"resourceVersion": 7}, 7), ({"resourceVersion": "7"}, 7), ({"resourceVersion": ""}, None), ({}, None),
    ({"resourceVersion": 7281078.0}, 7281078),  # found by bench.fuzz: JSON Schema's integer, refused
])
def test_a_pinned_resource_version_is_read_as_the_document_writes_it(metadata: dict,
                                                                     pinned: int | None) -> None:
    assert pinned_version({"metadata": metadata}) == pinned


@pytest.mark.parametrize("metadata", [{"resourceVersion": -1}, {"resourceVersion": " 7"},
                                      {"resourceVersion": True}, {"resourceVersion": 7.5}, "x"])
def test_a_resource_version_that_is_no_whole_number_is_refused(metadata: Any) -> None:
    with pytest.raises(ApiError) as refused:
        pinned_version({"metadata": metadata})
    assert refused.value.status == 400


@pytest.mark.parametrize(("schema", "expected"), [
    ({"type": "integer"}, {"type": "integer", "maximum": 10**32 - 1, "minimum": -(10**31 - 1)}),
    ({"type": "integer", "minimum": 0, "maximum": 511}, {"type": "integer", "minimum": 0, "maximum": 511}),
    ({"anyOf": [{"type": "string"}, {"type": "number", "exclusiveMinimum": 0}]},
     {"anyOf": [{"type": "string"}, {"type": "number", "exclusiveMinimum": 0, "maximum": 10**32 - 1}]}),
])
def test_an_unbounded_number_is_bounded_as_the_parser_reads_it(schema: dict, expected: dict) -> None:
    """Found by bench.fuzz: an integer of 33 digits where a schema set no bound (a quantity's number)
    fit the document and was a 400 from the parser (body.MAX_NUMBER_CHARS), before any model."""
    assert bounded_numbers(schema, 32) == expected


def test_a_written_object_may_leave_its_kind_out_and_its_status_is_not_read() -> None:
    served = {"type": "object", "required": ["metadata", "kind", "spec"], "additionalProperties": False,
              "properties": {"kind": {"const": "Pod"}, "status": {"$ref": "#/components/schemas/PodStatus"}}}
    body = written(served)
    assert body["required"] == ["metadata", "spec"] and body["additionalProperties"] is False
    assert body["properties"]["status"]["$ref"] == JSON_VALUE_REF["$ref"]  # any value: dropped unread
    assert served["required"] == ["metadata", "kind", "spec"]  # the served schema is left as it was


def test_a_secret_as_a_viewer_reads_it_has_null_values() -> None:
    secret = {"properties": {"data": {"patternProperties": {"^k$": {"type": "string"}}}}}
    values = with_hidden_values(secret, "data")["properties"]["data"]["patternProperties"]["^k$"]
    assert values == {"anyOf": [{"type": "string"}, {"type": "null"}]}


def _deployment(**changes: Any) -> dict[str, Any]:
    body = {"kind": "Deployment", "metadata": {"name": "web", "namespace": "default"}, "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod("x")["spec"]}}}
    for path, value in changes.items():
        *parents, last = path.split(".")
        node = body
        for part in parents:
            node = node[part]
        node[last] = value
    return body


@pytest.mark.parametrize(("body", "status"), [
    (_deployment(**{"spec.template.metadata.labels": {"app": "other"}}), 422),  # the selector matches not
    (_deployment(**{"metadata.labels": {"-bad": "x"}}), 400),  # a key the published pattern refuses
    (_deployment(**{"spec.paused": "yes"}), 400),
    (_deployment(**{"spec.color": "blue"}), 400),  # unknown: additionalProperties is false
    (_deployment(**{"metadata.namespace": "Default"}), 400),
    # long strings are judged as they are (fits gives jsonschema them with short reprs)
    (_deployment(**{"metadata.labels": {"app": "x" * 100_000}}), 400),
    (_deployment(**{"spec.template.metadata.labels": {"app": "other"},
                    "metadata.annotations": {"note": "x" * 100_000}}), 422),
])
def test_a_refused_body_is_a_400_when_it_breaks_the_published_schema_else_a_422(
        body: dict[str, Any], status: int) -> None:
    """Judged by the document's own schema (openapi.as_described): a client that followed the
    description only ever meets 422s, for the rules no JSON Schema states."""
    with pytest.raises(ApiError) as refused:
        validate_object(body)
    assert as_described(refused.value, body, "DeploymentWrite").status == status


def test_a_json_patch_index_of_other_digits_is_refused_not_a_crash() -> None:
    """"²" is a digit to str.isdigit and not to int(): found by bench.fuzz as a 500."""
    with pytest.raises(ApiError) as refused:
        json_patch({"a": [1, 2, 3]}, [{"op": "replace", "path": "/a/²", "value": 0}])
    assert refused.value.status == 422


def test_every_documented_path_answers_other_methods_with_405_and_allow() -> None:
    """RFC 9110: a 405 names the methods the path takes, and they are the documented ones (plus HEAD
    with GET, and OPTIONS, which Flask answers for every route). Before, `POST /api/v1/pods` was
    a 404 and every 405 came without `Allow` (bench.fuzz: 62 operations)."""
    client, auth = _app_client()
    for template, item in openapi_document()["paths"].items():
        path = re.sub(r"\{(\w+)\}", "x", template)
        documented = {m.upper() for m in item if m.upper() in METHODS}
        allowed = documented | {"OPTIONS"} | ({"HEAD"} if "GET" in documented else set())
        for method in sorted(set(METHODS) - documented):
            answer = client.open(path, method=method, headers=auth)
            assert answer.status_code == 405, (method, path, answer.get_json())
            assert set(answer.headers["Allow"].split(", ")) == allowed, (method, path)
            assert answer.get_json()["reason"] == "MethodNotAllowed"


def _app_client() -> tuple[Any, dict[str, str]]:
    """The app alone, for what it answers before any store is read: routing and parameters."""
    token = "t0ken"
    app = create_app(ApiContext(store=None, books=None,  # type: ignore[arg-type] - never reached
                                tokens=TokenBook([{"name": "a", "role": "admin", "sha256": digest(token)}])))
    return app.test_client(), {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("path", [
    "/api/v1/namespaces/Default/pods", "/api/v1/namespaces/%C3%97/configmaps", "/api/v1/nodes/a_b",
    "/api/v1/namespaces/default/pods/x.y", f"/api/v1/namespaces/{'a' * 64}/pods", "/api/v1/gadgets",
])
def test_a_path_whose_names_are_no_dns_labels_names_nothing(path: str) -> None:
    """Found by bench.fuzz: a namespace such as "%C3%97" listed an empty list (200) where the document
    says a namespace is a DNS label."""
    client, auth = _app_client()
    answer = client.get(path, headers=auth)
    assert answer.status_code == 404 and answer.get_json()["reason"] == "NotFound"


@pytest.mark.parametrize("query", [
    "kind=Pod&since=", "kind=Pod&since=-1", "kind=Pod&since=%D9%A3", "kind=Pod&since=1_0",
    "kind=Pod&timeoutSeconds=", "kind=Pod&timeoutSeconds=1_0", "kind=Pod&timeoutSeconds=infinity",
    "kind=Pod&timeoutSeconds=3601", "kind=POD", "", "kind=Pod&labelSelector=a%3Db%3Dc",
])
def test_watch_refuses_what_its_parameters_do_not_allow(query: str) -> None:
    """Each is a 400 before any store is read (this app has none): what int() and float() took
    besides the document's integers and numbers ("1_0", " 5", "٣"), and an empty value."""
    client, auth = _app_client()
    answer = client.get(f"/api/v1/watch?{query}", headers=auth)
    assert answer.status_code == 400, answer.get_json()


def test_apply_refuses_a_namespace_parameter_that_is_no_dns_label() -> None:
    """Found by bench.fuzz: `?namespace=%C2%84` was let through when no document used it."""
    client, auth = _app_client()
    answer = client.post("/api/v1/apply?namespace=%C2%84", headers=auth, json={"kind": "Namespace"})
    assert answer.status_code == 400 and answer.get_json()["field"] == "namespace"


@pytest.mark.parametrize(("own", "refused"), [(62, False), (63, True), (64, True)])
def test_a_pod_spec_leaves_room_for_the_tolerations_the_master_adds(own: int, refused: bool) -> None:
    """Found by bench.fuzz: a pod with 63 tolerations of its own was stored with 65, more than its
    schema's 64, so the API served an object its own document refused."""
    spec = {"tolerations": [{"key": f"k{n}", "operator": "Exists"} for n in range(own)]}
    if refused:
        with pytest.raises(ApiError) as caught:
            check_room_for_defaults(spec, "spec.tolerations")
        assert caught.value.status == 422
    else:
        check_room_for_defaults(spec, "spec.tolerations")
        assert len(with_default_tolerations(spec, 5)["tolerations"]) == MAX_TOLERATIONS


@pytest.mark.timeout(240)
def test_schemathesis_finds_no_failure(cluster: MasterCluster) -> None:
    """A few hundred generated requests, every check, as an admin and as a viewer: the fuzzing phase
    alone (the coverage phase, with the undeclared methods, is `python -m bench.fuzz`'s)."""
    from bench.fuzz import fuzz

    figures = fuzz([m.api_url for m in cluster.masters], cluster.ca_file, max_examples=2, seed=17,
                   phases="fuzzing")
    assert figures.requests >= 300, figures.report()
    print(figures.report())
    assert figures.failures == {}, figures.report()
