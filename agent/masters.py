"""The agent's road to the masters: berth's failover client (berth/client.py) with its token.

Everything the agent sends may be sent twice (reports are soft state; registering finds
the Node already there), so a request goes on to the next master after any failure.
"""

from __future__ import annotations

from typing import Any

from berth.client import Client
from berth.errors import ApiError, Unreachable

__all__ = ["ApiError", "MasterUnavailable", "Masters"]


class MasterUnavailable(RuntimeError):
    """Worth retrying: no master could answer."""


class Masters:
    def __init__(self, urls: list[str], token: str, timeout: float = 5.0, ca_file: str | None = None) -> None:
        """`ca_file`: the cluster's CA, which the masters' certificates are verified with."""
        self.client = Client(urls, token, connect_timeout=min(2.0, timeout), read_timeout=timeout,
                             user_agent="berth-agent/0.1", ca_file=ca_file)

    def call(self, method: str, path: str, body: Any = None, content_type: str | None = None) -> Any:
        """The answer's JSON (None for an empty one). A master's refusal raises ApiError; no
        master answering (unreachable, or 503 from each) raises MasterUnavailable."""
        try:
            response = self.client.request(method, path, json_body=body, content_type=content_type,
                                           replayable=True)
        except Unreachable as err:
            raise MasterUnavailable(str(err)) from None
        except ApiError as err:
            if err.status == 503:
                raise MasterUnavailable(f"no master answered ({err.server}: {err.reason}: "
                                        f"{err.message})") from None
            raise
        try:
            return response.json() if response.content else None
        except ValueError:
            raise MasterUnavailable(f"{method} {path}: an answer that is not JSON") from None
