"""Schemathesis hooks for `python -m bench.fuzz` (loaded by its CLI through SCHEMATHESIS_HOOKS).

A watch streams for `timeoutSeconds` (300 s when not given, up to an hour): each one the fuzzer
sends is cut to WATCH_SECONDS, so a run of thousands of requests ends. Only values the API takes
are shortened; a value it refuses (negative, past 3600, not a number) is sent as generated.
"""

from __future__ import annotations

import re
from typing import Any

import schemathesis

WATCH_PATH = "/api/v1/watch"
WATCH_SECONDS = 0.1  # a number, as the schema has it: a string would make the case read as invalid
JSON_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")


def shortened(seconds: Any) -> bool:
    """Whether a generated timeoutSeconds is one to cut: absent, or a number the API would wait for
    (as master/api/watch.py reads it: "1_0" and true are refused there, and stay as they are)."""
    if seconds is None:
        return True
    if isinstance(seconds, bool) or not JSON_NUMBER.fullmatch(str(seconds)):
        return False
    return 0.1 < float(seconds) <= 3600


@schemathesis.hook
def before_call(context: schemathesis.HookContext, case: schemathesis.Case, kwargs: dict[str, Any]) -> None:
    if case.operation.path != WATCH_PATH or case.method.upper() != "GET":
        return
    query = dict(case.query or {})
    if shortened(query.get("timeoutSeconds")):
        query["timeoutSeconds"] = WATCH_SECONDS
        case.query = query
