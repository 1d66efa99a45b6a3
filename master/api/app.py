"""The Flask app factory: blueprints, authentication and JSON errors, wired once."""

from __future__ import annotations

import time

from flask import Flask, g, request

from master.api import (
    agent_reports,
    cluster,
    eviction,
    metrics,
    openapi,
    pods,
    resources,
    scale,
    sessions,
    watch,
)
from master.api.context import ApiContext
from master.api.errors import register_error_handlers
from master.api.server import Admit
from master.errors import ApiError
from master.peer_auth import verify_head

OPEN_PATHS = frozenset({"/healthz", "/readyz"})


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


def create_app(ctx: ApiContext) -> Flask:
    app = Flask("berth")
    app.config["MAX_CONTENT_LENGTH"] = ctx.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["berth"] = ctx
    register_error_handlers(app)
    app.url_map.converters["dns"] = resources.DnsLabelConverter  # before the routes that name it

    @app.before_request
    def _authenticate() -> None:
        if request.path not in OPEN_PATHS and request.path not in agent_reports.PEER_PATHS:
            g.principal = ctx.tokens.authenticate(request.headers.get("Authorization"))

    for blueprint in (cluster.bp, openapi.bp, watch.bp, agent_reports.bp, metrics.bp, pods.bp, sessions.bp,
                      scale.bp, eviction.bp, resources.bp):
        app.register_blueprint(blueprint)
    return app
