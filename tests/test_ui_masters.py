"""The web page's side of the masters: `/ui/` served to anyone with the page's security headers and
nothing else of the package, and the watch as server-sent events beside its JSON lines (three
masters on loopback; the page itself in a browser is tests/test_lab_cluster.py's)."""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import ssl
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from flask import Flask

from master.api import ui
from master.api.watch import sse_frame, wants_event_stream
from tests.harness import TOKENS, MasterCluster

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


def configmap(name: str) -> dict[str, Any]:
    return {"apiVersion": "berth/v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}}


# --- pure --------------------------------------------------------------------------------------

def test_an_event_frame_is_one_event_whatever_its_strings_hold() -> None:
    message = "a\n\nevent: DELETED\r\ndata: x\rdata: y"  # CR, LF and CRLF each end an SSE line
    frame = sse_frame({"type": "ADDED", "revision": 7, "object": {"message": message}}).decode()
    head, data = frame[:-2].rsplit("\n", 1)
    assert head == "event: ADDED\nid: 7" and frame.endswith("\n\n") and frame.count("\n\n") == 1
    assert "\r" not in frame
    assert json.loads(data.removeprefix("data: "))["object"]["message"] == message
    assert sse_frame({"type": "ERROR", "code": 410}) == b'event: ERROR\ndata: {"type":"ERROR","code":410}\n\n'


@pytest.mark.parametrize(("accept", "sse"), [
    (None, False), ("*/*", False), ("application/x-ndjson", False), ("text/event-stream", True),
    ("text/event-stream, application/json;q=0.5", True),
    ("application/x-ndjson, text/event-stream;q=0.1", False), ("text/event-stream;q=0", False),
])
def test_server_sent_events_only_when_accept_prefers_them(accept: str | None, sse: bool) -> None:
    with Flask("t").test_request_context(headers={"Accept": accept} if accept else {}):
        assert wants_event_stream() is sse


def test_every_served_file_is_in_the_package_and_the_vendored_sum_is_recorded() -> None:
    for name in ui.FILES:
        assert (ui.DIRECTORY / name).is_file(), name
    vendor = ui.DIRECTORY / "vendor"
    digest = hashlib.sha256((ui.DIRECTORY / ui.ALPINE).read_bytes()).hexdigest()
    listed = (vendor / "VENDORED.md").read_text()
    assert f"| {ui.ALPINE.removeprefix('vendor/')} |" in listed and digest in listed
    assert (vendor / "LICENSE-alpinejs").is_file() and (vendor / "LICENSE-vue-reactivity").is_file()


def test_the_page_runs_no_inline_script_and_renders_no_html() -> None:
    """The CSP forbids inline scripts anyway; x-html would render API strings as markup."""
    page = (ui.DIRECTORY / "index.html").read_text()
    assert re.findall(r"<script[^>]*>", page) == ['<script type="module" src="app.js">']
    assert "x-html" not in page and not re.search(r"\son[a-z]+\s*=", page)  # no onclick= handlers
    script = (ui.DIRECTORY / "app.js").read_text()
    assert "innerHTML" not in script and "EventSource" not in script


# --- the masters -------------------------------------------------------------------------------

def test_the_page_is_served_without_a_token_with_its_security_headers(cluster: MasterCluster) -> None:
    anyone = cluster.session(None)
    page = anyone.get(cluster.url(1, "/ui/"), timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert '<script type="module" src="app.js">' in page.text
    answers = [page]
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css"),
                       (ui.ALPINE, "text/javascript")):
        answers.append(anyone.get(cluster.url(1, f"/ui/{name}"), timeout=10))
        assert answers[-1].status_code == 200 and answers[-1].headers["Content-Type"].startswith(kind), name
        assert answers[-1].content == (ui.DIRECTORY / name).read_bytes()
    for answer in answers:
        csp = answer.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe" not in csp and "script-src 'self';" in csp
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["Referrer-Policy"] == "no-referrer"
        assert answer.headers["Cache-Control"] == "no-cache"
    moved = anyone.get(cluster.url(1, "/ui"), allow_redirects=False, timeout=10)
    assert moved.status_code == 308 and moved.headers["Location"].endswith("/ui/")
    # the API itself still asks for a token
    assert anyone.get(cluster.url(1, "/api/v1/pods"), timeout=10).status_code == 401


def _raw_get(cluster: MasterCluster, target: str, token: str | None) -> tuple[int, bytes]:
    """The request target as written (http.client keeps it; requests and browsers would remove the
    dot segments)."""
    parts = urlsplit(cluster.url(0))
    connection = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=10,
                                             context=ssl.create_default_context(cafile=cluster.ca_file))
    try:
        connection.request("GET", target, headers={"Authorization": f"Bearer {token}"} if token else {})
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


@pytest.mark.parametrize("target", [
    "/ui/../master/api/app.py", "/ui/%2e%2e/app.py", "/ui/..%2fapp.py", "/ui/..%2F..%2Fmaster%2Fmain.py",
    "/ui/./index.html", "/ui//index.html", "/ui/vendor/VENDORED.md", "/ui/vendor/LICENSE-alpinejs",
    "/ui/ui.py", "/ui/%2fetc%2fpasswd", "/ui/index.html%00.py", "/ui/vendor/../app.js",
])
def test_nothing_but_the_pages_files_is_served(cluster: MasterCluster, target: str) -> None:
    """Not a path into the package: without a token the door answers 401 (not an open path), with
    one the page's blueprint finds no such file (404)."""
    status, answer = _raw_get(cluster, target, None)
    assert status == 401, answer[:300]
    status, answer = _raw_get(cluster, target, TOKENS["admin"][1])
    assert status == 404, answer[:300]
    assert json.loads(answer)["reason"] == "NotFound"
    assert b"import" not in answer and b"<html" not in answer


