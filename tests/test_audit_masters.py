"""The audit log of real masters: one line per kept request, on the master that served it, and never a
secret's value or a token."""

from __future__ import annotations

import base64
import json
import re
import stat
from pathlib import Path
from typing import Any

import requests

from tests.conftest import STORE_ONLY
from tests.harness import TOKENS, MasterCluster, wait_until
from tests.test_security import _raw_request

MAX_BYTES, BACKUPS = 16384, 2
CLUSTER_SETTINGS = {**STORE_ONLY, "audit_log_max_bytes": MAX_BYTES, "audit_log_backups": BACKUPS}
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
SECRETS = "/api/v1/namespaces/default/secrets"
SECRET_VALUE = "audit-s3cret-value-7f3a"
MERGE = {"Content-Type": "application/merge-patch+json"}
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def _files(cluster: MasterCluster, index: int) -> list[Path]:
    """The audit files of one master, oldest first."""
    audit = cluster.specs[index].data_dir / "audit.log"
    backups = [audit.with_name(f"audit.log.{n}") for n in range(BACKUPS + 1, 0, -1)]
    return [p for p in [*backups, audit] if p.exists()]


def _lines(cluster: MasterCluster, index: int = 0) -> list[dict[str, Any]]:
    return [json.loads(line) for path in _files(cluster, index) for line in path.read_text().splitlines()]


def _text(cluster: MasterCluster) -> str:
    return "".join(path.read_text() for index in range(len(cluster)) for path in _files(cluster, index))


def line_of(cluster: MasterCluster, response: requests.Response, index: int = 0) -> dict[str, Any]:
    """The one line of the request `response` answered, on the master `index` that served it."""
    return line_with(cluster, response.headers["Audit-Id"], index)


def line_with(cluster: MasterCluster, audit_id: str, index: int = 0) -> dict[str, Any]:
    lines = wait_until(lambda: [x for x in _lines(cluster, index) if x.get("auditID") == audit_id], 10,
                       what=f"the audit line {audit_id}")
    assert len(lines) == 1, lines
    assert TIME.fullmatch(lines[0]["time"]) and lines[0]["sourceIP"] == "127.0.0.1"
    return lines[0]


def _brief(line: dict[str, Any]) -> tuple:
    user = line["user"] and (line["user"]["name"], line["user"]["role"])
    return line["verb"], line["objectRef"], user, line["code"], line["stage"]


def ref(resource: str, kind: str | None, name: str | None = None, subresource: str | None = None,
        namespace: str | None = "default") -> dict[str, Any]:
    return {"resource": resource, "kind": kind, "namespace": namespace, "name": name,
            "subresource": subresource}


ADMIN, VIEWER = ("alice", "admin"), ("victor", "viewer")
DONE, STARTED = "ResponseComplete", "ResponseStarted"


def test_writes_are_kept_one_line_each(cluster: MasterCluster) -> None:
    admin = cluster.session("admin")
    created = admin.post(cluster.url(0, CONFIGMAPS), json={"kind": "ConfigMap", "metadata": {"name": "a1"},
                                                            "data": {"k": "v"}})
    replaced = admin.put(cluster.url(0, f"{CONFIGMAPS}/a1"), json={**created.json(), "data": {"k": "w"}})
    patched = admin.patch(cluster.url(0, f"{CONFIGMAPS}/a1"), json={"data": {"k": "x"}}, headers=MERGE)
    deleted = admin.delete(cluster.url(0, f"{CONFIGMAPS}/a1?gracePeriodSeconds=0"))
    assert [r.status_code for r in (created, replaced, patched, deleted)] == [201, 200, 200, 200]
    cm = ref("configmaps", "ConfigMap", "a1")
    assert _brief(line_of(cluster, created)) == ("create", {**cm, "name": None}, ADMIN, 201, DONE)
    assert _brief(line_of(cluster, replaced)) == ("update", cm, ADMIN, 200, DONE)
    assert _brief(line_of(cluster, patched)) == ("patch", cm, ADMIN, 200, DONE)
    line = line_of(cluster, deleted)
    assert _brief(line) == ("delete", cm, ADMIN, 200, DONE)
    assert line["route"] == "/api/v1/namespaces/<namespace>/<plural>/<name>"
    assert line["query"] == ["gracePeriodSeconds=0"]
    others = [x for i in (1, 2) for x in _lines(cluster, i)]  # kept where it was served alone
    assert not any(x.get("auditID") == created.headers["Audit-Id"] for x in others)


