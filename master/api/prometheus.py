"""`GET /metrics`: this master's Prometheus metrics (master/observability.py), and how a request is
labelled there (pure).

Not the usage API beside it (api/metrics.py, `/api/v1/metrics/...`, kubectl top's source): this is
the masters' own health, in Prometheus' text format, for a Prometheus server to scrape each master.

Who may scrape: whoever may read the whole cluster, that is list every Node and the Pods of every
namespace (a viewer, an operator, an admin, or a ClusterRoleBinding granting those). The families
count every namespace's pods and requests, so a role bound in one namespace alone may not. An
agent may not, although its node authorizer lets it list nodes and pods as peers: an agent's token
sits on a host an attacker may hold, and nothing an agent does needs the masters' metrics.

A request's labels come from the API's own routing, as the audit reads it (api/audit.py), each
from a fixed set: Kubernetes' verb, or the method for a path that names no object (`other` for a
method outside the few HTTP names); the kind's plural, or the route for a path that names no
object, or `<unmatched>` for no route at all. Whatever path, method or query an attacker sends,
the registry's label sets stay the product of those sets.
"""

from __future__ import annotations

from flask import Blueprint, Response

from master.api.audit import ENDPOINTS, Seen, endpoint_of, object_ref, readable_rule, verb_of
from master.api.auth import Principal, authorize
from master.api.context import context, principal
from master.errors import ApiError
from master.objects.kinds import BY_PLURAL
from master.observability import CONTENT_TYPE, RequestLabels

bp = Blueprint("prometheus", __name__)
PATH = "/metrics"
# Kubernetes' verbs of a request on objects, and the methods (lower case, as Kubernetes names a
# non-resource request's verb) of the paths that name none
VERBS = frozenset({"get", "list", "watch", "create", "update", "patch", "delete",
                   "post", "put", "head", "options"})
OTHER = "other"
UNMATCHED = "<unmatched>"  # no route answered: the path is the client's text, never a label
RESOURCES = frozenset(BY_PLURAL) | {e.resource for e in ENDPOINTS.values() if e.resource}


def request_labels(seen: Seen) -> RequestLabels:
    """The labels `seen` is counted under, each from a fixed set (see the module's docstring)."""
    verb = verb_of(seen)
    ref = object_ref(seen)
    if ref is None:
        resource, subresource = (readable_rule(seen.rule) if seen.endpoint and seen.rule else UNMATCHED), ""
    else:
        resource, subresource = ref["resource"] or "", ref["subresource"] or ""
        if resource and resource not in RESOURCES:  # the routes' converters allow none: never trusted
            resource = OTHER
    code = seen.code if 100 <= seen.code <= 599 else 0
    return RequestLabels(verb if verb in VERBS else OTHER, resource, subresource, str(code))


def streamed(seen: Seen) -> bool:
    """A watch, a log or a session's output: lasts as long as its client wants, so it is counted
    and not timed."""
    return endpoint_of(seen).stream


def may_scrape(who: Principal) -> None:
    """403 unless `who` may read the whole cluster (see the module's docstring)."""
    if who.is_node:
        raise ApiError(403, "Forbidden", f"{who.describe()} may not read {PATH}: the masters' metrics "
                       "are not an agent's to read", None)
    authorize(who, "list", "Node")
    authorize(who, "list", "Pod", namespace=None)


@bp.get(PATH)
def metrics() -> Response:
    may_scrape(principal())
    observed = context().metrics
    if observed is None:
        raise ApiError(404, "NotFound", "this master keeps no metrics", None)
    return Response(observed.exposition(), content_type=CONTENT_TYPE)
