"""JSON Patch (RFC 6902), as `kubectl patch --type json` sends it: a list of operations.

Pure and bounded: at most MAX_OPERATIONS operations; a path that does not resolve, a failed
`test`, or a malformed operation is a 4xx naming the operation, never a 500.
"""

from __future__ import annotations

import copy
from typing import Any

from master.errors import ApiError

MAX_OPERATIONS = 1000


def _bad(index: int, message: str) -> ApiError:
    return ApiError(422, "Invalid", f"patch operation {index}: {message}", f"body[{index}]")


def _tokens(path: Any, index: int) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise _bad(index, f"path {path!r} must be a JSON pointer (\"/a/b\")")
    return [t.replace("~1", "/").replace("~0", "~") for t in path.split("/")[1:]] if path else []


def _parent(document: Any, tokens: list[str], index: int) -> tuple[Any, str]:
    if not tokens:
        raise _bad(index, "the whole document cannot be the target")
    node = document
    for token in tokens[:-1]:
        node = _child(node, token, index)
    return node, tokens[-1]


def _index(token: str) -> bool:
    """An array index as RFC 6901 writes one: ASCII digits (str.isdigit takes "²", which int refuses)."""
    return token.isascii() and token.isdigit()


def _child(node: Any, token: str, index: int) -> Any:
    if isinstance(node, dict) and token in node:
        return node[token]
    if isinstance(node, list) and _index(token) and int(token) < len(node):
        return node[int(token)]
    raise _bad(index, f"path element {token!r} does not exist")


def _position(container: list[Any], key: str, index: int, adding: bool) -> int:
    if adding and key == "-":
        return len(container)
    if not _index(key) or int(key) > len(container) - (0 if adding else 1):
        raise _bad(index, f"array index {key!r} is out of range")
    return int(key)


def _get(document: Any, tokens: list[str], index: int) -> Any:
    node = document
    for token in tokens:
        node = _child(node, token, index)
    return node


def _remove(document: Any, tokens: list[str], index: int) -> Any:
    container, key = _parent(document, tokens, index)
    if isinstance(container, dict):
        if key not in container:
            raise _bad(index, f"path element {key!r} does not exist")
        return container.pop(key)
    if isinstance(container, list):
        return container.pop(_position(container, key, index, adding=False))
    raise _bad(index, "the target's parent is not an object or array")


def _add(document: Any, tokens: list[str], value: Any, index: int) -> None:
    container, key = _parent(document, tokens, index)
    if isinstance(container, dict):
        container[key] = value
    elif isinstance(container, list):
        container.insert(_position(container, key, index, adding=True), value)
    else:
        raise _bad(index, "the target's parent is not an object or array")


def json_patch(document: Any, operations: Any) -> Any:
    """`document` with `operations` applied, all or none (the input is not changed)."""
    if not isinstance(operations, list):
        raise ApiError(400, "Invalid", "a JSON patch is a list of operations", "body")
    if len(operations) > MAX_OPERATIONS:
        raise ApiError(400, "Invalid", f"a JSON patch has at most {MAX_OPERATIONS} operations", "body")
    result = copy.deepcopy(document)
    for index, operation in enumerate(operations):
        if not isinstance(operation, dict) or not isinstance(operation.get("op"), str):
            raise _bad(index, "an operation is an object with an \"op\"")
        op, tokens = operation["op"], _tokens(operation.get("path"), index)
        if op in ("add", "replace", "test") and "value" not in operation:
            raise _bad(index, f"{op} needs a value")
        if op == "add":
            _add(result, tokens, copy.deepcopy(operation["value"]), index)
        elif op == "remove":
            _remove(result, tokens, index)
        elif op == "replace":
            _remove(result, tokens, index)
            _add(result, tokens, copy.deepcopy(operation["value"]), index)
        elif op in ("move", "copy"):
            source = _tokens(operation.get("from"), index)
            if op == "move":
                value = _remove(result, source, index)
            else:
                value = copy.deepcopy(_get(result, source, index))
            _add(result, tokens, value, index)
        elif op == "test":
            if _get(result, tokens, index) != operation["value"]:
                raise _bad(index, f"test failed: {operation.get('path')} is not {operation['value']!r}")
        else:
            raise _bad(index, f"unknown op {op!r} (add, remove, replace, move, copy, test)")
    return result
