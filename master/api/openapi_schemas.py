"""The JSON Schemas of the OpenAPI document, read off the pydantic models that validate, then made
to say what those models refuse: pure functions over plain dicts, so each is table-tested.

pydantic's `extra="forbid"` already writes `additionalProperties: false`; what it leaves open is a
mapping whose keys have a pattern (labels, a ConfigMap's keys): `patternProperties` alone lets any
other key through, where the model refuses it.
"""

from __future__ import annotations

import copy
from typing import Any

Schema = dict[str, Any]

ERROR: Schema = {
    "type": "object",
    "description": "every error the API sends (master/errors.py ApiError.body)",
    "additionalProperties": False,
    "required": ["error", "field", "reason"],
    "properties": {
        "error": {"type": "string", "description": "what went wrong, for a person"},
        "field": {"type": ["string", "null"], "description": "the field, parameter or header at fault"},
        "reason": {"type": "string", "description": "for programs: NotFound, Conflict..."},
        "details": {"type": "array", "description": "one entry a field, when a body's fields are wrong",
                    "items": {"type": "object", "additionalProperties": False,
                              "required": ["field", "error", "reason"],
                              "properties": {"field": {"type": "string"}, "error": {"type": "string"},
                                             "reason": {"type": "string"},
                                             "document": {"type": "integer", "minimum": 0}}}},
    },
}


JSON_VALUE_REF: Schema = {"$ref": "#/components/schemas/JsonValue"}


def number_bounds(max_chars: int) -> Schema:
    """The integers written in at most `max_chars` characters, a minus sign included."""
    return {"maximum": 10 ** max_chars - 1, "minimum": -(10 ** (max_chars - 1) - 1)}


def json_value(max_number_chars: int) -> Schema:
    """Any JSON value the body parser reads (body.py): its integers at most `max_number_chars`
    characters long (Python writes every float in fewer), the rest as JSON has it. What a field
    typed `Any` holds, and a write's `status`, which is dropped unread but parsed all the same."""
    return {"description": f"any JSON value; integers of at most {max_number_chars} characters", "anyOf": [
        {"type": ["null", "boolean", "string"]},
        {"type": "integer", **number_bounds(max_number_chars)},
        {"type": "number", "not": {"type": "integer"}},
        {"type": "array", "items": JSON_VALUE_REF},
        {"type": "object", "additionalProperties": JSON_VALUE_REF}]}


def closed(schema: Any) -> Any:
    """`schema` with `additionalProperties: false` on every mapping whose keys must match a pattern
    (and that says nothing of other keys): the models refuse any other key. A mapping of anything
    (`dict[str, Any]`) holds JSON values as the parser bounds them."""
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: closed(value) for key, value in schema.items()}
    if "patternProperties" in out and "additionalProperties" not in out and "properties" not in out:
        out["additionalProperties"] = False
    if out.get("additionalProperties") is True:
        out["additionalProperties"] = JSON_VALUE_REF
    return out


def bounded_numbers(schema: Any, max_chars: int) -> Any:
    """`schema` with each number it leaves unbounded bounded as the body parser reads numbers: at
    most `max_chars` characters (body.MAX_NUMBER_CHARS), so a longer one is refused before any
    model sees it (a quantity's integer, a file mode)."""
    if isinstance(schema, list):
        return [bounded_numbers(item, max_chars) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: bounded_numbers(value, max_chars) for key, value in schema.items()}
    if out.get("type") in ("integer", "number"):
        bounds = number_bounds(max_chars)
        if "maximum" not in out and "exclusiveMaximum" not in out:
            out["maximum"] = bounds["maximum"]
        if "minimum" not in out and "exclusiveMinimum" not in out:
            out["minimum"] = bounds["minimum"]
    return out


def written(schema: Schema) -> Schema:
    """A kind's schema as a write takes it: `kind` may be left out (the path names it), and `status`
    is whatever was sent, dropped unread (validate.validate_object: a fetched object can be sent
    back; status is written through the status subresource alone)."""
    out = copy.deepcopy(schema)
    out["required"] = [name for name in out.get("required", []) if name != "kind"]
    properties = out.get("properties", {})
    if "status" in properties:
        properties["status"] = {**JSON_VALUE_REF, "description": "ignored on writes: status is written by "
                                "the system"}
    return out


def with_hidden_values(schema: Schema, field: str) -> Schema:
    """A mapping's values as a reader who may not see them gets them: keys kept, values null
    (auth.redact: a Secret's data for every role but admin)."""
    out = copy.deepcopy(schema)
    values = out["properties"][field]
    for key in ("patternProperties",):
        for pattern, value in values.get(key, {}).items():
            values[key][pattern] = {"anyOf": [value, {"type": "null"}]}
    if isinstance(values.get("additionalProperties"), dict):
        values["additionalProperties"] = {"anyOf": [values["additionalProperties"], {"type": "null"}]}
    values["description"] = "null where the reader's role may not see the value"
    return out
