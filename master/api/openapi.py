"""The OpenAPI 3.1 document, generated from the very pydantic models that validate."""

from __future__ import annotations

from functools import cache
from typing import Any

from flask import Blueprint, Response, jsonify
from pydantic.json_schema import models_json_schema

from master.api.auth import authorize
from master.api.context import principal
from master.objects.kinds import KINDS, SCALABLE, Eviction, Scale

bp = Blueprint("openapi", __name__)
_ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _responses(ok: dict[str, Any], *codes: int) -> dict[str, Any]:
    responses = {"200": {"description": "OK", **_json(ok)}}
    for code in codes:
        responses[str(code)] = {"description": "error", **_json(_ERROR)}
    return responses


@cache
def openapi_document() -> dict[str, Any]:
    _, defs = models_json_schema(
        [*((info.model, "validation") for info in KINDS.values()), (Scale, "validation"),
         (Eviction, "validation")],
        ref_template="#/components/schemas/{model}",
    )
    schemas = dict(defs.get("$defs", {}))
    schemas["Error"] = {
        "type": "object",
        "required": ["error", "reason"],
        "properties": {"error": {"type": "string"}, "field": {"type": ["string", "null"]},
                       "reason": {"type": "string"}},
    }
    paths: dict[str, Any] = {}
    for info in KINDS.values():
        ref = {"$ref": f"#/components/schemas/{info.kind}"}
        listing = {"type": "object", "properties": {"items": {"type": "array", "items": ref}}}
        base = f"/api/v1/namespaces/{{namespace}}/{info.plural}" if info.namespaced \
            else f"/api/v1/{info.plural}"
        params = [{"name": "namespace", "in": "path", "required": True,
                   "schema": {"type": "string"}}] if info.namespaced else []
        name = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
        body = {"required": True, **_json(ref)}
        paths[base] = {
            "parameters": params,
            "get": {"summary": f"list {info.plural}", "responses": _responses(listing, 401, 403)},
            "post": {"summary": f"create a {info.singular}", "requestBody": body,
                     "responses": _responses(ref, 400, 401, 403, 409, 413, 503)},
        }
        paths[f"{base}/{{name}}"] = {
            "parameters": params + name,
            "get": {"responses": _responses(ref, 401, 403, 404)},
            "put": {"requestBody": body, "responses": _responses(ref, 400, 401, 403, 404, 409)},
            "patch": {"requestBody": {"required": True, "content": {
                "application/merge-patch+json": {"schema": {"type": "object"}}}},
                "responses": _responses(ref, 400, 401, 403, 404, 409)},
            "delete": {"responses": _responses(ref, 401, 403, 404, 409)},
        }
        if info.kind in SCALABLE:
            scale = {"$ref": "#/components/schemas/Scale"}
            paths[f"{base}/{{name}}/scale"] = {
                "parameters": params + name,
                "get": {"summary": "replicas alone", "responses": _responses(scale, 401, 403, 404)},
                "put": {"requestBody": {"required": True, **_json(scale)},
                        "responses": _responses(scale, 400, 401, 403, 404, 409)},
                "patch": {"requestBody": {"required": True, "content": {
                    "application/merge-patch+json": {"schema": {"type": "object"}}}},
                    "responses": _responses(scale, 400, 401, 403, 404, 409)},
            }
        if info.namespaced:
            paths[f"/api/v1/{info.plural}"] = {
                "get": {"summary": f"list {info.plural} in every namespace",
                        "responses": _responses(listing, 401, 403)},
            }
    paths["/api/v1/namespaces/{namespace}/pods/{name}/eviction"] = {
        "parameters": [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                       for n in ("namespace", "name")],
        "post": {"summary": "evict the pod: a graceful delete its disruption budget allows (429 when not)",
                 "requestBody": {"required": True, **_json({"$ref": "#/components/schemas/Eviction"})},
                 "responses": {"201": {"description": "evicted", **_json({"type": "object"})},
                               **{str(c): {"description": "error", **_json(_ERROR)}
                                  for c in (400, 401, 403, 404, 422, 429)}}}}
    paths["/api/v1/rebalance"] = {
        "get": {"summary": "what the rebalancer would move now",
                "responses": _responses({"type": "object"}, 401, 403)},
        "post": {"summary": "carry one round of the rebalancer out now",
                 "responses": _responses({"type": "object"}, 401, 403)}}
    paths["/api/v1/secrets/rotate"] = {"post": {
        "summary": "admins: seal every Secret again with the first key of encryption_key_file",
        "parameters": [{"name": "dryRun", "in": "query", "schema": {"enum": ["All"]}}],
        "responses": _responses({"type": "object"}, 400, 401, 403)}}
    paths["/api/v1/apply"] = {"post": {
        "summary": "create or update every document of a manifest, all or none",
        "requestBody": {"required": True, "content": {"application/yaml": {"schema": {}}}},
        "responses": _responses({"type": "object"}, 400, 401, 403, 409, 413, 503)}}
    paths["/api/v1/watch"] = {"get": {
        "summary": "stream events as JSON lines",
        "parameters": [{"name": n, "in": "query", "schema": {"type": "string"}}
                       for n in ("kind", "since", "namespace", "labelSelector", "timeoutSeconds")],
        "responses": {"200": {"description": "events",
                              "content": {"application/x-ndjson": {"schema": {}}}},
                      "410": {"description": "since is older than the window", **_json(_ERROR)}}}}
    paths["/api/v1/cluster"] = {"get": {"responses": _responses({"type": "object"}, 401)}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Berth API", "version": "v1"},
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }


@bp.get("/api/v1/openapi.json")
def openapi() -> Response:
    authorize(principal(), "get", None)
    return jsonify(openapi_document())
