"""The errors the client raises: each one is shown to a user as one line, never a traceback."""

from __future__ import annotations

from typing import Any


class BerthError(Exception):
    """Base of everything the CLI reports as `Error: ...` and exit status 1."""


class UnknownKind(BerthError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f'the server doesn\'t have a resource type "{name}" '
            "(try pods, deployments, replicasets, services, endpoints, configmaps, secrets, nodes, events, "
            "hpa, pdb)"
        )
        self.name = name


class Unreachable(BerthError):
    """No master could serve the request; `attempts` says what happened at each."""

    def __init__(self, message: str, attempts: list[str] | None = None) -> None:
        super().__init__(message)
        self.attempts = attempts or []


class ApiError(BerthError):
    """An answer from a master that refuses the request: its JSON error, plus which master."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        field: str | None = None,
        details: list[dict[str, Any]] | None = None,
        server: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.field = field
        self.details = details or []
        self.server = server

    @classmethod
    def from_body(cls, status: int, body: Any, fallback: str, server: str | None) -> ApiError:
        """Tolerates non-JSON bodies (a proxy's HTML page) so a bad gateway is still explained."""
        if isinstance(body, dict) and ("error" in body or "reason" in body):
            details = body.get("details")
            return cls(
                status,
                str(body.get("reason") or fallback),
                str(body.get("error") or body.get("message") or fallback),
                body.get("field") or None,
                details if isinstance(details, list) else None,
                server,
            )
        text = body.strip()[:300] if isinstance(body, str) else ""
        return cls(status, fallback, text or f"HTTP {status}", None, None, server)

    def describe(self) -> str:
        """The kubectl-like line, plus one line for each further field error."""
        line = f"Error from server ({self.reason}): {self.message}"
        if self.field:
            line += f" [field: {self.field}]"
        extra = [
            f"  {d.get('field', '')}: {d.get('error', d.get('message', ''))}"
            for d in self.details[1:]
            if isinstance(d, dict)
        ]
        return "\n".join([line, *extra])

    def __str__(self) -> str:
        return self.describe()
