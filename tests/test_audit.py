"""The audit log: which requests it keeps, what a record holds and never holds, and its files."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path
from typing import Any

import pytest

from master.api.app import _route, create_app, door_refusals
from master.api.audit import ENDPOINTS, Seen, audited, kept_query, readable_rule, record
from master.api.audit_log import AuditLog
from master.api.auth import Principal, TokenBook, digest
from master.api.context import ApiContext
from master.api.server import Turned
from master.config import MasterConfig
from tests.harness import wait_until

ALICE = Principal("alice", "admin")
VICTOR = Principal("victor", "viewer")
H1 = Principal("h1", "agent")
NS_RULE = "/api/v1/namespaces/<namespace>/<plural>/<name>"
NS_LIST = "/api/v1/namespaces/<namespace>/<plural>"
POD_RULE = "/api/v1/namespaces/<namespace>/pods/<name>"
VIEWER_TOKEN = "viewer-token-for-the-audit"
SESSION_ID = "Q2Fzc2lvcGVpYS1zZXNzaW9uLWlkLTEyMzQ1Njc4"


def seen(method: str, endpoint: str | None, rule: str | None = None, view_args: dict | None = None,
         query: list[tuple[str, str]] | None = None, principal: Principal | None = ALICE, code: int = 200,
         path: str = "/api/v1/some/path") -> Seen:
    return Seen(method, path, endpoint, rule, view_args or {}, query or [], principal, "10.0.0.9", code)


def ref(resource: str | None, kind: str | None, namespace: str | None = None, name: str | None = None,
        subresource: str | None = None) -> dict[str, str | None]:
    return {"resource": resource, "kind": kind, "namespace": namespace, "name": name,
            "subresource": subresource}


CM = {"namespace": "default", "plural": "configmaps", "name": "web"}
SECRET = {"namespace": "default", "plural": "secrets", "name": "db"}
POD = {"namespace": "default", "name": "web-1"}
SESSION = "/api/v1/sessions/<session_id>"
SID, CUT = {"session_id": SESSION_ID}, SESSION_ID[:8]
NODE_REPORT = "/api/v1/nodes/<name>/"
RELAY = "/api/v1/internal/reports"
DONE, STARTED = "ResponseComplete", "ResponseStarted"

# (what, request seen, kept, verb, objectRef, stage)
TABLE: list[tuple[str, Seen, bool, str, dict | None, str]] = [
    ("a create",
     seen("POST", "resources.create_object", NS_LIST, {"namespace": "default", "plural": "configmaps"},
          code=201),
     True, "create", ref("configmaps", "ConfigMap", "default"), DONE),
    ("a replace", seen("PUT", "resources.replace_object", NS_RULE, CM),
     True, "update", ref("configmaps", "ConfigMap", "default", "web"), DONE),
    ("a patch", seen("PATCH", "resources.patch_object", NS_RULE, CM),
     True, "patch", ref("configmaps", "ConfigMap", "default", "web"), DONE),
    ("a delete", seen("DELETE", "resources.delete_object", NS_RULE, CM),
     True, "delete", ref("configmaps", "ConfigMap", "default", "web"), DONE),
    ("a cluster-scoped delete",
     seen("DELETE", "resources.delete_object", "/api/v1/<plural>/<name>", {"plural": "nodes", "name": "h1"}),
     True, "delete", ref("nodes", "Node", None, "h1"), DONE),
    ("a status write",
     seen("PATCH", "resources.write_status", NS_RULE + "/status", {**POD, "plural": "pods"}),
     True, "patch", ref("pods", "Pod", "default", "web-1", "status"), DONE),
    ("a scale",
     seen("PUT", "scale.write_scale", NS_RULE + "/scale", {**CM, "plural": "deployments"}),
     True, "update", ref("deployments", "Deployment", "default", "web", "scale"), DONE),
    ("an eviction", seen("POST", "eviction.create_eviction", POD_RULE + "/eviction", POD, code=201),
     True, "create", ref("pods", "Pod", "default", "web-1", "eviction"), DONE),
    ("an apply: a manifest of any kinds, no one object",
     seen("POST", "resources.apply_manifest", "/api/v1/apply"), True, "post", None, DONE),
    ("a rebalance round",
     seen("POST", "eviction.rebalance_now", "/api/v1/rebalance"), True, "post", None, DONE),
    ("the rebalancer's plan: a read",
     seen("GET", "eviction.rebalance_plan", "/api/v1/rebalance"), False, "get", None, DONE),
    ("exec", seen("POST", "pods.pod_exec", POD_RULE + "/exec", POD),
     True, "create", ref("pods", "Pod", "default", "web-1", "exec"), DONE),
    ("an exec session", seen("POST", "sessions.open_exec", POD_RULE + "/exec/sessions", POD, code=201),
     True, "create", ref("pods", "Pod", "default", "web-1", "exec"), DONE),
    ("a port-forward session",
     seen("POST", "sessions.open_port_forward", POD_RULE + "/portforward/sessions", POD, code=201),
     True, "create", ref("pods", "Pod", "default", "web-1", "portforward"), DONE),
    ("a session's output: attached, kept as it starts, the id cut",
     seen("GET", "sessions.session_output", SESSION + "/output", SID),
     True, "get", ref("sessions", None, None, CUT, "output"), STARTED),
    ("a session's input: each keystroke, not kept",
     seen("POST", "sessions.session_input", SESSION + "/input", SID, code=204),
     False, "create", ref("sessions", None, None, CUT, "input"), DONE),
    ("a session's resize", seen("POST", "sessions.session_resize", SESSION + "/resize", SID, code=204),
     False, "create", ref("sessions", None, None, CUT, "resize"), DONE),
    ("a session's input refused",
     seen("POST", "sessions.session_input", SESSION + "/input", SID, principal=None, code=401),
     True, "create", ref("sessions", None, None, CUT, "input"), DONE),
    ("a session's close", seen("DELETE", "sessions.session_close", SESSION, SID, code=204),
     True, "delete", ref("sessions", None, None, CUT), DONE),
    ("logs: kept as they start", seen("GET", "pods.pod_log", POD_RULE + "/log", POD),
     True, "get", ref("pods", "Pod", "default", "web-1", "log"), STARTED),
    ("logs refused: complete, not started", seen("GET", "pods.pod_log", POD_RULE + "/log", POD, code=503),
     True, "get", ref("pods", "Pod", "default", "web-1", "log"), DONE),
    ("a secret's get", seen("GET", "resources.get_object", NS_RULE, SECRET),
     True, "get", ref("secrets", "Secret", "default", "db"), DONE),
    ("a secret's get by its status route", seen("GET", "resources.get_object", NS_RULE + "/status", SECRET),
     True, "get", ref("secrets", "Secret", "default", "db", "status"), DONE),
    ("a list of secrets across namespaces",
     seen("GET", "resources.list_objects", "/api/v1/<plural>", {"plural": "secrets"}),
     True, "list", ref("secrets", "Secret"), DONE),
    ("a HEAD of a secret is its get", seen("HEAD", "resources.get_object", NS_RULE, SECRET),
     True, "get", ref("secrets", "Secret", "default", "db"), DONE),
    ("a watch of secrets, by any of kubectl's names",
     seen("GET", "watch.watch", "/api/v1/watch", {}, [("kind", "secret"), ("namespace", "team")]),
     True, "watch", ref("secrets", "Secret", "team"), STARTED),
    ("a configmap's get: a read", seen("GET", "resources.get_object", NS_RULE, CM),
     False, "get", ref("configmaps", "ConfigMap", "default", "web"), DONE),
    ("a list of pods", seen("GET", "resources.list_objects", NS_LIST, {"namespace": "x", "plural": "pods"}),
     False, "list", ref("pods", "Pod", "x"), DONE),
    ("a watch of pods", seen("GET", "watch.watch", "/api/v1/watch", {}, [("kind", "Pod")]),
     False, "watch", ref("pods", "Pod"), STARTED),
    ("a watch of an unknown kind: no resource named",
     seen("GET", "watch.watch", "/api/v1/watch", {}, [("kind", "x" * 300)], code=400),
     False, "watch", ref(None, None), DONE),
    ("a read refused to a viewer (403)",
     seen("GET", "resources.get_object", NS_RULE, CM, principal=VICTOR, code=403),
     True, "get", ref("configmaps", "ConfigMap", "default", "web"), DONE),
    ("a read without a token (401)",
     seen("GET", "resources.list_objects", NS_LIST, {"namespace": "x", "plural": "pods"}, principal=None,
          code=401), True, "list", ref("pods", "Pod", "x"), DONE),
    ("a heartbeat: quiet",
     seen("POST", "agent_reports.heartbeat", NODE_REPORT + "heartbeat", {"name": "h1"}, principal=H1),
     False, "update", ref("nodes", "Node", None, "h1", "heartbeat"), DONE),
    ("a heartbeat for another node, refused",
     seen("POST", "agent_reports.heartbeat", NODE_REPORT + "heartbeat", {"name": "h2"}, principal=H1,
          code=403),
     True, "update", ref("nodes", "Node", None, "h2", "heartbeat"), DONE),
    ("runtime events of an unknown node: quiet all the same",
     seen("POST", "agent_reports.runtime_events", NODE_REPORT + "runtime-events", {"name": "h1"},
          principal=H1, code=404), False, "update", ref("nodes", "Node", None, "h1", "runtime-events"), DONE),
    ("the relay between masters", seen("POST", "agent_reports.relayed_reports", RELAY, principal=None),
     False, "post", None, DONE),
    ("the relay refused", seen("POST", "agent_reports.relayed_reports", RELAY, principal=None, code=401),
     True, "post", None, DONE),
    ("an unrouted write", seen("POST", None, code=404), True, "post", None, DONE),
    ("an unrouted read", seen("GET", None, code=404), False, "get", None, DONE),
    ("a write to an open path, whatever its answer",
     seen("POST", None, code=405, principal=None, path="/healthz"), False, "post", None, DONE),
    ("health", seen("GET", "cluster.healthz", "/healthz", principal=None, path="/healthz"),
     False, "get", None, DONE),
    ("a 404's object is the asked-for one, bounded",
     seen("DELETE", "resources.delete_object", NS_RULE, {**CM, "name": "n" * 1000}, code=404),
     True, "delete", ref("configmaps", "ConfigMap", "default", "n" * 253), DONE),
    ("an unknown plural",
     seen("POST", "resources.create_object", NS_LIST, {"namespace": "default", "plural": "widgets"},
          code=404),
     True, "create", ref("widgets", None, "default"), DONE),
]


@pytest.mark.parametrize(("what", "request_seen", "kept", "verb", "object_ref", "stage"), TABLE,
                         ids=[row[0] for row in TABLE])
def test_what_is_kept_and_how_it_is_named(what: str, request_seen: Seen, kept: bool, verb: str,
                                          object_ref: dict | None, stage: str) -> None:
    assert audited(request_seen) == kept, what
    line = record(request_seen, "2026-11-30T16:00:00.000001Z", "id-1")
    assert (line["verb"], line["objectRef"], line["stage"]) == (verb, object_ref, stage), what


def test_a_record_holds_these_fields_and_no_more() -> None:
    line = record(seen("POST", "resources.create_object", NS_LIST, {"namespace": "default",
                                                                     "plural": "secrets"},
                       [("dryRun", "All"), ("token", "admin-token-alice")], code=201),
                  "2026-11-30T16:00:00.000001Z", "id-1")
    assert line == {
        "time": "2026-11-30T16:00:00.000001Z", "stage": "ResponseComplete", "auditID": "id-1",
        "user": {"name": "alice", "role": "admin"}, "sourceIP": "10.0.0.9", "verb": "create",
        "objectRef": ref("secrets", "Secret", "default"), "route": NS_LIST,
        "query": ["dryRun=All"], "otherParams": 1, "code": 201,
    }
    refused = record(seen("POST", None, principal=None, code=401), "t", "id-2")
    assert refused["user"] is None  # a 401 has no user: nobody was recognized
    assert refused["route"] is None and refused["objectRef"] is None


@pytest.mark.parametrize(("query", "kept", "others"), [
    ([], [], 0),
    ([("dryRun", "All"), ("gracePeriodSeconds", "0"), ("propagationPolicy", "Orphan")],
     ["dryRun=All", "gracePeriodSeconds=0", "propagationPolicy=Orphan"], 0),
    ([("follow", "true"), ("tailLines", "100"), ("container", "web"), ("timestamps", "1")],
     ["follow=true", "tailLines=100", "container=web", "timestamps=1"], 0),
    # a value outside its form is data: the name alone is kept
    ([("dryRun", "s3cret"), ("tailLines", "12ab"), ("container", "Not_A_Label"), ("follow", "x" * 40)],
     ["dryRun", "tailLines", "container", "follow"], 0),
    ([("timeoutSeconds", "1.5"), ("since", "12345678901234")], ["timeoutSeconds=1.5", "since"], 0),
    # selectors carry free text (label values): never their values
    ([("labelSelector", "app=web,token=hunter2"), ("fieldSelector", "spec.nodeName=h1")],
     ["labelSelector", "fieldSelector"], 0),
    # names the API does not read are counted, never kept: a name carries data as well as a value
    ([("access_token", "abc"), ("admin-token-alice", ""), ("dryRun", "All")], ["dryRun=All"], 2),
    # repeats: the first, as the API reads it (a thousand repeats make no long line)
    ([("dryRun", "All")] * 1000 + [("dryRun", "evil")], ["dryRun=All"], 0),
])
def test_the_query_keeps_known_names_and_checked_values(query: list[tuple[str, str]], kept: list[str],
                                                        others: int) -> None:
    assert kept_query(query) == (kept, others)


def _app(audit: AuditLog | None = None) -> Any:
    """The API's own app and routes; no store behind it: only what is answered before one is needed."""
    tokens = TokenBook([{"name": "victor", "role": "viewer", "sha256": digest(VIEWER_TOKEN)}])
    return create_app(ApiContext(store=None, tokens=tokens, books=None, audit=audit))  # type: ignore[arg-type]


