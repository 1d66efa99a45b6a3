"""May I? Kubernetes' SelfSubjectAccessReview (`berth auth can-i`), SelfSubjectRulesReview (`can-i
--list`) and SelfSubjectReview (`berth auth whoami`): every user may ask them about itself
(Kubernetes' system:basic-user), and the answer is the very decision the request itself would get
(auth.decide, its cache included).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from berth.kinds import lookup_kind
from master.api.auth import current_book, decide
from master.api.body import validated
from master.api.context import principal
from master.objects.rbac_kinds import SelfSubjectAccessReview, SelfSubjectRulesReview
from master.rbac.book import Decision
from master.rbac.rules import ALL, Request

bp = Blueprint("access_review", __name__)


@bp.post("/api/v1/selfsubjectaccessreviews")
def access_review() -> tuple[Response, int]:
    review = validated(SelfSubjectAccessReview)
    asked = review.spec.resourceAttributes
    decision = _decision(asked.verb, asked.resource, asked.group, asked.subresource, asked.namespace,
                         asked.name)
    status: dict[str, Any] = {"allowed": decision.allowed, "reason": decision.reason}
    if not decision.allowed:
        status["denied"] = True
    return jsonify({**review.model_dump(mode="json", exclude_none=True), "status": status}), 201


def _decision(verb: str, resource: str, group: str | None, subresource: str | None, namespace: str | None,
              name: str | None) -> Decision:
    who = principal()
    if resource == ALL:  # kubectl's `can-i '*' '*'`: only a rule naming every resource (and group) grants it
        if who.is_node:
            return Decision(False, "the node authorizer grants no wildcard")
        return current_book().decide(who.name, who.all_groups, Request(
            verb, ALL, ALL if group is None else group, subresource, name, namespace or None))
    kind = lookup_kind(resource)
    if kind is None:
        return Decision(False, f"no resource type {resource!r}")
    scoped = (namespace or None) if kind.namespaced else ""
    return decide(who, verb, kind.kind, name, subresource=subresource, namespace=scoped)


@bp.post("/api/v1/selfsubjectrulesreviews")
def rules_review() -> tuple[Response, int]:
    """The rules that hold for the token in `spec.namespace` (none: cluster-wide grants alone)."""
    review = validated(SelfSubjectRulesReview)
    who = principal()
    if who.is_node:
        status = {"resourceRules": [], "incomplete": True,
                  "evaluationError": "an agent is decided by the node authorizer, which lists no rules"}
    else:
        rules = current_book().rules_for(who.name, who.all_groups, review.spec.namespace or None)
        status = {"resourceRules": [rule.as_dict() for rule in rules], "incomplete": False}
    return jsonify({**review.model_dump(mode="json", exclude_none=True), "status": status}), 201


@bp.post("/api/v1/selfsubjectreviews")
def self_review() -> tuple[Response, int]:
    who = principal()
    return jsonify({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview",
                    "status": {"userInfo": {"username": who.name, "groups": list(who.all_groups)}}}), 201
