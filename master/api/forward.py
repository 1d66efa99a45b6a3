"""A follower passing one request to the leader, whose memory is the only one that counts.

Used where no batch can do: a user's read of the leader's soft state (node metrics), and
agents' reports on a cluster without the masters' key (no Raft password: nothing to sign
a relayed batch with).
"""

from __future__ import annotations

import threading

import requests
from flask import Response, jsonify, request

from master.api.context import ApiContext
from master.errors import ApiError

FORWARD_TIMEOUT = 2.0
_sessions = threading.local()  # one keep-alive connection to the leader per API thread


def _leader_session(ca_file: str | None) -> requests.Session:
    session = getattr(_sessions, "session", None)
    if session is None:
        session = _sessions.session = requests.Session()
        session.verify = ca_file or True  # the leader's certificate, signed by the cluster's CA
        session.trust_env = False  # no proxy, and no REQUESTS_CA_BUNDLE over the cluster's CA
    return session


def to_leader(ctx: ApiContext, method: str, path: str) -> tuple[Response, int]:
    """The leader's answer to this request, with the caller's own token."""
    _, url = ctx.store.leader_api(ctx.peer_apis)
    if url is None:
        raise ApiError(503, "Unavailable", "no reachable leader to answer; retry")
    try:
        answer = _leader_session(ctx.peer_ca_file).request(
            method, url + path, data=request.get_data() or None, timeout=FORWARD_TIMEOUT,
            headers={"Authorization": request.headers.get("Authorization", ""),
                     "Content-Type": "application/json"})
        body = answer.json()
    except (requests.RequestException, ValueError):
        raise ApiError(503, "Unavailable", "the leader did not answer; retry") from None
    return jsonify(body), answer.status_code