def test_every_route_of_the_api_is_known_to_the_audit() -> None:
    endpoints = {rule.endpoint for rule in _app().url_map.iter_rules()} - {"static"}
    assert endpoints - set(ENDPOINTS) == set()
    assert set(ENDPOINTS) - endpoints == set()  # no entry left behind by a route that went


@pytest.mark.parametrize(("method", "path", "endpoint", "args"), [
    ("POST", "/api/v1/namespaces/default/configmaps", "resources.create_object",
     {"namespace": "default", "plural": "configmaps"}),
    ("GET", "/api/v1/namespaces/default/secrets/db/status", "resources.get_object",
     {"namespace": "default", "plural": "secrets", "name": "db"}),
    ("POST", "/api/v1/namespaces/default/pods/web/exec/sessions", "sessions.open_exec",
     {"namespace": "default", "name": "web"}),
    ("POST", "/api/v1/nodes/h1/heartbeat", "agent_reports.heartbeat", {"name": "h1"}),
    ("POST", "/api/v1/nope/x/y/z/w/v", None, {}),
    ("PUT", "/api/v1/apply", None, {}),  # a route, not for this method: 405
])
def test_the_door_routes_a_refused_request_as_the_app_would(method: str, path: str, endpoint: str | None,
                                                           args: dict) -> None:
    found, _, view_args = _route(_app(), method, path)
    assert (found, view_args) == (endpoint, args)


