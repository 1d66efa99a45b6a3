"""A pod's logs and exec, as kubectl reaches them: through the API, then over SSH to its host.

Any master answers (each has the runtime's SSH key): these read or act on one
container and change nothing in the store, so they need no leader.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

from flask import Blueprint, Response, g, jsonify, request, stream_with_context
from pydantic import Field, ValidationError

from berth.containers import container_name
from berth.objects import Obj
from master.api.auth import authorize
from master.api.body import one_document
from master.api.context import client_gone, context, principal
from master.api.log_window import NoPreviousRun, log_window
from master.errors import ApiError, bad_request, not_found
from master.objects.fields import DnsLabel
from master.objects.kinds import Strict
from master.objects.validate import error_from_validation
from master.runtime.nodes import node_driver, node_host
from master.runtime.planner import previous_status
from master.runtime.ssh import Host, HostBusy, SshError, SshPool

bp = Blueprint("pods", __name__)
MAX_TAIL = 100_000
MAX_SINCE = 10 * 365 * 24 * 3600  # sinceSeconds: ten years at most


class ExecBody(Strict):
    command: list[str] = Field(min_length=1, max_length=256)
    container: DnsLabel | None = None
    stdin: str | None = Field(default=None, max_length=1 << 20)
    timeoutSeconds: int = Field(default=60, ge=1, le=600)


def pool() -> SshPool:
    pool = context().ssh
    if pool is None:
        raise ApiError(503, "Unavailable", "this master has no SSH key for the hosts (ssh_key_file)")
    return pool


def host_error(node: Obj, err: SshError) -> ApiError:
    if isinstance(err, HostBusy):  # nothing ran: the host's sessions for users are all in use
        return ApiError(429, "TooManyRequests", f"node {node['metadata']['name']}: {err}; retry")
    return ApiError(502, "HostUnreachable", f"node {node['metadata']['name']}: {err}")


class Target(NamedTuple):
    host: Host
    runtime_name: str  # the container's name on its host
    container: str  # as the pod names it
    pod: Obj
    node: Obj


def target(namespace: str, name: str, container: str | None, warn: bool = True) -> Target:
    """Where the container runs, or the 4xx that says why not. Without a
    container named, the pod's first app container, as kubectl defaults (with `warn`, the answer's
    Warning says so); an init container is named like the others on its host, so its logs and exec
    work alike."""
    ctx = context()
    pool()
    (pod, nodes), _ = ctx.store.read(lambda s: (s.get("Pod", namespace, name), s.list("Node")))
    if pod is None:
        raise not_found("Pod", namespace, name)
    names = [c["name"] for c in pod["spec"]["containers"]]
    inits = [c["name"] for c in pod["spec"].get("initContainers") or []]
    if container is None:
        container = names[0]
        if (len(names) > 1 or inits) and warn:  # kubectl's words: init containers marked "(init)"
            listed = ", ".join([*names, *(f"{i} (init)" for i in inits)])
            g.warnings = [f'Defaulted container "{container}" out of: {listed}']
    elif container not in names + inits:
        known = ", ".join(names) + (f"; init: {', '.join(inits)}" if inits else "")
        raise bad_request(f"pod {name} has no container {container!r} ({known})", "container")
    node_name = pod["spec"].get("nodeName")
    node = next((n for n in nodes if n["metadata"]["name"] == node_name), None)
    if node is None:
        raise bad_request(f"pod {name} is not on a node yet", "spec.nodeName")
    return Target(node_host(node), container_name(pod, container), container, pod, node)


@bp.get("/api/v1/namespaces/<namespace>/pods/<name>/log")
def pod_log(namespace: str, name: str) -> Response:
    authorize(principal(), "get", "Pod", name, subresource="log", namespace=namespace)
    follow = request.args.get("follow", "false").lower() in ("1", "true", "yes")
    tail = request.args.get("tailLines")
    if tail is not None and (not (tail.isascii() and tail.isdigit()) or int(tail) > MAX_TAIL):
        raise bad_request(f"tailLines must be a whole number from 0 to {MAX_TAIL}", "tailLines")
    timestamps = request.args.get("timestamps", "false").lower() in ("1", "true", "yes")
    since = request.args.get("sinceSeconds")
    if since is not None and (not (since.isascii() and since.isdigit()) or not 0 < int(since) <= MAX_SINCE):
        raise bad_request(f"sinceSeconds must be a whole number from 1 to {MAX_SINCE}", "sinceSeconds")
    previous = request.args.get("previous", "false").lower() in ("1", "true", "yes")
    if previous and since is not None:
        raise bad_request("sinceSeconds with previous is not supported: the previous run is shown whole",
                          "sinceSeconds")
    host, runtime_name, container, pod, node = target(namespace, name, request.args.get("container"))
    try:
        window = log_window(previous_status(pod, container), previous, int(since) if since else None,
                            time.time())
    except NoPreviousRun:
        raise bad_request(f'previous terminated container "{container}" in pod "{name}" not found',
                          "previous") from None
    driver = node_driver(node)
    release = context().streams.take(principal().name, node["metadata"]["name"])
    try:
        argv = driver.logs(runtime_name, follow, int(tail) if tail else None, timestamps, window.since,
                           window.until)
        chunks = pool().stream(host, argv,
                                idle_timeout=3600 if follow else 30, stopped=client_gone())
        first = next(chunks, b"")  # errors before the first byte become a clear answer, not a cut stream
    except SshError as err:
        release()
        raise host_error(node, err) from None
    except BaseException:
        release()
        raise

    def body() -> Any:
        yield first
        try:
            yield from chunks
        except SshError:
            return

    def finish() -> None:
        chunks.close()  # closes the channel, which ends the command on the host
        release()

    response = Response(stream_with_context(body()), mimetype="text/plain")
    response.call_on_close(finish)
    return with_warnings(response)


@bp.post("/api/v1/namespaces/<namespace>/pods/<name>/exec")
def pod_exec(namespace: str, name: str) -> Response:
    # runs code in the container
    authorize(principal(), "create", "Pod", name, subresource="exec", namespace=namespace)
    try:
        body = ExecBody.model_validate(one_document())
    except ValidationError as err:
        raise error_from_validation(err) from None
    host, runtime_name, _container, _pod, node = target(namespace, name, body.container)
    driver = node_driver(node)
    stdin = body.stdin.encode() if body.stdin is not None else None
    release = context().streams.take(principal().name, node["metadata"]["name"])
    try:
        result = pool().run(host, driver.exec(runtime_name, body.command, stdin is not None),
                             timeout=body.timeoutSeconds, stdin=stdin)
    except SshError as err:
        raise host_error(node, err) from None
    finally:
        release()
    return with_warnings(jsonify({"exitCode": result.exit_status,
                                   "stdout": result.stdout.decode(errors="replace"),
                                   "stderr": result.stderr.decode(errors="replace")}))


def with_warnings(response: Response) -> Response:
    """HTTP's Warning header (code 299, as Kubernetes' API warnings): the client shows each."""
    for text in getattr(g, "warnings", []):
        response.headers.add("Warning", f'299 - "{text}"')
    return response