def _frames(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """Server-sent events as a client reads them: fields until a blank line; comments apart."""
    frame: dict[str, Any] = {}
    for line in lines:
        if line == "":
            if frame:
                yield frame
            frame = {}
        elif line.startswith(":"):
            yield {"comment": line[1:].strip()}
        else:
            field, _, value = line.partition(":")
            frame[field] = value.removeprefix(" ")


def _until(frames: Iterator[dict[str, Any]], wanted: str) -> list[dict[str, Any]]:
    seen = []
    for frame in frames:
        seen.append(frame)
        if frame.get("data") and json.loads(frame["data"]).get("object", {}).get("metadata", {}).get(
                "name") == wanted:
            return seen
    raise AssertionError(f"the stream ended before {wanted}: {seen}")


def test_the_watch_as_server_sent_events_and_as_json_lines(cluster: MasterCluster) -> None:
    admin = cluster.session()
    start = admin.get(cluster.url(0, CONFIGMAPS), timeout=10).json()["metadata"]["resourceVersion"]
    created = admin.post(cluster.url(0, CONFIGMAPS), json=configmap("sse-one"), timeout=10)
    assert created.status_code == 201, created.text
    revision = created.json()["metadata"]["resourceVersion"]
    query = f"/api/v1/watch?kind=ConfigMap&namespace=default&since={start}&timeoutSeconds=8"
    with admin.get(cluster.url(1, query), headers={"Accept": "text/event-stream"}, stream=True,
                   timeout=20) as sse:
        assert sse.status_code == 200 and sse.headers["Content-Type"].startswith("text/event-stream")
        seen = _until(_frames(sse.iter_lines(decode_unicode=True)), "sse-one")
    assert seen[0]["event"] == "BOOKMARK" and seen[0]["id"] == str(start)
    added = seen[-1]
    assert (added["event"], added["id"]) == ("ADDED", str(revision))
    assert json.loads(added["data"]) == {"type": "ADDED", "revision": revision, "object": created.json()}

    # resumed as an SSE client resumes: Last-Event-ID, the id of the last event it had
    second = admin.post(cluster.url(0, CONFIGMAPS), json=configmap("sse-two"), timeout=10).json()
    with admin.get(cluster.url(2, "/api/v1/watch?kind=ConfigMap&timeoutSeconds=8"), stream=True, timeout=20,
                   headers={"Accept": "text/event-stream", "Last-Event-ID": str(revision)}) as resumed:
        frames = _until(_frames(resumed.iter_lines(decode_unicode=True)), "sse-two")
    assert [f.get("event") for f in frames] == ["BOOKMARK", "ADDED"]
    assert frames[-1]["id"] == str(second["metadata"]["resourceVersion"])
    bad = admin.get(cluster.url(2, "/api/v1/watch?kind=ConfigMap"), timeout=10,
                    headers={"Accept": "text/event-stream", "Last-Event-ID": "x"})
    assert bad.status_code == 400 and bad.json()["field"] == "Last-Event-ID"

    # JSON lines stay the default, as they were
    with admin.get(cluster.url(1, query), stream=True, timeout=20) as ndjson:
        assert ndjson.headers["Content-Type"].startswith("application/x-ndjson")
        lines = []
        for line in ndjson.iter_lines(decode_unicode=True):
            lines.append(json.loads(line))
            if lines[-1].get("object", {}).get("metadata", {}).get("name") == "sse-one":
                break
    assert lines[0] == {"type": "BOOKMARK", "revision": start}
    assert lines[-1] == {"type": "ADDED", "revision": revision, "object": created.json()}
    for name in ("sse-one", "sse-two"):
        admin.delete(cluster.url(0, f"{CONFIGMAPS}/{name}"), timeout=10)


def test_an_idle_event_stream_has_heartbeats_with_the_revision(cluster: MasterCluster) -> None:
    """A bookmark comes every watch_bookmark_seconds (5 s) of silence, after a `: heartbeat` comment."""
    admin = cluster.session()
    query = "/api/v1/watch?kind=ConfigMap&namespace=hb-none&timeoutSeconds=12"
    with admin.get(cluster.url(0, query), headers={"Accept": "text/event-stream"}, stream=True,
                   timeout=30) as sse:
        frames = _frames(sse.iter_lines(decode_unicode=True))
        first = next(frames)
        beat = next(frames)
        after = next(frames)
    assert first["event"] == "BOOKMARK" and beat == {"comment": "heartbeat"}
    assert after["event"] == "BOOKMARK" and int(after["id"]) >= int(first["id"])


def test_a_viewer_reads_the_page_and_the_event_stream_too(cluster: MasterCluster) -> None:
    viewer = cluster.session("viewer")
    assert viewer.get(cluster.url(0, "/ui/"), timeout=10).status_code == 200
    with viewer.get(cluster.url(0, "/api/v1/watch?kind=Pod&timeoutSeconds=1"), stream=True, timeout=10,
                    headers={"Accept": "text/event-stream"}) as sse:
        assert sse.status_code == 200
        assert next(sse.iter_lines(decode_unicode=True)).startswith("event: BOOKMARK")
    refused = requests.get(cluster.url(0, "/api/v1/watch?kind=Pod"), verify=str(cluster.ca_file), timeout=10,
                           headers={"Accept": "text/event-stream"})
    assert refused.status_code == 401
