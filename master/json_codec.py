"""Compact JSON for the master's hot paths: every response, the object-size check, watch frames,
audit lines and the agents' relayed reports.

orjson encodes a pod in a fifteenth of json.dumps's time. It writes UTF-8 where json.dumps escapes
to ASCII (both are JSON; sizes are now UTF-8 bytes, what a store keeps), and it refuses what JSON
cannot hold exactly (integers past 64 bits): those, which no validated object carries, take
json.dumps's path, so nothing that encoded before fails now. A NaN or an infinity (never in an
object: the body parser refuses them) is written as null, where json.dumps wrote a token that is
not JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS  # json.dumps's habit: an int key is written as its digits


def compact(value: Any, default: Callable[[Any], Any] | None = None) -> bytes:
    """`default` turns what neither library knows into something they do (Flask's provider passes
    its own, for dates and Decimals)."""
    try:
        return orjson.dumps(value, default=default, option=_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError: a value outside what orjson encodes exactly
        return json.dumps(value, separators=(",", ":"), default=default).encode()
