"""The Flask app factory: blueprints, authentication, JSON errors and the audit, wired once."""

from __future__ import annotations

import functools
import itertools
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from flask import Flask, Response, g, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RoutingException

from berth.clock import utc_now
from master.api import (
    access_review,
    agent_reports,
    cluster,
    encryption,
    eviction,
    metrics,
    openapi,
    pods,
    prometheus,
    resources,
    scale,
    sessions,
    snapshot,
    ui,
    watch,
)
from master.api.audit import Seen, audited, record, started
from master.api.audit_log import AuditLog
from master.api.auth import OPEN_PATHS, Principal
from master.api.context import ApiContext
from master.api.errors import register_error_handlers
from master.api.server import Admit, OnRefused, Turned
from master.errors import ApiError
from master.json_codec import compact
from master.observability import MasterMetrics
from master.peer_auth import verify_head

log = logging.getLogger(__name__)
_audit_failures = itertools.count(1)


def admission(ctx: ApiContext) -> Admit:
    """What the server's door asks once a request's headers are in, before its body is read
    (master/api/server.py): a bearer token, or for the relay a master's signature of the
    request's head (the body's is checked by the view)."""
    def admit(path: str, authorization: str | None, length: int) -> ApiError | None:
        if path in OPEN_PATHS:
            return None
        if path in agent_reports.PEER_PATHS:
            signed = ctx.peer_key is not None and verify_head(ctx.peer_key, authorization,
                                                              ctx.store.self_address, length, time.time())
            return None if signed else ApiError(401, "Unauthorized", "a master's signature is required",
                                                "Authorization")
        try:
            ctx.tokens.authenticate(authorization)
        except ApiError as refusal:
            return refusal
        return None

    return admit


class CompactJSON(DefaultJSONProvider):
    """Flask's provider with master/json_codec.py's encoding: always compact, keys in the order
    built (no sorting), Flask's own `default` for what JSON has no type for (a Decimal)."""

    sort_keys = False

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return compact(obj, self.default).decode()

    def response(self, *args: Any, **kwargs: Any) -> Response:
        body = compact(self._prepare_response_obj(args, kwargs), self.default)
        return self._app.response_class(body + b"\n", mimetype=self.mimetype)


def create_app(ctx: ApiContext) -> Flask:
    app = Flask("berth")
    app.config["MAX_CONTENT_LENGTH"] = ctx.max_body_bytes
    app.json = CompactJSON(app)
    app.extensions["berth"] = ctx
    register_error_handlers(app)
    app.url_map.converters["dns"] = resources.DnsLabelConverter  # before the routes that name it

    if ctx.metrics is not None:
        observed = ctx.metrics

        @app.before_request
        def _clock() -> None:  # first: a request refused by the next one is timed too
            g.started = time.monotonic()

        @app.after_request
        def _count(response: Response) -> Response:
            """Counted under labels of fixed sets (prometheus.request_labels), timed to its last byte."""
            _measured(observed, _seen(response.status_code), g.get("started"), response)
            return response

    @app.before_request
    def _authenticate() -> None:
        if request.path not in OPEN_PATHS and request.path not in agent_reports.PEER_PATHS:
            g.principal = ctx.tokens.authenticate(request.headers.get("Authorization"))

    if ctx.audit is not None:
        audit = ctx.audit

        @app.after_request
        def _audit(response: Response) -> Response:
            """Here the user, the view and the final code are known, errors' answers included."""
            _audited(audit, lambda: _seen(response.status_code), response)
            return response

    for blueprint in (cluster.bp, openapi.bp, watch.bp, agent_reports.bp, metrics.bp, prometheus.bp, pods.bp,
                      sessions.bp, scale.bp, eviction.bp, encryption.bp, access_review.bp, ui.bp,
                      snapshot.bp, resources.bp):
        app.register_blueprint(blueprint)
    return app


def _seen(code: int) -> Seen:
    """The request being answered, as the audit and the metrics read it (inside a request): read
    once for both."""
    seen = g.get("seen")
    if seen is None or seen.code != code:
        rule = request.url_rule
        seen = g.seen = Seen(request.method, request.path, rule.endpoint if rule else None,
                             rule.rule if rule else None, request.view_args or {},
                             list(request.args.items(multi=True)), g.get("principal"),
                             request.remote_addr or "", code)
    return seen


def _measured(observed: MasterMetrics, seen: Seen, started: float | None, response: Response | None) -> None:
    """Counts the request; times it once its answer's last byte is sent (`response`'s close), unless
    it is a stream or was answered by the door (no response, no clock). Never raises into the request."""
    try:
        labels = prometheus.request_labels(seen)
        if response is None or started is None or prometheus.streamed(seen):
            observed.request(labels, None)
        else:
            response.call_on_close(lambda: observed.request(labels, time.monotonic() - started))
    except Exception:
        log.exception("counting a request failed")


def _audited(audit: AuditLog, seen: Callable[[], Seen], response: Response | None = None) -> str | None:
    """Hands the request's record to the audit log if it keeps one: now for a stream (it starts),
    else once the answer is sent (`response`'s close; at once without one). Its id, or None.
    Never raises into the request: a bug here is the master log's, at the 1st, 2nd, 4th ... time."""
    try:
        request_seen = seen()
        if not audited(request_seen):
            return None
        audit_id = str(uuid.uuid4())

        def write() -> None:
            try:
                audit.write(record(request_seen, utc_now(), audit_id))
            except Exception:
                _failed()

        if response is None or started(request_seen):
            write()
        else:
            response.call_on_close(write)
        if response is not None:
            response.headers["Audit-Id"] = audit_id
        return audit_id
    except Exception:
        _failed()
        return None


def _failed() -> None:
    failures = next(_audit_failures)
    if failures & (failures - 1) == 0:
        log.exception("a request's audit record failed (%d so far)", failures)


def door_refusals(app: Flask, ctx: ApiContext) -> OnRefused:
    """The audit and the count of what the server's door answers itself: the request is routed by the
    app's own routes, as if it had reached them, and its user is the token's, if it had a good one (a
    body too long: 413)."""
    audit, observed = ctx.audit, ctx.metrics
    if audit is None and observed is None:
        return lambda _turned: None

    def refused(turned: Turned) -> str | None:
        @functools.cache  # read once for the count and the audit: a flood of refusals costs one each
        def seen() -> Seen:
            endpoint, rule, view_args = _route(app, turned.method, turned.path)
            try:
                who: Principal | None = ctx.tokens.authenticate(turned.authorization)
            except ApiError:
                who = None
            return Seen(turned.method, turned.path, endpoint, rule, view_args,
                        parse_qsl(turned.query, keep_blank_values=True), who, turned.address, turned.status)

        if observed is not None:
            try:
                _measured(observed, seen(), None, None)
            except Exception:
                log.exception("counting a refused request failed")
        return None if audit is None else _audited(audit, seen)

    return refused


def _route(app: Flask, method: str, path: str) -> tuple[str | None, str | None, dict[str, Any]]:
    try:
        rule, view_args = app.url_map.bind("berth").match(path, method or "GET", return_rule=True)
    except (HTTPException, RoutingException, ValueError):
        return None, None, {}
    return rule.endpoint, rule.rule, view_args
