"""The eviction subresource of pods, and the rebalancer's plan and round on demand.

`POST /api/v1/namespaces/NS/pods/NAME/eviction` takes an Eviction (its `deleteOptions` optional)
and deletes the pod gracefully unless a disruption budget says no (master/eviction.py): 201 and a
Status, as Kubernetes answers it, or 429 TooManyRequests while the budget allows no disruption.
Rights are a pod deletion's (operators and admins). `?dryRun=All` decides and writes nothing.

`GET /api/v1/rebalance` answers what the rebalancer would move now, computed on this master's state
by the same pure plan the rebalancer acts on (anyone who may list pods may read it);
`POST /api/v1/rebalance` carries one round out now (rights of an eviction), whether or not the
rebalancer runs by itself (`rebalance: true`).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify
from pydantic import ValidationError

from master.api.auth import authorize
from master.api.body import one_document
from master.api.context import context, principal
from master.api.openapi import as_described
from master.api.resources import _write
from master.errors import ApiError
from master.eviction import MoveResult, carry_out, current_plan, evict
from master.objects.kinds import Eviction
from master.objects.validate import error_from_validation
from master.scheduler.rebalance import Move, Plan

bp = Blueprint("eviction", __name__)


@bp.post("/api/v1/namespaces/<dns:namespace>/pods/<dns:name>/eviction")
def create_eviction(namespace: str, name: str) -> tuple[Response, int]:
    authorize(principal(), "create", "Pod", name, subresource="eviction", namespace=namespace)
    document = one_document()
    try:
        eviction = Eviction.model_validate(document, strict=True)
    except ValidationError as err:
        raise as_described(error_from_validation(err), document, "Eviction") from None
    if eviction.metadata.name != name:  # a rule across body and path: 422, as in resources._check_identity
        raise ApiError(422, "Invalid", f"metadata.name {eviction.metadata.name!r} does not match the pod in "
                       f"the path ({name!r})", "metadata.name")
    if eviction.metadata.namespace not in (None, namespace):
        raise ApiError(422, "Invalid", f"metadata.namespace {eviction.metadata.namespace!r} does not match "
                       f"the path ({namespace!r})", "metadata.namespace")
    grace = eviction.deleteOptions.gracePeriodSeconds if eviction.deleteOptions else None
    ctx = context()
    done = evict(ctx.store, namespace, name, ctx.now, grace, propose=_write)
    details = {"name": name, "namespace": namespace, "kind": "pods"}
    if done.budget is not None:
        details["disruptionBudget"] = done.budget
    return jsonify({"apiVersion": "berth/v1", "kind": "Status", "metadata": {}, "status": "Success",
                    "code": 201, "details": details}), 201


def _move(move: Move) -> dict[str, Any]:
    return {"namespace": move.namespace, "pod": move.pod, "node": move.node, "reason": move.reason}


def _plan_body(plan: Plan) -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": "berth/v1", "kind": "RebalancePlan",
                            "items": [_move(m) for m in plan.moves]}
    if plan.waiting:
        body["waiting"] = plan.waiting
    return body


def _result(result: MoveResult) -> dict[str, Any]:
    answer = {**_move(result.move), "evicted": result.error is None}
    if result.error is not None:
        answer["error"], answer["errorReason"] = result.error.message, result.error.reason
    return answer


@bp.get("/api/v1/rebalance")
def rebalance_plan() -> Response:
    authorize(principal(), "list", "Pod")
    ctx = context()
    return jsonify(_plan_body(current_plan(ctx.store, ctx.rebalance, ctx.now())))


@bp.post("/api/v1/rebalance")
def rebalance_now() -> Response:
    authorize(principal(), "create", "Pod", subresource="eviction")
    ctx = context()
    plan = current_plan(ctx.store, ctx.rebalance, ctx.now())
    body = _plan_body(plan)
    body["items"] = [_result(r) for r in carry_out(ctx.store, plan, ctx.now, ctx.uid)]
    return jsonify(body)
