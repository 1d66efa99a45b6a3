"""May I? Kubernetes' SelfSubjectAccessReview (`berth auth can-i`) and SelfSubjectReview (`berth
auth whoami`): every user may ask both about itself (Kubernetes' system:basic-user), and the
answer is the very decision the request itself would get (auth.decide, its cache included).
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from berth.kinds import lookup_kind
from master.api.auth import decide
from master.api.body import validated
from master.api.context import principal
from master.objects.rbac_kinds import SelfSubjectAccessReview

bp = Blueprint("access_review", __name__)


@bp.post("/api/v1/selfsubjectaccessreviews")
def access_review() -> tuple[Response, int]:
    review = validated(SelfSubjectAccessReview)
    asked = review.spec.resourceAttributes
    kind = lookup_kind(asked.resource)
    if kind is None:
        allowed, reason = False, f"no resource type {asked.resource!r}"
    else:
        namespace = (asked.namespace or None) if kind.namespaced else ""
        decision = decide(principal(), asked.verb, kind.kind, asked.name, subresource=asked.subresource,
                          namespace=namespace)
        allowed, reason = decision.allowed, decision.reason
    status = {"allowed": allowed, "reason": reason}
    if not allowed:
        status["denied"] = True
    return jsonify({**review.model_dump(mode="json", exclude_none=True), "status": status}), 201


@bp.post("/api/v1/selfsubjectreviews")
def self_review() -> tuple[Response, int]:
    who = principal()
    return jsonify({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview",
                    "status": {"userInfo": {"username": who.name, "groups": list(who.all_groups)}}}), 201
