"""Every error leaves the API as JSON `{"error", "field", "reason"}`, from this one place."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from master.errors import ApiError

log = logging.getLogger(__name__)


def error_response(err: ApiError) -> tuple[Response, int]:
    return jsonify(err.body()), err.status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(err: ApiError) -> tuple[Response, int]:
        return error_response(err)

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException) -> tuple[Response, int]:
        status = err.code or 500
        reason = {413: "RequestEntityTooLarge", 404: "NotFound", 405: "MethodNotAllowed"}.get(
            status, err.name.replace(" ", "")
        )
        field = "body" if status == 413 else None
        return error_response(ApiError(status, reason, err.description or err.name, field))

    @app.errorhandler(Exception)
    def _internal(err: Exception) -> tuple[Response, int]:
        log.exception("internal error")
        return error_response(ApiError(500, "InternalError", "internal error; see the master's log"))
