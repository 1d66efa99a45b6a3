"""The Flask app factory: blueprints, authentication and JSON errors, wired once."""

from __future__ import annotations

from flask import Flask, g, request

from master.api import cluster, heartbeat, openapi, pods, resources, watch
from master.api.context import ApiContext
from master.api.errors import register_error_handlers

OPEN_PATHS = frozenset({"/healthz", "/readyz"})


def create_app(ctx: ApiContext) -> Flask:
    app = Flask("berth")
    app.config["MAX_CONTENT_LENGTH"] = ctx.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["berth"] = ctx
    register_error_handlers(app)

    @app.before_request
    def _authenticate() -> None:
        if request.path not in OPEN_PATHS and request.path not in heartbeat.PEER_PATHS:
            g.principal = ctx.tokens.authenticate(request.headers.get("Authorization"))

    for blueprint in (cluster.bp, openapi.bp, watch.bp, heartbeat.bp, pods.bp, resources.bp):
        app.register_blueprint(blueprint)
    return app
