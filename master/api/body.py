"""Reading request bodies: JSON, or YAML (one or many documents)."""

from __future__ import annotations

import json
from typing import Any

import yaml
from flask import request

from master.errors import ApiError

_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


def _malformed(detail: str) -> ApiError:
    return ApiError(400, "MalformedBody", f"the body is not valid: {detail}", "body")


def documents() -> list[Any]:
    """Every document of the body: a YAML stream, a JSON object, or a JSON list of objects."""
    raw = request.get_data(cache=True)  # over MAX_CONTENT_LENGTH this raises 413
    if not raw.strip():
        raise ApiError(400, "MalformedBody", "the body is empty", "body")
    if request.mimetype in _YAML_TYPES:
        try:
            docs = [d for d in yaml.safe_load_all(raw) if d is not None]
        except yaml.YAMLError as err:
            raise _malformed(str(err).splitlines()[0]) from None
    else:
        try:
            parsed = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as err:
            raise _malformed(str(err)) from None
        docs = parsed if isinstance(parsed, list) else [parsed]
        if isinstance(parsed, dict) and parsed.get("kind", "").endswith("List") and "items" in parsed:
            docs = parsed["items"]
    if not docs:
        raise ApiError(400, "MalformedBody", "the body holds no document", "body")
    return docs


def one_document() -> Any:
    docs = documents()
    if len(docs) != 1:
        raise ApiError(400, "MalformedBody", "expected one document", "body")
    return docs[0]