class Kept(AuditLog):
    def __init__(self) -> None:
        super().__init__("/nonexistent/audit.log", 4096, 1)
        self.records: list[dict[str, Any]] = []

    def write(self, record: dict[str, Any]) -> None:
        self.records.append(record)


def test_the_app_keeps_its_refusals_with_an_audit_id() -> None:
    kept = Kept()
    client = _app(kept).test_client()
    with client.post("/api/v1/namespaces/default/configmaps?dryRun=All&x=admin-token-alice",
                     headers={"Authorization": "Bearer admin-token-alice"}, json={}) as refused:
        assert refused.status_code == 401  # the app authenticates on its own too (no door here)
    with client.get("/api/v1/namespaces/default/configmaps/web") as read:
        assert read.status_code == 401
    with client.get("/healthz") as health:
        assert "Audit-Id" not in health.headers
    assert [(r["verb"], r["code"], r["user"], r["auditID"]) for r in kept.records] == [
        ("create", 401, None, refused.headers["Audit-Id"]), ("get", 401, None, read.headers["Audit-Id"])]
    assert "admin-token-alice" not in json.dumps(kept.records)


def test_the_door_keeps_what_it_refused() -> None:
    kept = Kept()
    app = _app(kept)
    told = door_refusals(app, app.extensions["berth"])
    audit_id = told(Turned("DELETE", "/api/v1/namespaces/default/secrets/db", "dryRun=All&token=t0ken", 401,
                           "192.0.2.7"))
    assert told(Turned("GET", "/readyz", "", 413, "192.0.2.7")) is None
    assert told(Turned("", "", "", 400, "192.0.2.7")) is None  # a request line waitress could not read
    [line] = kept.records
    assert line["auditID"] == audit_id and line["user"] is None and line["sourceIP"] == "192.0.2.7"
    assert (line["verb"], line["objectRef"], line["query"], line["otherParams"]) == (
        "delete", ref("secrets", "Secret", "default", "db"), ["dryRun=All"], 1)
    assert "t0ken" not in json.dumps(line)
    # a body too long (413) came with a good token: the door names its user, never the token
    told(Turned("POST", "/api/v1/namespaces/default/configmaps", "", 413, "192.0.2.7",
                f"Bearer {VIEWER_TOKEN}"))
    assert kept.records[-1]["user"] == {"name": "victor", "role": "viewer"}
    assert VIEWER_TOKEN not in json.dumps(kept.records)


