"""Cluster membership and health: `/api/v1/cluster`, its members' add and remove
(`/api/v1/cluster/members`, the rules in store/membership.py), `/healthz`, `/readyz`, `/version`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify, request

from berth.version import version_info
from master.api.auth import authorize
from master.api.body import one_document
from master.api.context import context, principal
from master.api.forward import to_leader
from master.errors import ApiError
from master.store.membership import check_address, check_api_url

bp = Blueprint("cluster", __name__)
_STATES = {0: "follower", 1: "candidate", 2: "leader"}


def cluster_status() -> dict[str, Any]:
    store = context().store
    status = store.status()
    leader = store.leader()
    me = str(status["self"])
    members = [{"address": me, "self": True, "leader": leader == me, "reachable": True}]
    for peer in store.members():
        if peer == me:
            continue
        members.append({
            "address": peer,
            "self": False,
            "leader": leader == peer,
            "reachable": status.get(f"partner_node_status_server_{peer}") == 2,
        })
    _, revision = store.read(lambda state: None)
    return {
        "self": me,
        "leader": leader,
        "state": _STATES.get(status["state"], str(status["state"])),
        "term": status["raft_term"],
        "preVoteRounds": status["pre_vote_rounds"],  # elections this master asked about (prevote.py)
        "commitIndex": status["commit_idx"],
        "lastApplied": status["last_applied"],
        "leaderCommitIndex": status["leader_commit_idx"],
        "revision": revision,
        "ready": store.is_ready(),
        "hasQuorum": status["has_quorum"],
        "members": members,
    }


@bp.get("/api/v1/cluster")
def cluster() -> Response:
    authorize(principal(), "get", None)
    return jsonify(cluster_status())


def _authorize_membership() -> None:
    """Changing the masters is cluster-admin's alone (no built-in role but it grants nodes/membership)."""
    authorize(principal(), "update", "Node", subresource="membership")


def _field(body: dict[str, Any], name: str, check: Callable[[object], str]) -> str:
    """`body[name]` as `check` (membership.py) accepts it, else a 422 naming the field."""
    try:
        return check(body.get(name))
    except ValueError as err:
        raise ApiError(422, "Invalid", f"{name}: {err}", name) from None


@bp.post("/api/v1/cluster/members")
def add_member() -> tuple[Response, int]:
    """Add a master to Raft (it runs already, its `peers` the current members); answered once committed."""
    _authorize_membership()
    body = one_document()
    if not isinstance(body, dict):
        raise ApiError(400, "MalformedBody", "expected an object {address, apiURL}", "body")
    unknown = sorted(set(body) - {"address", "apiURL"})
    if unknown:
        name = str(unknown[0])[:40]
        raise ApiError(422, "Invalid", f"{name}: unknown field; give address and apiURL", name)
    address, api_url = _field(body, "address", check_address), _field(body, "apiURL", check_api_url)
    ctx = context()
    if not ctx.store.is_leader():
        return to_leader(ctx, "POST", request.path)
    ctx.store.change_member("add", address, api_url)
    return jsonify({"address": address, "apiURL": api_url, "members": ctx.store.members()}), 201


@bp.delete("/api/v1/cluster/members/<path:address>")
def remove_member(address: str) -> tuple[Response, int]:
    """Remove a master from Raft (a dead one, or one to retire: stop it afterwards)."""
    _authorize_membership()
    address = _field({"address": address}, "address", check_address)
    ctx = context()
    if not ctx.store.is_leader():
        return to_leader(ctx, "DELETE", request.path)
    ctx.store.change_member("remove", address)
    return jsonify({"address": address, "members": ctx.store.members()}), 200


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify({"ok": True})


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    store = context().store
    ready = store.is_ready()
    body = {"ready": ready, "leader": store.leader()}
    if not ready:
        body.update(error="no leader known or not caught up", reason="NotReady", field=None)
    return jsonify(body), 200 if ready else 503


@bp.get("/version")
def version() -> Response:
    """The release this master runs (Kubernetes' `/version`, open as there): what a rolling upgrade
    (ansible/upgrade.yml) waits for after restarting it, and what an operator checks."""
    return jsonify(version_info())
