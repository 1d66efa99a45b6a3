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
# The grammar is one regular expression, which the parser holds a selector to and the OpenAPI
# document publishes as the parameter's pattern: whatever it allows is read, nothing else is.
# Written for both Python's and ECMA's engines (no \s, whose classes differ), and so that no run of
# blanks can be split two ways (a failing match stays linear).
_KEY = r"[^ \t!=(),]+"
_SET_TERM = rf"{_KEY}[ \t]+(?:in|notin)[ \t]+\([^(),]*(?:,[^(),]*){{0,{MAX_SET_VALUES - 1}}}\)[ \t]*"
_KEY_TERM = rf"!?{_KEY}[ \t]*|{_KEY}[ \t]*(?:==|=|!=)[ \t]*(?:[^ \t!=(),]+[ \t]*)?"
_LABEL_TERM = rf"[ \t]*(?:{_SET_TERM}|{_KEY_TERM})?"
LABEL_SELECTOR_PATTERN = rf"^{_LABEL_TERM}(?:,{_LABEL_TERM}){{0,{MAX_TERMS - 1}}}$"
_SET = re.compile(r"^[ \t]*([^ \t!=(),]+)[ \t]+(in|notin)[ \t]+\(([^)]*)\)[ \t]*$")
_TERM = re.compile(r"^[ \t]*(!?)([^ \t!=(),]+)[ \t]*(?:(==|=|!=)[ \t]*([^ \t!=(),]*))?[ \t]*$")


def _check_size(selector: str, field: str) -> None:
    if len(selector) > MAX_SELECTOR_CHARS:
        raise bad_request(f"{field} is longer than {MAX_SELECTOR_CHARS} characters", field)


def _check_grammar(selector: str, pattern: re.Pattern[str], field: str, example: str) -> None:
    """`fullmatch`: Python's `$` also matches before a final newline."""
    if not pattern.fullmatch(selector):
        raise bad_request(f"{field} {selector[:100]!r} is not a selector: write terms like {example}, at "
                          f"most {MAX_TERMS}", field)


def _split_terms(selector: str) -> list[str]:
    """Commas outside parentheses (the grammar allows no parenthesis within a set's)."""
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
    return [t for t in terms if t.strip(" \t")]


def _term(text: str) -> Matcher:
    set_match = _SET.match(text)
    if set_match:
        key, op, values = set_match.group(1), set_match.group(2), set_match.group(3)
        allowed = {v.strip(" \t") for v in values.split(",") if v.strip(" \t")}
        if op == "in":
            return lambda labels: labels.get(key) in allowed
        return lambda labels: labels.get(key) not in allowed
    match = _TERM.match(text)
    assert match, text  # the grammar was checked whole
    negate, key, op, value = match.groups()
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
    _check_grammar(selector, _LABEL_SELECTOR, "labelSelector", "app=web,tier!=db,env in (a,b),gpu,!spot")
    texts = _split_terms(selector)
    required = {}
    for text in texts:
        match = _TERM.match(text)
        if match and not match.group(1) and match.group(3) in ("=", "=="):
            required[match.group(2)] = match.group(4)
    return LabelSelector(tuple(_term(t) for t in texts), required)


# Field selectors, as Kubernetes supports them for every kind: a few fields, = / == / !=.
FIELDS = {"metadata.name": ("metadata", "name"), "metadata.namespace": ("metadata", "namespace"),
          "spec.nodeName": ("spec", "nodeName"), "status.phase": ("status", "phase")}
_FIELD_NAMES = "|".join(re.escape(name) for name in FIELDS)
_FIELD_TERM_PATTERN = rf"[ \t]*(?:{_FIELD_NAMES})[ \t]*(?:==|=|!=)[ \t]*(?:[^ \t,]+[ \t]*)?"
FIELD_SELECTOR_PATTERN = rf"^(?:[ \t]*|{_FIELD_TERM_PATTERN}(?:,{_FIELD_TERM_PATTERN}){{0,{MAX_TERMS - 1}}})$"
_FIELD_TERM = re.compile(r"^[ \t]*([A-Za-z.]+)[ \t]*(==|=|!=)[ \t]*([^ \t,]*)[ \t]*$")


def _field(obj: Mapping, path: tuple[str, str]) -> str:
    return str((obj.get(path[0]) or {}).get(path[1]) or "")


def parse_field_selector(selector: str | None) -> tuple[Callable[[Mapping], bool], dict[str, str]]:
    """(matcher of whole objects, the fields pinned with = or ==); 400 naming fieldSelector if bad."""
    if not selector:
        return (lambda _obj: True), {}
    _check_size(selector, "fieldSelector")
    _check_grammar(selector, _FIELD_SELECTOR, "fieldSelector", f"metadata.name=web ({', '.join(FIELDS)} "
                   "with =, == or !=)")
    if not selector.strip(" \t"):
        return (lambda _obj: True), {}
    tests: list[tuple[tuple[str, str], bool, str]] = []
    pinned: dict[str, str] = {}
    for term in selector.split(","):
        match = _FIELD_TERM.match(term)
        assert match and match.group(1) in FIELDS, term  # the grammar was checked whole
        field, op, value = match.groups()
        tests.append((FIELDS[field], op != "!=", value))
        if op != "!=":
            pinned[field] = value
    return (lambda obj: all((_field(obj, path) == value) == equal for path, equal, value in tests)), pinned


_LABEL_SELECTOR = re.compile(LABEL_SELECTOR_PATTERN.removeprefix("^").removesuffix("$"))
_FIELD_SELECTOR = re.compile(FIELD_SELECTOR_PATTERN.removeprefix("^").removesuffix("$"))
