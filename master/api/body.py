"""Reading request bodies: JSON, or YAML (one or many documents), in bounded time and memory.

Callers authorize first, then read: a role that may not write never gets its body parsed.
What is parsed is then bounded by the body's size alone:
- YAML aliases and anchors are refused (a 527-byte "billion laughs" once grew to 1.1 GB
  before its 403);
- documents nest at most MAX_DEPTH deep (the deepest object Berth stores nests about ten;
  deeper input only feeds recursion in the parsers and in merge patches);
- numbers are what JSON allows, at most MAX_NUMBER_CHARS long: YAML 1.1's hexadecimal,
  octal and base-60 forms are read as strings (base 60 costs time quadratic in its length,
  and a hexadecimal integer has no digit limit, so it could not even be printed back).
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

import yaml
from flask import request
from pydantic import BaseModel, ValidationError

from master.errors import ApiError
from master.objects.validate import error_from_validation

MAX_DEPTH = 32
MAX_NUMBER_CHARS = 32  # a 64-bit integer has 20; quantities longer than this are refused anyway
_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
_INT = re.compile(r"^[-+]?(0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+\.[0-9]*|[0-9]+(\.[0-9]*)?[eE][-+]?[0-9]+)$")  # no .inf, .nan
_INT_TAG, _FLOAT_TAG, _TIMESTAMP_TAG = (f"tag:yaml.org,2002:{t}" for t in ("int", "float", "timestamp"))


def _number(text: str, convert: Any) -> Any:
    if len(text) > MAX_NUMBER_CHARS:
        raise ValueError(f"a number of more than {MAX_NUMBER_CHARS} characters")
    return convert(text)


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc] - libyaml when built in
    """Safe YAML with JSON's numbers: no base 60, hexadecimal or octal, no timestamps (read as
    strings, as Kubernetes' YAML does), and bounded number lengths even under an explicit tag."""

    def construct_number(self, node: yaml.ScalarNode, pattern: re.Pattern[str], convert: Any) -> Any:
        text = self.construct_scalar(node)
        if not pattern.match(text):
            raise yaml.constructor.ConstructorError(None, None, f"{text[:40]!r} is not a decimal number",
                                                    node.start_mark)
        return _number(text, convert)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_INT_TAG, _FLOAT_TAG, _TIMESTAMP_TAG)]
    for first, resolvers in _Loader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver(_INT_TAG, _INT, list("-+0123456789"))
_Loader.add_implicit_resolver(_FLOAT_TAG, _FLOAT, list("-+.0123456789"))
_Loader.add_constructor(_INT_TAG, lambda loader, node: loader.construct_number(node, _INT, int))
_Loader.add_constructor(_FLOAT_TAG, lambda loader, node: loader.construct_number(node, _FLOAT, float))


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


def parse_documents(raw: bytes, yaml_body: bool, whole: bool = False) -> list[Any]:
    """Every document of a body: a YAML stream, a JSON object, or a JSON list of objects
    (`whole`: a JSON list is one document, as a JSON Patch is)."""
    if not raw.strip():
        raise ApiError(400, "MalformedBody", "the body is empty", "body")
    try:
        if yaml_body:
            _check_yaml_events(raw)
            docs = [d for d in yaml.load_all(raw, Loader=_Loader) if d is not None]
        else:
            parsed = json.loads(raw, parse_constant=_refuse_constant,
                                parse_int=lambda text: _number(text, int),
                                parse_float=lambda text: _number(text, float))
            docs = parsed if isinstance(parsed, list) and not whole else [parsed]
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
    """The body's one document (a JSON Patch, a list, counts as one)."""
    raw = request.get_data(cache=True)
    docs = parse_documents(raw, request.mimetype in _YAML_TYPES,
                           whole=request.mimetype == "application/json-patch+json")
    if len(docs) != 1:
        raise ApiError(400, "MalformedBody", "expected one document", "body")
    return docs[0]


M = TypeVar("M", bound=BaseModel)


def validated(model: type[M]) -> M:
    """The request's one document as `model` (an agent's report, a relayed batch), or a 4xx
    naming the fields that are wrong."""
    document = one_document()
    try:
        return model.model_validate(document)
    except ValidationError as err:
        raise error_from_validation(err) from None
    except Exception as err:  # a validator's own bug must be the client's 400, not a 500
        raise ApiError(400, "Invalid", f"cannot be read: {err.__class__.__name__}: {err}"[:1000],
                       "body") from None
