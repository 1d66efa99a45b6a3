"""Reading request bodies: JSON, or YAML (one or many documents), in bounded time and memory.

Callers authorize first, then read: a role that may not write never gets its body parsed.
What is parsed is then bounded by the body's size alone. YAML aliases and anchors are
refused (a 527-byte "billion laughs" once grew to 1.1 GB before its 403), and documents
nest at most MAX_DEPTH deep (the deepest object Berth stores nests about ten; deeper input
only feeds recursion in the parsers and in merge patches).
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from flask import request

from master.errors import ApiError

MAX_DEPTH = 32
_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser, when built in


def _malformed(detail: str) -> ApiError:
    return ApiError(400, "MalformedBody", f"the body is not valid: {detail}", "body")


def _too_deep() -> ApiError:
    return _malformed(f"documents nest deeper than {MAX_DEPTH} levels")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _check_yaml_events(raw: bytes) -> None:
    """One pass over the parser's events, before anything is built: no alias, no anchor (so no
    node is ever shared, let alone expanded), and no collection nested deeper than MAX_DEPTH."""
    depth = 0
    for event in yaml.parse(raw, Loader=_Loader):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _malformed("YAML anchors and aliases are not accepted")
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise _too_deep()
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def check_depth(document: Any) -> None:
    """Walk containers only (scalars are most of a document), without recursion."""
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _too_deep()
        children = value.values() if isinstance(value, dict) else value
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))


def parse_documents(raw: bytes, yaml_body: bool) -> list[Any]:
    """Every document of a body: a YAML stream, a JSON object, or a JSON list of objects."""
    if not raw.strip():
        raise ApiError(400, "MalformedBody", "the body is empty", "body")
    try:
        if yaml_body:
            _check_yaml_events(raw)
            docs = [d for d in yaml.load_all(raw, Loader=_Loader) if d is not None]
        else:
            parsed = json.loads(raw, parse_constant=_refuse_constant)
            docs = parsed if isinstance(parsed, list) else [parsed]
            listed = isinstance(parsed, dict) and str(parsed.get("kind", "")).endswith("List")
            if listed and isinstance(parsed.get("items"), list):
                docs = parsed["items"]
    except yaml.YAMLError as err:
        raise _malformed(str(err).splitlines()[0]) from None
    except RecursionError:
        raise _too_deep() from None
    except (ValueError, UnicodeDecodeError) as err:  # ints past Python's digit limit, bad UTF-8, ...
        raise _malformed(str(err)[:200]) from None
    for doc in docs:
        if isinstance(doc, dict | list):
            check_depth(doc)
    if not docs:
        raise ApiError(400, "MalformedBody", "the body holds no document", "body")
    return docs


def documents() -> list[Any]:
    raw = request.get_data(cache=True)  # over MAX_CONTENT_LENGTH this raises 413
    return parse_documents(raw, request.mimetype in _YAML_TYPES)


def one_document() -> Any:
    docs = documents()
    if len(docs) != 1:
        raise ApiError(400, "MalformedBody", "expected one document", "body")
    return docs[0]
