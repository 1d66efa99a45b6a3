"""A watch that outlives one stream: it resumes on another master and relists on 410.

Client.watch is a single HTTP stream; a user running `berth watch` wants the
events until they stop it, across master failovers and window expiry. This loop
keeps the last revision seen (bookmarks included) and always resumes from it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from typing import Any

from berth.client import Client, KindRef, kind_info
from berth.errors import ApiError, Unreachable
from berth.objects import Obj

Key = tuple[str, str]

MAX_STREAM_SECONDS = 3600  # the master refuses longer timeoutSeconds


def _key(obj: Obj) -> Key:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def _rv(obj: Obj) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


def _list_revision(listing: Obj) -> int:
    return int((listing.get("metadata") or {}).get("resourceVersion") or 0)


def relist_events(
    kind: str, known: dict[Key, int], items: list[Obj], since: int, revision: int
) -> list[Obj]:
    """The events a client missed while its window expired, reconstructed from a fresh list.

    Objects changed after `since` come as ADDED (unknown before) or MODIFIED; objects
    seen before and now absent come as DELETED at the list's revision. `known` is
    updated in place to the list's view.
    """
    events: list[Obj] = []
    current = {_key(obj): obj for obj in items}
    for key, obj in current.items():
        rv = _rv(obj)
        if key in known:
            if known[key] != rv:
                events.append({"type": "MODIFIED", "revision": rv, "object": obj})
        elif rv > since:
            events.append({"type": "ADDED", "revision": rv, "object": obj})
    for key in [k for k in known if k not in current]:
        namespace, name = key
        gone: Obj = {"apiVersion": "berth/v1", "kind": kind, "metadata": {"name": name}}
        if namespace:
            gone["metadata"]["namespace"] = namespace
        events.append({"type": "DELETED", "revision": revision, "object": gone})
    known.clear()
    known.update({key: _rv(obj) for key, obj in current.items()})
    events.sort(key=lambda e: e["revision"])
    return events


def follow(
    client: Client,
    kind: KindRef,
    namespace: str | None = None,
    *,
    all_namespaces: bool = False,
    label_selector: str | None = None,
    since: int | None = None,
    listed: list[Obj] | None = None,
    timeout: float | None = None,
    give_up_after: float = 30.0,
    notice: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Obj]:
    """ADDED/MODIFIED/DELETED events (never bookmarks) until `timeout` seconds pass.

    Without `since` it lists first and watches from the list's revision, so no event is
    lost between connecting and the first bookmark; with `since`, `listed` are the objects of the
    list it came from, so a relist after a 410 reports those gone meanwhile as DELETED. It gives
    up (re-raising) only when no master could be reached for `give_up_after` seconds.
    """
    info = kind_info(kind)
    say = notice or (lambda message: None)
    deadline = None if timeout is None else clock() + timeout
    scope: dict[str, Any] = {
        "all_namespaces": all_namespaces,
        "label_selector": label_selector,
    }
    known: dict[Key, int] = {_key(obj): _rv(obj) for obj in listed or []}

    def relist() -> tuple[int, list[Obj]]:
        listing = client.list(info, namespace, **scope)
        return _list_revision(listing), listing.get("items") or []

    def left() -> float | None:
        return None if deadline is None else deadline - clock()

    failing_since: float | None = None
    if since is None:
        while True:
            try:
                since, items = relist()
                break
            except (Unreachable, ApiError) as err:
                if isinstance(err, ApiError) and err.status != 503:
                    raise
                failing_since = failing_since if failing_since is not None else clock()
                remaining = left()
                if clock() - failing_since > give_up_after or (remaining is not None and remaining <= 0):
                    raise
                sleep(1.0)
        known = {_key(obj): _rv(obj) for obj in items}
        failing_since = None

    while True:
        remaining = left()
        if remaining is not None and remaining <= 0:
            return
        stream_seconds = (
            None if remaining is None else min(MAX_STREAM_SECONDS, max(1, math.ceil(remaining)))
        )
        started = clock()
        try:
            for event in client.watch(info, namespace, since=since, timeout_seconds=stream_seconds,
                                      **scope):
                failing_since = None
                revision = int(event.get("revision") or since)
                if event.get("type") == "BOOKMARK":
                    since = max(since, revision)
                else:
                    obj = event.get("object") or {}
                    if event.get("type") == "DELETED":
                        known.pop(_key(obj), None)
                    else:
                        known[_key(obj)] = _rv(obj)
                    since = max(since, revision)
                    yield event
                remaining = left()
                if remaining is not None and remaining <= 0:
                    return
        except ApiError as err:
            if err.status == 410:
                say(f"revision {since} has left the server's window; listing again")
                revision, items = relist()
                yield from relist_events(info.kind, known, items, since, revision)
                since = revision
                continue
            if err.status != 503:
                raise
            failure: Exception = err
        except Unreachable as err:
            failure = err
        else:
            # The server ended the stream at its timeout: reconnect from where we are.
            if clock() - started < 0.5:
                sleep(0.5)  # a stream that ends at once must not become a busy loop
            continue
        failing_since = failing_since if failing_since is not None else clock()
        if clock() - failing_since > give_up_after:
            raise failure
        say(f"watch interrupted ({failure}); resuming from revision {since}")
        remaining = left()
        sleep(1.0 if remaining is None else max(0.0, min(1.0, remaining)))
