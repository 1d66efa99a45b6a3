"""Exec with a terminal or a stream of input, and port-forward: sessions that outlive a request.

waitress reads a request's whole body before the app runs, so one HTTP request cannot carry
keystrokes in while output flows out (Kubernetes upgrades the connection to SPDY or a
WebSocket instead). A session splits the two directions: `POST .../pods/NAME/sessions` starts
the command on the pod's host and answers an id; `GET /api/v1/sessions/ID/output` streams what
it writes, framed (berth/frames.py) and ending with its exit code; `POST .../input` sends bytes
to it (`?eof=true` ends its input); `POST .../resize` changes its terminal; `DELETE` ends it.

A session lives on the master that opened it (its SSH channel is in this process), belongs to
the token that opened it (anyone else is told it does not exist), holds one of that token's
stream slots, and ends when its command ends, its reader goes away, or nobody reads it within
`attach_seconds` of its start.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import TypeVar

from flask import Blueprint, Response, jsonify, request, stream_with_context
from paramiko import SSHException
from pydantic import BaseModel, Field, ValidationError

from berth.containers import container_name
from berth.frames import Stream, end_frame, frame
from berth.objects import Obj
from master.api.auth import authorize
from master.api.body import one_document
from master.api.context import client_gone, context, principal
from master.api.pods import host_error, pool, target, with_warnings
from master.api.session_book import SessionBook
from master.errors import ApiError, bad_request
from master.objects.fields import DnsLabel
from master.objects.kinds import Strict
from master.objects.validate import error_from_validation
from master.runtime.nodes import node_driver
from master.runtime.port_forward import relay_argv
from master.runtime.ssh import Host, SshError

bp = Blueprint("sessions", __name__)
log = logging.getLogger(__name__)
KEEPALIVE_SECONDS = 10.0  # the client's read timeout is longer: a quiet shell is not a dead one
MAX_INPUT = 256 << 10
Parsed = TypeVar("Parsed", bound=BaseModel)


class ExecSession(Strict):
    command: list[str] = Field(min_length=1, max_length=256)
    container: DnsLabel | None = None
    stdin: bool = False  # else its input is closed at once, as `kubectl exec` without -i
    tty: bool = False
    rows: int = Field(default=24, ge=1, le=1000)
    cols: int = Field(default=80, ge=1, le=1000)


class PortForwardSession(Strict):
    port: int = Field(ge=1, le=65535)


class Resize(Strict):
    rows: int = Field(ge=1, le=1000)
    cols: int = Field(ge=1, le=1000)


def _book() -> SessionBook:
    return context().sessions


def _parsed(model: type[Parsed]) -> Parsed:
    try:
        return model.model_validate(one_document())
    except ValidationError as err:
        raise error_from_validation(err) from None


@bp.post("/api/v1/namespaces/<namespace>/pods/<name>/exec/sessions")
def open_exec(namespace: str, name: str) -> tuple[Response, int]:
    authorize(principal(), "create", "Pod", name, subresource="exec", namespace=namespace)
    spec = _parsed(ExecSession)
    host, runtime_name, _container, _pod, node = target(namespace, name, spec.container)
    argv = node_driver(node).exec(runtime_name, spec.command, stdin=spec.stdin, tty=spec.tty)
    return _open(host, node, argv, pty=(spec.rows, spec.cols) if spec.tty else None, stdin=spec.stdin)


@bp.post("/api/v1/namespaces/<namespace>/pods/<name>/portforward/sessions")
def open_port_forward(namespace: str, name: str) -> tuple[Response, int]:
    """To the port as the pod's processes see it (localhost included), not the pod's address.
    `?dryRun=All`: every check (rights, the pod running on its host), no session: so
    `berth port-forward` fails at once, not at its first connection."""
    authorize(principal(), "create", "Pod", name, subresource="portforward", namespace=namespace)
    dry = request.args.get("dryRun")
    if dry not in (None, "All"):
        raise bad_request("dryRun must be All", "dryRun")
    spec = _parsed(PortForwardSession)
    host, _, _container, pod, node = target(namespace, name, None, warn=False)
    pid = _pid(host, node, container_name(pod, pod["spec"]["containers"][0]["name"]), name)
    if dry is not None:
        return jsonify({"port": spec.port, "dryRun": True}), 200
    return _open(host, node, relay_argv(pid, spec.port), pty=None, stdin=True)


def _open(host: Host, node: Obj, argv: list[str], *, pty: tuple[int, int] | None,
          stdin: bool) -> tuple[Response, int]:
    release = context().streams.take(principal().name, node["metadata"]["name"])
    try:
        opened = pool().open(host, argv, pty=pty)
    except SshError as err:
        release()
        raise host_error(node, err) from None
    if not stdin:
        opened.channel.shutdown_write()
    session = _book().add(principal().name, opened, tty=pty is not None, stdin=stdin, release_slot=release)
    return with_warnings(jsonify({"id": session.id, "output": f"/api/v1/sessions/{session.id}/output"})), 201


def _pid(host: Host, node: Obj, runtime_name: str, pod_name: str) -> int:
    try:
        answer = pool().run(host, node_driver(node).pid(runtime_name), timeout=15)
    except SshError as err:
        raise host_error(node, err) from None
    text = answer.text().strip()
    if not answer.ok or not text.isdigit() or int(text) == 0:
        raise ApiError(409, "Conflict", f"pod {pod_name} is not running, nothing listens in it", None)
    return int(text)


@bp.get("/api/v1/sessions/<session_id>/output")
def session_output(session_id: str) -> Response:
    book = _book()
    session = book.attach(session_id, principal().name)
    stopped = client_gone()

    def frames() -> Iterator[bytes]:
        quiet_since = time.monotonic()
        try:
            while not stopped():
                out, err, status = session.opened.read(1.0)
                if out:
                    yield frame(Stream.STDOUT, out)
                if err:
                    yield frame(Stream.STDERR, err)
                if status is not None:
                    yield end_frame(status) if status >= 0 else end_frame(
                        error="the connection to the host closed before the command ended")
                    return
                if out or err:
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since >= KEEPALIVE_SECONDS:
                    quiet_since = time.monotonic()
                    yield frame(Stream.KEEPALIVE)
        except Exception as problem:  # the stream still ends with a frame that says why
            log.exception("session %s: reading the command's output failed", session.id[:6])
            yield end_frame(error=f"the host's channel failed: {problem}")
        finally:
            book.close(session.id)

    response = Response(stream_with_context(frames()), mimetype="application/octet-stream")
    response.call_on_close(lambda: book.close(session.id))
    return response


@bp.post("/api/v1/sessions/<session_id>/input")
def session_input(session_id: str) -> tuple[str, int]:
    session = _book().find(session_id, principal().name)
    if not session.stdin:
        raise ApiError(409, "Conflict", "this session takes no input (open it with stdin: true)", None)
    data = request.get_data(cache=False)
    if len(data) > MAX_INPUT:
        raise ApiError(413, "RequestEntityTooLarge", f"send input in pieces of at most {MAX_INPUT} bytes",
                       "body")
    channel = session.opened.channel
    try:
        channel.settimeout(30.0)  # a command that stops reading must not hold this thread forever
        if data:
            channel.sendall(data)
        if request.args.get("eof", "false").lower() in ("1", "true", "yes"):
            channel.shutdown_write()
    except OSError as err:  # the command ended or stopped reading; its output stream tells the rest
        raise ApiError(410, "Gone", f"session {session_id} takes no more input: {err}", None) from None
    return "", 204


@bp.post("/api/v1/sessions/<session_id>/resize")
def session_resize(session_id: str) -> tuple[str, int]:
    session = _book().find(session_id, principal().name)
    size = _parsed(Resize)
    if not session.tty:
        raise ApiError(409, "Conflict", "this session has no terminal to resize (open it with tty: true)",
                       None)
    try:
        session.opened.channel.resize_pty(width=size.cols, height=size.rows)
    except (SSHException, OSError) as err:  # the command ended meanwhile: its output stream says how
        raise ApiError(410, "Gone", f"session {session_id} has no terminal any more: {err}", None) from None
    return "", 204


@bp.delete("/api/v1/sessions/<session_id>")
def session_close(session_id: str) -> tuple[str, int]:
    _book().find(session_id, principal().name)
    _book().close(session_id)
    return "", 204
