"""The one error type that crosses layers: it becomes the API's JSON error body."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error a client can act on: HTTP status, a machine reason and the field at fault."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        field: str | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.field = field
        self.details = details or []

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message, "field": self.field, "reason": self.reason}
        if self.details:
            body["details"] = self.details
        return body

    def __repr__(self) -> str:
        return f"ApiError({self.status}, {self.reason!r}, {self.message!r}, field={self.field!r})"


def bad_request(message: str, field: str | None = None, reason: str = "Invalid") -> ApiError:
    return ApiError(400, reason, message, field)


def not_found(kind: str, namespace: str, name: str) -> ApiError:
    where = f"{namespace}/{name}" if namespace else name
    return ApiError(404, "NotFound", f"{kind} {where} not found", "metadata.name")


def conflict(message: str, reason: str = "Conflict") -> ApiError:
    return ApiError(409, reason, message, "metadata.resourceVersion")
