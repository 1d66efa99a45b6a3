"""The audit record of one request: whether a master keeps one, and what it holds (pure).

An audit log answers "who did what to which object, from where, and was it allowed", and is kept
for months, read by people who must not learn secrets from it, and filled by anyone who can reach
the API. So a record holds those facts and nothing a request carries: no body (a Secret's values,
a pod's env), no header (the token), and of the query string only the names the API reads, with
the value of the few whose values are flags, numbers or names checked here. Anything else in a
URL is the client's free text: a token pasted by mistake, or what an attacker wants stored on the
masters.

What is kept (`audited`): every write (POST, PUT, PATCH, DELETE), subresources included; every
read of a Secret (get, list, watch); every log and session output read; and every request refused
with 401 or 403, whatever it asked. What is not: other reads (the volume of a cluster's
controllers and `berth get`, with nothing to tell), the open health checks (`auth.OPEN_PATHS`,
whatever their method: anyone may send them, so a line each would let anyone fill the log), and
the "quiet" endpoints unless refused: the agents' reports and the masters' relay of them (every
agent, every few seconds, no user's data) and a session's input and resize (each keystroke of an
exec, each chunk of a port-forward: the session's opening and output are the audited events).

The verb and the object come from the API's own routing (the Flask endpoint and the path's
arguments, as the view got them), never from parsing the URL again.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from master.api.auth import OPEN_PATHS, READ_VERBS, Principal
from master.objects.kinds import BY_PLURAL, lookup_kind

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
REFUSED = frozenset({401, 403})  # refusals kept even where a request would not be
MAX_NAME = 253  # a path's names are the client's text until the view checks them: a DNS subdomain's bound
SESSION_ID_KEPT = 8  # of a session's 32 characters: enough to pair its output and close, never the id


@dataclass(frozen=True)
class Endpoint:
    """What the audit knows of one of the API's views."""

    verbs: Mapping[str, str] = field(default_factory=dict)  # HTTP method -> Kubernetes' verb
    resource: str | None = None  # when the path holds no plural (pods' subresources, sessions, nodes)
    subresource: str | None = None
    objects: bool = True  # False: a non-resource path (no object; the verb is the method, as Kubernetes')
    watch: bool = False  # the object is named by the query (`kind`, `namespace`), as the watch view reads it
    stream: bool = False  # its line is written when its answer starts, with stage ResponseStarted
    always: bool = False  # a read audited whatever it reads (a pod's log, a session's output)
    quiet: bool = False  # kept only when refused (401, 403)