def test_secret_reads_are_kept_and_their_values_never(cluster: MasterCluster) -> None:
    admin, operator, viewer = (cluster.session(r) for r in ("admin", "operator", "viewer"))
    created = admin.post(cluster.url(0, SECRETS), json={"kind": "Secret", "metadata": {"name": "audited"},
                                                         "stringData": {"password": SECRET_VALUE}})
    got = admin.get(cluster.url(0, f"{SECRETS}/audited"))
    assert got.json()["data"]["password"] == base64.b64encode(SECRET_VALUE.encode()).decode()
    listed = viewer.get(cluster.url(0, "/api/v1/secrets?labelSelector=team%3Dx"))
    with operator.get(cluster.url(0, "/api/v1/watch?kind=Secret&namespace=default&timeoutSeconds=1"),
                      stream=True) as watched:
        list(watched.iter_lines())
    assert [r.status_code for r in (created, got, listed, watched)] == [201, 200, 200, 200]
    secret = ref("secrets", "Secret", "audited")
    assert _brief(line_of(cluster, created)) == ("create", {**secret, "name": None}, ADMIN, 201, DONE)
    assert _brief(line_of(cluster, got)) == ("get", secret, ADMIN, 200, DONE)
    line = line_of(cluster, listed)
    assert _brief(line) == ("list", ref("secrets", "Secret", namespace=None), VIEWER, 200, DONE)
    assert line["query"] == ["labelSelector"]  # a selector's text is not kept
    assert _brief(line_of(cluster, watched)) == (
        "watch", ref("secrets", "Secret"), ("olga", "operator"), 200, STARTED)
    # another kind's read is not kept
    plain = admin.get(cluster.url(0, "/api/v1/namespaces/default/configmaps"))
    assert plain.status_code == 200 and "Audit-Id" not in plain.headers
    assert admin.delete(cluster.url(0, f"{SECRETS}/audited")).status_code == 200
    text = _text(cluster)
    encoded = base64.b64encode(SECRET_VALUE.encode()).decode()
    for never in (SECRET_VALUE, encoded, *(token for _, token in TOKENS.values()), "Bearer"):
        assert never not in text


def test_refusals_are_kept_a_401_without_a_user(cluster: MasterCluster) -> None:
    viewer = cluster.session("viewer")
    forbidden = viewer.post(cluster.url(0, CONFIGMAPS), json={"kind": "ConfigMap", "metadata": {"name": "v"}})
    assert forbidden.status_code == 403
    assert _brief(line_of(cluster, forbidden)) == (
        "create", ref("configmaps", "ConfigMap"), VIEWER, 403, DONE)
    # refused at the door, before the app: the door's answer carries its id all the same
    anyone = cluster.session(None)
    door = anyone.delete(cluster.url(0, f"{SECRETS}/x?dryRun=All&note={TOKENS['admin'][1]}"),
                           headers={"Authorization": "Bearer wrong-token-guess"})
    assert door.status_code == 401
    line = line_of(cluster, door)
    assert _brief(line) == ("delete", ref("secrets", "Secret", "x"), None, 401, DONE)
    assert (line["query"], line["otherParams"]) == (["dryRun=All"], 1)
    anonymous = anyone.get(cluster.url(0, "/api/v1/pods"))
    assert _brief(line_of(cluster, anonymous)) == (
        "list", ref("pods", "Pod", namespace=None), None, 401, DONE)
    # a body too long, with a good token: refused at the door before the body, the user known
    answer = _raw_request(cluster, 0,
                          f"POST {CONFIGMAPS} HTTP/1.1\r\nHost: x\r\n"
                          f"Authorization: Bearer {TOKENS['viewer'][1]}\r\nContent-Length: 200000000\r\n\r\n"
                          ).decode()
    assert answer.startswith("HTTP/1.1 413")
    found = re.search(r"(?im)^audit-id: (\S+)\r$", answer)
    assert found is not None, answer
    assert _brief(line_with(cluster, found.group(1))) == (
        "create", ref("configmaps", "ConfigMap"), VIEWER, 413, DONE)
    text = _text(cluster)
    assert "wrong-token-guess" not in text and TOKENS["admin"][1] not in text
    # not kept: health, and an agent's reports (here of a node that does not exist)
    agent = cluster.session("agent")
    beat = agent.post(cluster.url(0, "/api/v1/nodes/h1/heartbeat"), json={"cpuPercent": 1, "memoryUsed": 1})
    health = anyone.post(cluster.url(0, "/healthz"))
    assert beat.status_code not in (401, 403) and health.status_code == 405
    assert "Audit-Id" not in beat.headers and "Audit-Id" not in health.headers


def test_logs_and_exec_are_kept_even_without_hosts(cluster: MasterCluster) -> None:
    """Masters-only: no SSH key, so the master answers 503; the request is kept all the same."""
    operator = cluster.session("operator")
    logs = operator.get(cluster.url(0, "/api/v1/namespaces/default/pods/p/log?follow=true&container=main"))
    opened = operator.post(cluster.url(0, "/api/v1/namespaces/default/pods/p/exec/sessions"),
                           json={"command": ["cat", "/etc/shadow"], "stdin": True})
    assert (logs.status_code, opened.status_code) == (503, 503)
    line = line_of(cluster, logs)
    assert _brief(line) == ("get", ref("pods", "Pod", "p", "log"), ("olga", "operator"), 503, DONE)
    assert line["query"] == ["follow=true", "container=main"]
    assert _brief(line_of(cluster, opened)) == (
        "create", ref("pods", "Pod", "p", "exec"), ("olga", "operator"), 503, DONE)
    assert "/etc/shadow" not in _text(cluster)  # a body is never kept, an exec's command neither


def test_rotation_keeps_the_backups_asked_for(cluster: MasterCluster) -> None:
    sent = 250  # refused at the door: about 330 bytes of line each (3 files hold about 150), no Raft write
    anyone = cluster.session(None)
    for number in range(sent):
        assert anyone.post(cluster.url(1, f"{CONFIGMAPS}?n={number}")).status_code == 401
    files = wait_until(lambda: (f := _files(cluster, 1)) and len(f) == BACKUPS + 1 and f, 10,
                       what="rotated files")
    assert [p.name for p in files] == ["audit.log.2", "audit.log.1", "audit.log"]
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.stat().st_size <= MAX_BYTES
    kept = _lines(cluster, 1)
    assert all(x["code"] == 401 and x["otherParams"] == 1 for x in kept)
    assert len(kept) < sent  # the oldest went with the file past the last backup
