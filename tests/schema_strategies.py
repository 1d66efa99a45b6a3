"""Hypothesis strategies that build documents valid for a JSON schema, as pydantic writes them.

For property tests of the API (tests/test_generated_documents.py): every kind's schema gives
documents that pass its field constraints, and whatever the API answers them must be 2xx or
4xx. Only the JSON-schema subset pydantic emits is covered: $ref/$defs, const, enum, anyOf,
objects (properties, required, additionalProperties, propertyNames), arrays, strings with
pattern and lengths, numbers with bounds, booleans, null.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

MAX_ITEMS = 3  # lists and maps: a few entries say as much as many, and keep bodies small
MAX_TEXT = 24


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    return _strategy(schema, schema.get("$defs") or {})


def _strategy(schema: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[Any]:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return st.deferred(lambda: _strategy(defs[name], defs))
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for combined in ("anyOf", "oneOf"):
        if combined in schema:
            return st.one_of([_strategy(s, defs) for s in schema[combined]])
    if "allOf" in schema:
        return _strategy({**schema["allOf"][0], **{k: v for k, v in schema.items() if k != "allOf"}}, defs)
    kind = schema.get("type")
    if kind == "string":
        return _text(schema)
    if kind == "integer":
        return st.integers(schema.get("minimum", schema.get("exclusiveMinimum", -(2**31) - 1) + 1
                                      if "minimum" not in schema else schema["minimum"]),
                           schema.get("maximum", 2**31))
    if kind == "number":
        return st.floats(schema.get("minimum"), schema.get("maximum"), allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        low = schema.get("minItems", 0)
        return st.lists(_strategy(schema.get("items") or {}, defs), min_size=low,
                        max_size=max(low, min(schema.get("maxItems", MAX_ITEMS), MAX_ITEMS)))
    if kind == "object" or "properties" in schema:
        return _object(schema, defs)
    return st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=MAX_TEXT))


def _text(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    low, high = schema.get("minLength", 0), schema.get("maxLength", MAX_TEXT)
    if "pattern" in schema:
        made = st.from_regex(schema["pattern"], fullmatch=True)
    else:
        made = st.text(min_size=low, max_size=max(low, min(high, MAX_TEXT)))
    return made.filter(lambda text: low <= len(text) <= high)


def _object(schema: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    properties = schema.get("properties") or {}
    if properties:
        required = set(schema.get("required") or [])
        return st.fixed_dictionaries(
            {k: _strategy(v, defs) for k, v in properties.items() if k in required},
            optional={k: _strategy(v, defs) for k, v in properties.items() if k not in required})
    values = schema.get("additionalProperties")
    if not isinstance(values, dict):
        return st.just({})
    keys = _text({"maxLength": MAX_TEXT, **(schema.get("propertyNames") or {})})
    return st.dictionaries(keys, _strategy(values, defs), max_size=MAX_ITEMS)