_REPORT = {"POST": "update"}  # an agent's report is a write of its Node's soft state (auth.authorize's verb)
NON_RESOURCE = Endpoint(objects=False)
ENDPOINTS: dict[str, Endpoint] = {
    "resources.list_objects": Endpoint({"GET": "list"}),
    "resources.create_object": Endpoint({"POST": "create"}),
    "resources.get_object": Endpoint({"GET": "get"}),  # `.../status` too: the subresource is the route's
    "resources.replace_object": Endpoint({"PUT": "update"}),
    "resources.patch_object": Endpoint({"PATCH": "patch"}),
    "resources.write_status": Endpoint({"PUT": "update", "PATCH": "patch"}, subresource="status"),
    "resources.delete_object": Endpoint({"DELETE": "delete"}),
    "resources.apply_manifest": NON_RESOURCE,  # documents of any kinds, in the body
    "scale.get_scale": Endpoint({"GET": "get"}, subresource="scale"),
    "scale.write_scale": Endpoint({"PUT": "update", "PATCH": "patch"}, subresource="scale"),
    "eviction.create_eviction": Endpoint({"POST": "create"}, resource="pods", subresource="eviction"),
    "eviction.rebalance_plan": NON_RESOURCE,
    "eviction.rebalance_now": NON_RESOURCE,
    "pods.pod_log": Endpoint({"GET": "get"}, resource="pods", subresource="log", stream=True, always=True),
    "pods.pod_exec": Endpoint({"POST": "create"}, resource="pods", subresource="exec"),
    "sessions.open_exec": Endpoint({"POST": "create"}, resource="pods", subresource="exec"),
    "sessions.open_port_forward": Endpoint({"POST": "create"}, resource="pods", subresource="portforward"),
    "sessions.session_output": Endpoint({"GET": "get"}, resource="sessions", subresource="output",
                                        stream=True, always=True),
    "sessions.session_input": Endpoint({"POST": "create"}, resource="sessions", subresource="input",
                                       quiet=True),
    "sessions.session_resize": Endpoint({"POST": "create"}, resource="sessions", subresource="resize",
                                        quiet=True),
    "sessions.session_close": Endpoint({"DELETE": "delete"}, resource="sessions"),
    # every Secret sealed again with the first key: an update of them all, named by no one object
    "encryption.rotate": Endpoint({"POST": "update"}, resource="secrets", subresource="rotate"),
    # every object at one revision, Secrets sealed: a read of them all (snapshot save)
    "snapshot.snapshot": Endpoint({"GET": "get"}, resource="secrets", subresource="snapshot", always=True),
    "watch.watch": Endpoint({"GET": "watch"}, watch=True, stream=True),
    "agent_reports.heartbeat": Endpoint(_REPORT, resource="nodes", subresource="heartbeat", quiet=True),
    "agent_reports.probe_results": Endpoint(_REPORT, resource="nodes", subresource="probes", quiet=True),
    "agent_reports.runtime_events": Endpoint(_REPORT, resource="nodes", subresource="runtime-events",
                                             quiet=True),
    "agent_reports.pod_metrics": Endpoint(_REPORT, resource="nodes", subresource="metrics", quiet=True),
    "agent_reports.relayed_reports": Endpoint(objects=False, quiet=True),
    "metrics.node_metrics": NON_RESOURCE,
    "metrics.pod_metrics": NON_RESOURCE,
    "cluster.cluster": NON_RESOURCE,
    "cluster.add_member": NON_RESOURCE,  # a write: always kept
    "cluster.remove_member": NON_RESOURCE,
    "cluster.healthz": NON_RESOURCE,
    "cluster.readyz": NON_RESOURCE,
    "cluster.version": NON_RESOURCE,
    "ui.ui_root": NON_RESOURCE,  # the web page's files (ui.py): open paths, never kept unless refused
    "ui.ui_index": NON_RESOURCE,
    "ui.ui_file": NON_RESOURCE,
    "openapi.openapi": NON_RESOURCE,
    "prometheus.metrics": NON_RESOURCE,
    # a question about one's own rights: nothing changes; kept when refused (a 401), as every such
    "access_review.access_review": Endpoint({"POST": "create"}, resource="selfsubjectaccessreviews",
                                            quiet=True),
    "access_review.rules_review": Endpoint({"POST": "create"}, resource="selfsubjectrulesreviews",
                                           quiet=True),
    "access_review.self_review": Endpoint({"POST": "create"}, resource="selfsubjectreviews", quiet=True),
}
UNROUTED = NON_RESOURCE  # no view answered (404, 405): nothing to name but the method


@dataclass(frozen=True)
class Seen:
    """What the server knew of a request once its answer was decided."""

    method: str
    path: str  # only to know the open paths: never recorded (a 404's path is the client's free text)
    endpoint: str | None  # the API's routing: the view that answered, None when none did
    rule: str | None  # that view's route, as declared: `/api/v1/namespaces/<namespace>/<plural>/<name>`
    view_args: Mapping[str, Any]  # the route's arguments, as the view got them
    query: Sequence[tuple[str, str]]  # every (name, value) of the query string, repeats included
    principal: Principal | None  # None: not authenticated (refused at the door or by the app: 401)
    address: str
    code: int


# --- the query string: names the API reads; values only where their form holds no free text ----

_FLAGS = frozenset({"true", "false", "1", "0", "yes", "no"})
_NUMBER = re.compile(r"[0-9]{1,12}(\.[0-9]{1,6})?")
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")  # a container's or a namespace's name


def _one_of(*values: str) -> Callable[[str], bool]:
    return frozenset(values).__contains__


def _never(_value: str) -> bool:
    return False


def _flag(value: str) -> bool:
    return value.lower() in _FLAGS


def _number(value: str) -> bool:
    return _NUMBER.fullmatch(value) is not None


def _label(value: str) -> bool:
    return _LABEL.fullmatch(value) is not None


# every parameter the API reads (grep request.args in master/api), with what of its value is kept
QUERY_PARAMETERS: dict[str, Callable[[str], bool]] = {
    "dryRun": _one_of("All"), "propagationPolicy": _one_of("Background", "Orphan", "Foreground"),
    **dict.fromkeys(("follow", "previous", "timestamps", "consistent", "eof"), _flag),
    **dict.fromkeys(("gracePeriodSeconds", "tailLines", "sinceSeconds", "timeoutSeconds",
                     "resourceVersion", "since"), _number),
    "container": _label, "namespace": _label,
    # selectors hold label values, free text up to 4 KiB; `kind` is the watch's object already
    "labelSelector": _never, "fieldSelector": _never, "kind": _never,
}