# --- the file -------------------------------------------------------------------------------

def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_rotation_keeps_the_backups_asked_for_each_file_0600(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.log", 4096, 2)
    audit.start()
    for number in range(150):  # ~100 bytes a record: a file holds about 40
        audit.write({"n": number, "pad": "x" * 80})
    audit.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["audit.log", "audit.log.1", "audit.log.2"]
    for path in tmp_path.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert 0 < path.stat().st_size <= 4096
    kept = [r["n"] for name in ("audit.log.2", "audit.log.1", "audit.log") for r in _lines(tmp_path / name)]
    assert kept == list(range(150 - len(kept), 150))  # the newest, in order, none twice
    assert len(kept) < 150  # the oldest went with the file past the last backup


def test_no_backups_starts_afresh(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.log", 4096, 0)
    audit.start()
    for number in range(100):
        audit.write({"n": number, "pad": "x" * 80})
    audit.close()
    assert [p.name for p in tmp_path.iterdir()] == ["audit.log"]
    assert _lines(tmp_path / "audit.log")[-1]["n"] == 99


def test_a_full_queue_drops_counts_and_says_so_in_the_file(tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    audit = AuditLog(tmp_path / "audit.log", 1 << 20, 1, queue_records=10)
    for number in range(25):  # not started: nothing is taken off the queue
        audit.write({"n": number})
    assert [r.message.split(" record")[0] for r in caplog.records] == [
        "audit log: 1", "audit log: 2", "audit log: 4", "audit log: 8"]
    audit.start()
    audit.close()
    lines = _lines(tmp_path / "audit.log")
    assert [r.get("n") for r in lines[:10]] == list(range(10))
    assert len(lines) == 11 and {"stage": "RecordsDropped", "count": 15}.items() <= lines[10].items()


def test_a_file_that_cannot_be_written_is_said_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    (tmp_path / "audit.log").mkdir()  # in the way: every open fails
    audit = AuditLog(tmp_path / "audit.log", 1 << 20, 1)
    audit.start()
    for number in range(20):
        audit.write({"n": number})
    wait_until(lambda: audit._missing == 20, 5, what="every record counted as lost")
    errors = [r for r in caplog.records if "cannot be written" in r.message]
    assert len(errors) == 1
    (tmp_path / "audit.log").rmdir()
    audit.write({"n": "again"})
    audit.close()
    lines = _lines(tmp_path / "audit.log")
    assert lines[0] == {"n": "again"}
    assert {"stage": "RecordsDropped", "count": 20}.items() <= lines[1].items()
    assert any("written again" in r.message for r in caplog.records)


@pytest.mark.parametrize("settings", [{"audit_log_max_bytes": 4095}, {"audit_log_max_bytes": "1Mi"},
                                      {"audit_log_backups": -1}, {"audit_log_backups": 1.5}])
def test_settings_are_checked_at_start(settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(settings))):
        MasterConfig(name="m1", raft_address="127.0.0.1:7201", api_address="127.0.0.1:7101",
                     data_dir="/tmp/unused", tokens_file="/tmp/unused", insecure_raft_without_password=True,
                     controllers=["node-lifecycle"], **settings)


@pytest.mark.parametrize(("rule", "shown"), [
    ("/api/v1/namespaces/<dns:namespace>/<any(pods,secrets):plural>/<dns:name>", NS_RULE),
    ("/api/v1/<any(nodes):plural>", "/api/v1/<plural>"),
    ("/api/v1/openapi.json", "/api/v1/openapi.json"),
    (None, None),
])
def test_a_route_is_recorded_by_its_variables_alone(rule: str | None, shown: str | None) -> None:
    assert readable_rule(rule) == shown
