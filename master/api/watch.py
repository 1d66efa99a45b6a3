"""`GET /api/v1/watch`: the ordered event stream as JSON lines, resumable from a revision.

JSON lines (application/x-ndjson) are the default; a client whose Accept header asks for
text/event-stream (the web page, reading it with fetch) gets the same events as server-sent
events: `event:` the type, `id:` the revision (what `since`, or a Last-Event-ID header, resumes
from), `data:` the JSON line, and a `: heartbeat` comment with each idle bookmark.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

from flask import Blueprint, Response, current_app, request, stream_with_context

from master.api.auth import authorize
from master.api.context import client_gone, context, principal
from master.api.fanout import (
    Selection,
    Watch,
    bookmark_frame,
    expired_frame,
    fanout_of,
    frames,
    keepalive_frame,
)
from master.api.resources import shown
from master.errors import ApiError, bad_request
from master.json_codec import compact
from master.objects.kinds import BY_ANY_NAME, KINDS
from master.objects.selectors import parse_selector
from master.store.window import WindowExpired

bp = Blueprint("watch", __name__)
MAX_WATCH_SECONDS = 3600.0
CHECK_SECONDS = 1.0  # how soon a stream notices its client went away (and gives back its slot)
JSON_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")


def _seconds(name: str, default: float) -> float:
    """A number as JSON writes one: float() would also take "1_0", " 5" and "infinity"."""
    value = request.args.get(name)
    if value is None:
        return default
    if not JSON_NUMBER.fullmatch(value):
        raise bad_request(f"{name} must be a number of seconds", name)
    seconds = float(value)
    if not 0 <= seconds <= MAX_WATCH_SECONDS:
        raise bad_request(f"{name} must be between 0 and {MAX_WATCH_SECONDS:g}", name)
    return seconds


def _line(payload: dict) -> bytes:
    return compact(payload) + b"\n"


def sse_frame(payload: dict) -> bytes:
    """One server-sent event: its type, its revision as the id (none for an ERROR), its JSON on one
    line (JSON escapes every newline and carriage return a string holds, so no value can end the
    frame early)."""
    revision = payload.get("revision")
    head = f"event: {payload['type']}\n" + (f"id: {revision}\n" if revision is not None else "")
    return head.encode() + b"data: " + compact(payload) + b"\n\n"


def wants_event_stream() -> bool:
    """text/event-stream when the Accept header prefers it to JSON lines (and lists it at all)."""
    accept = request.accept_mimetypes
    return accept["text/event-stream"] > 0 and accept.best_match(
        ["application/x-ndjson", "text/event-stream"]) == "text/event-stream"


@bp.get("/api/v1/watch")
def watch() -> Response:
    kind_name = request.args.get("kind", "")
    info = BY_ANY_NAME.get(kind_name)
    if info is None:
        raise bad_request(f"unknown kind {kind_name!r}: name one as {', '.join(KINDS)}, or by its plural, "
                          "singular or short name", "kind")
    who = principal()
    namespace = request.args.get("namespace") or None
    authorize(who, "watch", info.kind, namespace=namespace if info.namespaced else "")
    matches = parse_selector(request.args.get("labelSelector"))
    timeout = _seconds("timeoutSeconds", 300.0)
    event_stream = wants_event_stream()
    since_arg = request.args.get("since")
    if since_arg is None and event_stream:
        since_arg = request.headers.get("Last-Event-ID")  # what a reconnecting SSE client sends
    store = context().store
    if since_arg is None:
        _, since = store.read(lambda state: None)
    else:
        if not (since_arg.isascii() and since_arg.isdigit() and len(since_arg) <= 19):
            raise bad_request("since must be a revision (a whole number)",
                              "since" if "since" in request.args else "Last-Event-ID")
        since = int(since_arg)
    try:
        store.events_after(since, wait=0)
    except WindowExpired as err:
        raise ApiError(410, "Expired", str(err), "since") from None
    bookmark_every = context().watch_bookmark_seconds
    gone = client_gone()
    release = context().streams.take(who.name)
    line = sse_frame if event_stream else _line
    selection = Selection(info.kind, namespace, request.args.get("labelSelector") or "", who,
                          event_stream)

    def show(obj: dict) -> dict:
        return shown(obj, who)

    channel = getattr(request.environ.get("waitress.client_disconnected"), "__self__", None)
    handed = channel is not None and request.method == "GET"  # HEAD: waitress sends no body

    def fanned() -> Iterator[bytes]:
        """The first bookmark through waitress (which sends the headers first), then the master's
        fan-out thread writes the stream to the connection while this thread waits for its end."""
        yield bookmark_frame(line, since)
        deadline = time.monotonic() + timeout
        watch = Watch(selection, matches, show, line, since, deadline, channel.write_soon,
                      lambda: channel.total_outbufs_len, gone,
                      chunked=request.environ.get("SERVER_PROTOCOL") == "HTTP/1.1")
        fanout = fanout_of(current_app._get_current_object(), store, bookmark_every)  # type: ignore[attr-defined]
        fanout.add(watch)
        try:
            watch.finished.wait(timeout + 2 * CHECK_SECONDS)
        finally:
            fanout.remove(watch)

    def threaded() -> Iterator[bytes]:
        """Without waitress's connection at hand: this thread waits for the window and writes."""
        cursor, deadline = since, time.monotonic() + timeout
        yield bookmark_frame(line, cursor)
        said = time.monotonic()
        while (left := deadline - time.monotonic()) > 0 and not gone():
            try:
                events = store.events_after(cursor, wait=min(left, CHECK_SECONDS))
            except WindowExpired as err:
                yield expired_frame(line, err)
                return
            body, error = frames(events, selection, matches, show, line)
            if events:
                cursor = events[-1].revision
            if error is not None:
                yield body + error
                return
            if not body and not events and time.monotonic() - said >= bookmark_every:
                body = keepalive_frame(line, cursor, event_stream)
            if body:
                said = time.monotonic()
                yield body

    response = Response(stream_with_context(fanned() if handed else threaded()),
                        mimetype="text/event-stream" if event_stream else "application/x-ndjson",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    response.call_on_close(release)
    return response