def kept_query(query: Sequence[tuple[str, str]]) -> tuple[list[str], int]:
    """(`name=value` or `name` for each parameter the API reads, the first of repeats; how many
    other parameters came): a parameter's name is the client's text as much as its value."""
    kept: dict[str, str] = {}
    others = 0
    for name, value in query:
        check = QUERY_PARAMETERS.get(name)
        if check is None:
            others += 1
        elif name not in kept:
            kept[name] = f"{name}={value}" if check(value) else name
    return list(kept.values()), others


# --- the request as the audit sees it ---------------------------------------------------------

def endpoint_of(seen: Seen) -> Endpoint:
    return ENDPOINTS.get(seen.endpoint or "", UNROUTED)


def verb_of(seen: Seen) -> str:
    """Kubernetes' verb: the view's for an object (HEAD is a GET's), else the method in lower case
    (Kubernetes' verbs for non-resource paths)."""
    method = "GET" if seen.method == "HEAD" else seen.method
    return endpoint_of(seen).verbs.get(method, seen.method.lower())


def _bounded(value: Any) -> str | None:
    return None if value in (None, "") else str(value)[:MAX_NAME]


def object_ref(seen: Seen) -> dict[str, str | None] | None:
    """The object as the view was asked for it (which may not exist: a 404's object is the asked-for
    one), or None for a non-resource path."""
    endpoint = endpoint_of(seen)
    if not endpoint.objects:
        return None
    args = seen.view_args
    if endpoint.watch:  # the watch view's own reading of its query
        query = dict(reversed(seen.query))  # the first of repeats, as Flask's args.get
        info = lookup_kind(query.get("kind", ""))
        resource, namespace, name = (info.plural if info else None), query.get("namespace"), None
    else:
        resource = args.get("plural") or endpoint.resource
        namespace, name = args.get("namespace"), args.get("name")
        if "session_id" in args:
            name = str(args["session_id"])[:SESSION_ID_KEPT]
        info = BY_PLURAL.get(resource) if resource else None
    subresource = endpoint.subresource
    if subresource is None and (seen.rule or "").endswith("/status"):
        subresource = "status"
    return {"resource": _bounded(resource), "kind": info.kind if info else None,
            "namespace": _bounded(namespace), "name": _bounded(name), "subresource": subresource}


def audited(seen: Seen) -> bool:
    if seen.path in OPEN_PATHS:
        return False
    endpoint = endpoint_of(seen)
    if seen.code in REFUSED:
        return True
    if endpoint.quiet:
        return False
    if seen.method in WRITE_METHODS or endpoint.always:
        return True
    ref = object_ref(seen)
    return ref is not None and ref["resource"] == "secrets" and verb_of(seen) in READ_VERBS


def started(seen: Seen) -> bool:
    """A stream's line is written as its answer starts: a `logs -f` or a watch may last hours, and
    the audit must show it then (and keep it if the master dies meanwhile); how it ended tells
    nothing more about who did what."""
    return endpoint_of(seen).stream and seen.code < 400


# A route's variable as the rule declares it, converter and all (`<any(pods,secrets):plural>`,
# `<dns:name>`): the audit names only the variable, so a line stays short and reads the same
# whatever kinds the converter lists
_RULE_VARIABLE = re.compile(r"<[^<>]*?(\w+)>")


@functools.lru_cache(maxsize=1024)  # the app's route rules: a few dozen, each rewritten once
def readable_rule(rule: str | None) -> str | None:
    return None if rule is None else _RULE_VARIABLE.sub(r"<\1>", rule)


def record(seen: Seen, time: str, audit_id: str) -> dict[str, Any]:
    """The line, as a JSON object. `time`: RFC 3339, UTC, microseconds."""
    query, others = kept_query(seen.query)
    user = None if seen.principal is None else {"name": seen.principal.name, "role": seen.principal.role}
    if seen.principal is not None and seen.principal.groups:
        user = {**user, "groups": list(seen.principal.groups)}
    return {
        "time": time,
        "stage": "ResponseStarted" if started(seen) else "ResponseComplete",
        "auditID": audit_id,
        "user": user,
        "sourceIP": seen.address,
        "verb": verb_of(seen),
        "objectRef": object_ref(seen),
        "route": readable_rule(seen.rule),
        "query": query,
        "otherParams": others,
        "code": seen.code,
    }
