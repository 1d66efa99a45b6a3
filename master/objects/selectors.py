"""Label selectors as kubectl writes them: `app=web,tier!=db,env in (a,b),gpu,!spot`.

Bounded: a selector is matched against every object listed or watched, so a viewer's
225 KB selector once cost seconds per list. Real ones are a few terms.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from master.errors import bad_request

Matcher = Callable[[Mapping[str, str]], bool]
MAX_SELECTOR_CHARS = 4096
MAX_TERMS = 32
MAX_SET_VALUES = 64  # values of one `in (...)` / `notin (...)`
_SET = re.compile(r"^\s*([^\s!=(),]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_TERM = re.compile(r"^\s*(!?)([^\s!=(),]+)\s*(?:(==|=|!=)\s*([^\s!=(),]*))?\s*$")


def _check_size(selector: str, field: str) -> None:
    if len(selector) > MAX_SELECTOR_CHARS:
        raise bad_request(f"{field} is longer than {MAX_SELECTOR_CHARS} characters", field)


def _split_terms(selector: str) -> list[str]:
    terms, depth, current = [], 0, ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    terms.append(current)
    return [t for t in terms if t.strip()]


def _term(text: str) -> Matcher:
    set_match = _SET.match(text)
    if set_match:
        key, op, values = set_match.group(1), set_match.group(2), set_match.group(3)
        allowed = {v.strip() for v in values.split(",") if v.strip()}
        if len(allowed) > MAX_SET_VALUES:
            raise bad_request(f"a label selector set holds at most {MAX_SET_VALUES} values", "labelSelector")
        if op == "in":
            return lambda labels: labels.get(key) in allowed
        return lambda labels: labels.get(key) not in allowed
    match = _TERM.match(text)
    if not match:
        raise bad_request(f"cannot parse label selector term {text.strip()!r}", "labelSelector")
    negate, key, op, value = match.groups()
    if negate and op:
        raise bad_request(f"'!' takes a bare key, not {text.strip()!r}", "labelSelector")
    if op is None:
        if negate:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    if op == "!=":
        return lambda labels: labels.get(key) != value
    return lambda labels: labels.get(key) == value


@dataclass(frozen=True)
class LabelSelector:
    """A predicate over an object's labels, and the `key=value` terms it requires: what the
    store's label index finds without looking at every object."""

    terms: tuple[Matcher, ...] = ()
    required: dict[str, str] = field(default_factory=dict)

    def __call__(self, labels: Mapping[str, str]) -> bool:
        return all(term(labels) for term in self.terms)


def parse_selector(selector: str | None) -> LabelSelector:
    """An empty selector matches everything."""
    if not selector:
        return LabelSelector()
    _check_size(selector, "labelSelector")
    texts = _split_terms(selector)
    if len(texts) > MAX_TERMS:
        raise bad_request(f"a label selector holds at most {MAX_TERMS} terms", "labelSelector")
    required = {}
    for text in texts:
        match = _TERM.match(text)
        if match and not match.group(1) and match.group(3) in ("=", "=="):
            required[match.group(2)] = match.group(4)
    return LabelSelector(tuple(_term(t) for t in texts), required)


# Field selectors, as Kubernetes supports them for every kind: a few fields, = / == / !=.
FIELDS = {"metadata.name": ("metadata", "name"), "metadata.namespace": ("metadata", "namespace"),
          "spec.nodeName": ("spec", "nodeName"), "status.phase": ("status", "phase")}
_FIELD_TERM = re.compile(r"^\s*([A-Za-z.]+)\s*(==|=|!=)\s*([^\s,]*)\s*$")


def _field(obj: Mapping, path: tuple[str, str]) -> str:
    return str((obj.get(path[0]) or {}).get(path[1]) or "")


def parse_field_selector(selector: str | None) -> tuple[Callable[[Mapping], bool], dict[str, str]]:
    """(matcher of whole objects, the fields pinned with = or ==); 400 naming fieldSelector if bad."""
    if not selector or not selector.strip():
        return (lambda _obj: True), {}
    _check_size(selector, "fieldSelector")
    tests: list[tuple[tuple[str, str], bool, str]] = []
    pinned: dict[str, str] = {}
    if selector.count(",") >= MAX_TERMS:
        raise bad_request(f"a field selector holds at most {MAX_TERMS} terms", "fieldSelector")
    for term in selector.split(","):
        match = _FIELD_TERM.match(term)
        if not match or match.group(1) not in FIELDS:
            raise bad_request(f"invalid field selector term {term.strip()!r}: use "
                              f"{', '.join(FIELDS)} with =, == or !=", "fieldSelector")
        field, op, value = match.groups()
        tests.append((FIELDS[field], op != "!=", value))
        if op != "!=":
            pinned[field] = value
    return (lambda obj: all((_field(obj, path) == value) == equal for path, equal, value in tests)), pinned
