"""Every error leaves the API as JSON `{"error", "field", "reason"}`, from this one place."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from master.errors import ApiError

log = logging.getLogger(__name__)


def error_response(err: ApiError) -> tuple[Response, int]:
    return jsonify(err.body()), err.status


def from_werkzeug(err: HTTPException, method: str, path: str) -> tuple[ApiError, dict[str, str]]:
    """werkzeug's own answers as the API's errors, with the headers HTTP asks of them: a 405 names
    the methods the path takes in `Allow` (RFC 9110, 15.5.6), read from the routes themselves, so
    it is right for every path without a list kept anywhere else."""
    status = err.code or 500
    if isinstance(err, MethodNotAllowed):
        allowed = sorted(err.valid_methods or ())
        return (ApiError(405, "MethodNotAllowed", f"{method} is not allowed on {path}; it takes "
                         f"{', '.join(allowed)}", None), {"Allow": ", ".join(allowed)})
    if isinstance(err, NotFound):
        return ApiError(404, "NotFound", f"no such path: {path} (the API's paths are in "
                        "/api/v1/openapi.json)", None), {}
    reason = {413: "RequestEntityTooLarge"}.get(status, err.name.replace(" ", ""))
    return ApiError(status, reason, err.description or err.name, "body" if status == 413 else None), {}


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(err: ApiError) -> tuple[Response, int]:
        return error_response(err)

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException) -> tuple[Response, int]:
        api_error, headers = from_werkzeug(err, request.method, request.path)
        response, status = error_response(api_error)
        response.headers.update(headers)
        return response, status

    @app.errorhandler(Exception)
    def _internal(err: Exception) -> tuple[Response, int]:
        log.exception("internal error")
        return error_response(ApiError(500, "InternalError", "internal error; see the master's log"))
