"""One bad object must never stop a round for the others.

Controllers look at every object each round. An object that makes the work raise (garbage
an old journal kept, a field a check missed) once stopped the node-lifecycle, scheduler and
runtime rounds for the whole cluster. Functions that work through many objects take a
`broken` callback instead: each object that raises is handed to it and left out, and the
rest are done. Pure callers (tests, benchmarks) pass `reraise`; controllers pass their
quarantine, which logs each bad object once and goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")
Broken = Callable[[Any, Exception], None]  # (the object, what it raised)


def reraise(_obj: Any, err: Exception) -> None:
    raise err


def each(items: Iterable[T], work: Callable[[T], R], broken: Broken) -> list[R]:
    """`work(item)` for every item; an item that raises goes to `broken` and is left out."""
    done = []
    for item in items:
        try:
            done.append(work(item))
        except Exception as err:
            broken(item, err)
    return done


def describe(obj: Any) -> str:
    """`Kind namespace/name` of a stored object, as well as a broken one allows."""
    try:
        meta = obj["metadata"]
        where = f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]
        return f"{obj.get('kind', 'object')} {where}"
    except Exception:
        return repr(obj)[:100]
