"""Unit tests of the `berth` CLI that need no master: a tiny local HTTP server stands in.

All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from click.testing import CliRunner

from berth.cli import manifests
from berth.cli.config import DEFAULT_SERVER, ConfigError, config_path, resolve
from berth.cli.describe import describe, related_events, title
from berth.cli.describe_nodes import describe_node
from berth.cli.describe_services import describe_service
from berth.cli.main import main
from berth.cli.output import render_objects, render_table
from berth.cli.timefmt import age, human_duration
from berth.cli.watching import follow, relist_events
from berth.client import Client, kind_info
from berth.errors import ApiError, BerthError, UnknownKind, Unreachable
from berth.frames import Stream, end_frame, frame

NOW = datetime(2026, 11, 26, 15, 0, 0, tzinfo=UTC)


def stamp(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def pod(name: str, *, ns: str = "default", phase: str | None = "Running", ready: list[bool] | None = None,
        restarts: int = 0, node: str | None = "n1", ip: str | None = "10.0.0.5",
        seconds_ago: float = 300, labels: dict[str, str] | None = None) -> dict[str, Any]:
    ready = [True] if ready is None else ready
    status: dict[str, Any] = {}
    if phase:
        status["phase"] = phase
    if ip:
        status["podIP"] = ip
    status["containerStatuses"] = [
        {"name": f"c{i}", "ready": r, "restartCount": restarts} for i, r in enumerate(ready)
    ]
    spec: dict[str, Any] = {"containers": [{"name": f"c{i}", "image": "nginx"} for i in range(len(ready))]}
    if node:
        spec["nodeName"] = node
    return {
        "apiVersion": "berth/v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels or {}, "uid": f"uid-{name}",
                     "resourceVersion": 7, "creationTimestamp": stamp(seconds_ago)},
        "spec": spec,
        "status": status,
    }


# --- a stand-in master -----------------------------------------------------------------

Route = Callable[["Handler", dict[str, list[str]], bytes], None]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeServer

    def log_message(self, *args: Any) -> None:  # keep pytest output clean
        pass

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.requests.append({
            "method": self.command, "path": url.path, "query": parse_qs(url.query),
            "body": body, "headers": dict(self.headers),
        })
        route = self.server.routes.get((self.command, url.path))
        if route is None:
            self.send_json(404, {"error": f"no route {url.path}", "reason": "NotFound", "field": None})
            return
        route(self, parse_qs(url.query), body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def send_json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_bytes(self, data: bytes, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_stream(self, lines: list[dict[str, Any]]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for line in lines:
            chunk = (json.dumps(line) + "\n").encode()
            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.routes: dict[tuple[str, str], Route] = {}
        self.requests: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def json(self, method: str, path: str, payload: Any, status: int = 200) -> None:
        self.routes[(method, path)] = lambda h, q, b: h.send_json(status, payload)

    def exec_session(self, pod: str, stdout: bytes, exit_code: int, session_id: str = "s" * 32) -> None:
        """A pod's exec session that writes `stdout` and ends with `exit_code`."""
        self.json("POST", f"/api/v1/namespaces/default/pods/{pod}/exec/sessions", {"id": session_id}, 201)
        framed = frame(Stream.STDOUT, stdout) + end_frame(exit_code)
        self.routes[("GET", f"/api/v1/sessions/{session_id}/output")] = lambda h, q, b: h.send_bytes(framed)
        for method, path in (("POST", "/input"), ("DELETE", "")):
            self.routes[(method, f"/api/v1/sessions/{session_id}{path}")] = lambda h, q, b: h.send_bytes(
                b"", 204)


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    yield from _serve()


@pytest.fixture
def fake2() -> Iterator[FakeServer]:
    yield from _serve()


def _serve() -> Iterator[FakeServer]:
    server = FakeServer()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def down_url() -> str:
    """A port nothing listens on: bind one, then release it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def pod_list(*pods: dict[str, Any], rv: int = 42) -> dict[str, Any]:
    return {"apiVersion": "berth/v1", "kind": "PodList", "metadata": {"resourceVersion": rv},
            "items": list(pods)}


# --- config ----------------------------------------------------------------------------

def write_config(path: Path, **data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


def test_config_file_under_xdg_config_home(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path / "home")}
    assert config_path(None, env) == tmp_path / "xdg" / "berth" / "config.yaml"
    env = {"HOME": str(tmp_path / "home")}
    assert config_path(None, env) == tmp_path / "home" / ".config" / "berth" / "config.yaml"
    env["BERTH_CONFIG"] = str(tmp_path / "b.yaml")
    assert config_path(None, env) == tmp_path / "b.yaml"
    assert config_path(str(tmp_path / "flag.yaml"), env) == tmp_path / "flag.yaml"


def test_config_precedence_flag_over_env_over_file(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "berth" / "config.yaml",
                       servers=["http://file-a:1", "file-b:2"], token="file-token", namespace="filens")
    env = {"XDG_CONFIG_HOME": str(tmp_path)}

    from_file = resolve(env=env)
    assert from_file.servers == ("http://file-a:1", "https://file-b:2")  # no scheme: HTTPS
    assert (from_file.token, from_file.namespace) == ("file-token", "filens")
    assert from_file.path == cfg

    env.update(BERTH_SERVER="http://env-a:1, env-b:2", BERTH_TOKEN="env-token")
    from_env = resolve(env=env)
    assert from_env.servers == ("http://env-a:1", "https://env-b:2")
    assert from_env.token == "env-token"
    assert from_env.namespace == "filens"  # not overridden: each setting resolves on its own

    from_flags = resolve(servers=["http://flag-a:1,http://flag-b:2", "flag-c:3"], token="flag-token",
                         namespace="flagns", env=env)
    assert from_flags.servers == ("http://flag-a:1", "http://flag-b:2", "https://flag-c:3")
    assert (from_flags.token, from_flags.namespace) == ("flag-token", "flagns")
    assert from_flags.sources == {"servers": "flag", "token": "flag", "namespace": "flag"}


def test_config_explicit_file_and_defaults(tmp_path: Path) -> None:
    other = write_config(tmp_path / "other.yaml", servers=["http://x:9"])
    assert resolve(config_file=str(other), env={}).servers == ("http://x:9",)
    empty = resolve(env={"XDG_CONFIG_HOME": str(tmp_path / "none")})
    assert empty.servers == (DEFAULT_SERVER,)
    assert empty.token is None and empty.namespace == "default"
    # a file the user named must exist: it once fell back to 127.0.0.1:7101 without a word
    for named in ({"config_file": str(tmp_path / "missing.yaml"), "env": {}},
                  {"env": {"BERTH_CONFIG": str(tmp_path / "missing.yaml")}}):
        with pytest.raises(ConfigError, match="does not exist"):
            resolve(**named)  # type: ignore[arg-type] - the two ways to name it
    missing = CliRunner().invoke(main, ["--config", str(tmp_path / "missing.yaml"), "get", "pods"])
    assert missing.exit_code == 1 and "missing.yaml does not exist" in missing.output


def test_bad_config_file_is_a_clean_error(tmp_path: Path, fake: FakeServer) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("servers: [unclosed")
    result = CliRunner().invoke(main, ["--config", str(bad), "get", "pods"])
    assert result.exit_code == 1
    assert "not valid YAML" in result.stderr
    assert "Traceback" not in result.output


# --- kinds, ages, tables ---------------------------------------------------------------

@pytest.mark.parametrize(("alias", "kind"), [
    ("po", "Pod"), ("pod", "Pod"), ("pods", "Pod"), ("Pod", "Pod"),
    ("deploy", "Deployment"), ("deployments", "Deployment"),
    ("svc", "Service"), ("cm", "ConfigMap"), ("no", "Node"), ("hpa", "HorizontalPodAutoscaler"),
    ("ev", "Event"), ("secret", "Secret"), ("ep", "Endpoints"), ("endpoints", "Endpoints"),
])
def test_kind_aliases(alias: str, kind: str) -> None:
    assert kind_info(alias).kind == kind


def test_unknown_kind() -> None:
    with pytest.raises(UnknownKind):
        kind_info("frobnicators")
    result = CliRunner().invoke(main, ["--server", "http://127.0.0.1:9", "get", "frobnicators"])
    assert result.exit_code == 1
    assert 'resource type "frobnicators"' in result.stderr


@pytest.mark.parametrize(("seconds", "text"), [
    (-5, "<invalid>"), (-0.5, "0s"), (0, "0s"), (5, "5s"), (119, "119s"), (120, "2m"),
    (150, "2m30s"), (180, "3m"), (600, "10m"), (3 * 3600 - 1, "179m"), (3 * 3600, "3h"),
    (2 * 3600 + 60 * 20, "140m"), (5 * 3600 + 600, "5h10m"), (9 * 3600, "9h"), (47 * 3600, "47h"),
    (4 * 86400, "4d"), (4 * 86400 + 3 * 3600, "4d3h"), (30 * 86400, "30d"),
    (3 * 365 * 86400, "3y"), (9 * 365 * 86400, "9y"),
])
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_age_from_timestamps() -> None:
    assert age("2026-11-26T14:59:55.123456Z", NOW) == "4s"
    assert age("2026-11-26T14:57:00Z", NOW) == "3m"
    assert age("2026-11-22T15:00:00+00:00", NOW) == "4d"
    assert age(None, NOW) == "<unknown>"
    assert age("yesterday", NOW) == "<unknown>"


def test_pod_table() -> None:
    items = [
        pod("web-1", seconds_ago=5),
        pod("web-2", phase=None, ready=[False, True], restarts=3, node=None, ip=None, seconds_ago=7200),
    ]
    assert render_objects("Pod", items, None, now=NOW) == (
        "NAME    READY   STATUS    RESTARTS   AGE\n"
        "web-1   1/1     Running   0          5s\n"
        "web-2   1/2     Pending   6          120m\n"
    )
    wide = render_objects("Pod", items, "wide", namespaced_view=True, now=NOW)
    assert wide.splitlines() == [
        "NAMESPACE   NAME    READY   STATUS    RESTARTS   AGE    IP         NODE",
        "default     web-1   1/1     Running   0          5s     10.0.0.5   n1",
        "default     web-2   1/2     Pending   6          120m   <none>     <none>",
    ]


def test_a_finished_pod_shows_how_it_ended_as_kubectl_does() -> None:
    from berth.cli.columns import pod_status

    done = pod("done", phase="Succeeded")
    failed = pod("failed", phase="Failed")
    assert (pod_status(done, NOW), pod_status(failed, NOW)) == ("Completed", "Error")
    killed = {"terminated": {"reason": "OOMKilled", "exitCode": 137}}
    failed["status"]["containerStatuses"][0]["state"] = killed
    assert pod_status(failed, NOW) == "OOMKilled"


def test_a_pod_on_a_lost_node_shows_unknown_then_terminating() -> None:
    from berth.cli.columns import pod_status

    lost = pod("lost", phase="Unknown")
    lost["status"]["reason"] = "NodeLost"
    assert pod_status(lost, NOW) == "Unknown"
    lost["metadata"]["deletionTimestamp"] = "2026-11-30T00:00:00Z"
    assert pod_status(lost, NOW) == "Terminating"


@pytest.mark.parametrize(("ready", "unschedulable", "shown"), [
    ("True", False, "Ready"),
    ("False", False, "NotReady"),  # its agent says the runtime fails
    ("Unknown", True, "NotReady,SchedulingDisabled"),  # silent, as kubectl shows it
    (None, False, "Unknown"),  # never reported
])
def test_a_nodes_status_column(ready: str | None, unschedulable: bool, shown: str) -> None:
    from berth.cli.columns import node_status

    conditions = [] if ready is None else [{"type": "Ready", "status": ready}]
    node = {"spec": {"unschedulable": unschedulable}, "status": {"conditions": conditions}}
    assert node_status(node, NOW) == shown


@pytest.mark.parametrize(("inits", "phase", "shown"), [
    ([], "Pending", "Pending"),  # none reported yet: the phase
    ([{"waiting": {"reason": "PodInitializing"}}, {"waiting": {"reason": "PodInitializing"}}], "Pending",
     "Init:0/2"),
    ([{"running": {"startedAt": "1"}}, {"waiting": {"reason": "PodInitializing"}}], "Pending", "Init:0/2"),
    ([{"terminated": {"exitCode": 0, "reason": "Completed"}}, {"running": {}}], "Pending", "Init:1/2"),
    ([{"terminated": {"exitCode": 0}}, {"terminated": {"exitCode": 2, "reason": "Error"}}], "Failed",
     "Init:Error"),
    ([{"terminated": {"exitCode": 0}}, {"terminated": {"exitCode": 2}}], "Failed", "Init:ExitCode:2"),
    ([{"waiting": {"reason": "CrashLoopBackOff"}}, {"waiting": {"reason": "PodInitializing"}}], "Pending",
     "Init:CrashLoopBackOff"),
    ([{"terminated": {"exitCode": 0}}, {"terminated": {"exitCode": 0}}], "Running", "Running"),
])
def test_init_containers_show_in_the_status_column_as_kubectl_shows_them(inits: list, phase: str,
                                                                         shown: str) -> None:
    from berth.cli.columns import pod_restarts, pod_status

    obj = pod("web", phase=phase, restarts=1)
    obj["spec"]["initContainers"] = [{"name": "a", "image": "x"}, {"name": "b", "image": "x"}]
    obj["status"]["initContainerStatuses"] = [{"name": n, "state": s, "restartCount": 2}
                                              for n, s in zip("ab", inits, strict=False)]
    assert pod_status(obj, NOW) == shown
    assert pod_restarts(obj, NOW) == str(1 + 2 * len(inits))  # init containers' restarts count too


def test_describe_lists_init_containers() -> None:
    obj = pod("web")
    obj["spec"]["initContainers"] = [{"name": "setup", "image": "busybox"}]
    obj["status"]["initContainerStatuses"] = [{"name": "setup", "restartCount": 0, "ready": True, "state": {
        "terminated": {"exitCode": 0, "reason": "Completed", "finishedAt": "1795000000"}}}]
    text = describe(obj, [], NOW)
    assert "  Init Containers:\n    - Name:   setup\n      Image:  busybox\n" in text
    assert "  Init Container Statuses:\n    - Name:           setup\n" in text
    assert "Finished At:  Wed, 18 Nov 2026 11:06:40 +0000" in text


def test_other_outputs_and_markup_safety() -> None:
    items = [pod("web")]
    assert render_objects("Pod", items, "name") == "pod/web\n"
    assert json.loads(render_objects("Pod", items, "json"))["items"][0]["metadata"]["name"] == "web"
    assert yaml.safe_load(render_objects("Pod", items, "yaml", payload=items[0]))["kind"] == "Pod"
    # Values with [brackets] are data, not rich markup; long rows are never wrapped.
    long = "x" * 300
    text = render_table(["A", "B"], [["[bold]hi[/bold]", long]])
    assert text.splitlines()[1] == "[bold]hi[/bold]   " + long


def test_kind_specific_columns() -> None:
    node = {"kind": "Node", "metadata": {"name": "n1", "creationTimestamp": stamp(60),
                                         "labels": {"node-role.berth.io/worker": "",
                                                    "node-role.berth.io/gpu": ""}},
            "spec": {"address": "10.0.0.1", "runtime": "podman"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "capacity": {"cpu": 2000, "memory": 4 << 30},
                       "allocatable": {"cpu": 1900, "memory": (4 << 30) - (128 << 20)},
                       "usage": {"cpuPercent": 12.4, "memoryUsed": 512 << 20}}}
    assert render_objects("Node", [node], "wide", now=NOW).splitlines()[1].split() == [
        "n1", "Ready", "gpu,worker", "1900m/2", "12%", "512Mi/3.9Gi/4Gi", "60s", "10.0.0.1", "podman",
        "<none>"]
    deploy = {"kind": "Deployment", "metadata": {"name": "web", "creationTimestamp": stamp(60)},
              "spec": {"replicas": 3}, "status": {"readyReplicas": 2, "updatedReplicas": 3,
                                                  "availableReplicas": 2}}
    assert render_objects("Deployment", [deploy], None, now=NOW).splitlines() == [
        "NAME   READY   UP-TO-DATE   AVAILABLE   AGE", "web    2/3     3            2           60s"]
    svc = {"kind": "Service", "metadata": {"name": "web", "creationTimestamp": stamp(60)},
           "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}],
                    "clusterIP": "10.96.0.2"}}
    assert render_objects("Service", [svc], None, now=NOW).splitlines()[1].split() == [
        "web", "ClusterIP", "10.96.0.2", "80/TCP", "60s"]
    secret = {"kind": "Secret", "metadata": {"name": "s", "creationTimestamp": stamp(1)},
              "data": {"a": None, "b": None}}
    assert render_objects("Secret", [secret], None, now=NOW).splitlines()[1].split() == [
        "s", "Opaque", "2", "1s"]
    event = {"kind": "Event", "metadata": {"name": "e1"}, "type": "Warning", "reason": "BackOff",
             "involvedObject": {"kind": "Pod", "name": "web"}, "message": "restarting\nagain",
             "lastTimestamp": stamp(30)}
    assert render_objects("Event", [event], None, now=NOW).splitlines() == [
        "LAST SEEN   TYPE      REASON    OBJECT    MESSAGE",
        "30s         Warning   BackOff   pod/web   restarting again",
    ]


def test_a_nodes_pod_subnet_is_shown_wide_and_described() -> None:
    node = {"kind": "Node", "metadata": {"name": "n1", "creationTimestamp": stamp(60)},
            "spec": {"address": "10.0.0.1", "podCIDR": "10.244.3.0/24"}, "status": {}}
    table = render_objects("Node", [node], "wide", now=NOW).splitlines()
    assert table[0].split()[-1] == "POD-CIDR" and table[1].split()[-1] == "10.244.3.0/24"
    assert "POD-CIDR" not in render_objects("Node", [node], None, now=NOW)
    assert "PodCIDR:              10.244.3.0/24\n" in describe_node(node, [], [], NOW)
    assert "PodCIDR:              <none>\n" in describe_node({**node, "spec": {"address": "h"}}, [], [], NOW)


def test_services_and_endpoints_show_as_kubectl_shows_them() -> None:
    svc = {"kind": "Service",
           "metadata": {"name": "web", "namespace": "default", "creationTimestamp": stamp(60)},
           "spec": {"type": "NodePort", "clusterIP": "10.96.0.10", "selector": {"app": "web"},
                    "sessionAffinity": "None",
                    "ports": [{"name": "http", "port": 80, "targetPort": "web", "nodePort": 30080},
                              {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 5353,
                               "nodePort": 30053}]}}
    assert render_objects("Service", [svc], "wide", now=NOW).splitlines() == [
        "NAME   TYPE       CLUSTER-IP   PORT(S)                     AGE   SELECTOR",
        "web    NodePort   10.96.0.10   80:30080/TCP,53:30053/UDP   60s   app=web"]
    pending = {"kind": "Service", "metadata": {"name": "old"}, "spec": {"ports": [{"port": 80}]}}
    assert render_objects("Service", [pending], None, now=NOW).splitlines()[1].split() == [
        "old", "ClusterIP", "<none>", "80/TCP", "<unknown>"]

    def ready(*last: int) -> list[dict]:
        return [{"ip": f"10.244.1.{n}"} for n in last]

    endpoints = {"kind": "Endpoints", "metadata": {"name": "web", "creationTimestamp": stamp(30)},
                 "subsets": [{"addresses": ready(5, 6), "notReadyAddresses": ready(9),
                              "ports": [{"name": "http", "port": 8080}, {"name": "dns", "port": 5353}]},
                             {"addresses": ready(7), "ports": [{"name": "http", "port": 8081}]}]}
    empty = {"kind": "Endpoints", "metadata": {"name": "none", "creationTimestamp": stamp(30)}, "subsets": [
        {"notReadyAddresses": ready(9), "ports": [{"port": 80}]}]}
    table = render_objects("Endpoints", [endpoints, empty], None, now=NOW).splitlines()
    assert [line.split() for line in table] == [  # ready addresses only, three, then how many more
        ["NAME", "ENDPOINTS", "AGE"],
        ["web", "10.244.1.5:8080,10.244.1.6:8080,10.244.1.5:5353", "+", "2", "more...", "30s"],
        ["none", "<none>", "30s"]]
    page = describe_service(svc, endpoints, [], NOW)
    for line in ("Selector:             app=web", "Type:                 NodePort",
                 "IP:                   10.96.0.10",
                 "Port:                 http  80/TCP", "TargetPort:           web/TCP",
                 "NodePort:             http  30080/TCP",
                 "Endpoints:            10.244.1.5:8080,10.244.1.6:8080,10.244.1.7:8081",
                 "Port:                 dns  53/UDP", "Endpoints:            10.244.1.5:5353,10.244.1.6:5353",
                 "Session Affinity:     None", "Events:"):
        assert line + "\n" in page, (line, page)
    assert "Endpoints:            <none>" in describe_service(pending, None, None, NOW, "unable to list")


# --- describe --------------------------------------------------------------------------

def test_describe_shows_labels_spec_status_and_matching_events() -> None:
    obj = pod("web", labels={"app": "web", "tier": "fe"})
    events = [
        {"kind": "Event", "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default"},
         "reason": "Started", "type": "Normal", "message": "started", "lastTimestamp": stamp(10)},
        {"kind": "Event", "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default"},
         "reason": "Scheduled", "type": "Normal", "message": "to n1", "lastTimestamp": stamp(20)},
        {"kind": "Event", "involvedObject": {"kind": "Pod", "name": "other"},
         "reason": "Scheduled", "message": "not me", "lastTimestamp": stamp(20)},
        {"kind": "Event", "involvedObject": {"kind": "Service", "name": "web"},
         "reason": "Synced", "message": "not me either", "lastTimestamp": stamp(20)},
    ]
    assert [e["reason"] for e in related_events(obj, events)] == ["Scheduled", "Started"]
    text = describe(obj, events, NOW)
    assert "Name:                 web\n" in text
    assert "Labels:               app=web\n                      tier=fe\n" in text
    assert "  Node Name:  n1" in text and "  Pod IP:  10.0.0.5" in text
    assert "    - Name:   c0\n      Image:  nginx" in text
    assert "Scheduled" in text and "to n1" in text and "not me" not in text
    assert describe(obj, None, NOW, "unable to list events: denied").rstrip().endswith(
        "Events:  <unable to list events: denied>")


def test_describe_never_prints_secret_values() -> None:
    secret = {"kind": "Secret", "metadata": {"name": "s"}, "data": {"password": "hunter2", "x": None}}
    text = describe(secret, [], NOW)
    assert "hunter2" not in text
    assert "password:  7 bytes" in text and "x:  <hidden>" in text


def test_title_case() -> None:
    assert title("containerPort") == "Container Port"
    assert title("podIP") == "Pod IP"
    assert title("targetCPUUtilizationPercentage") == "Target CPU Utilization Percentage"


# --- manifests -------------------------------------------------------------------------

def test_manifests_from_directory_stdin_and_lists(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("kind: Pod\nmetadata: {name: a}\n---\n---\nkind: Service\n"
                                     "metadata: {name: s}\n")
    (tmp_path / "b.json").write_text(json.dumps(
        {"kind": "List", "items": [{"kind": "ConfigMap", "metadata": {"name": "c"}}]}))
    (tmp_path / "notes.txt").write_text("ignored")
    objects = manifests.load([str(tmp_path)])
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("Pod", "a"), ("Service", "s"), ("ConfigMap", "c")]
    import io
    assert manifests.load(["-"], io.StringIO("kind: Pod\nmetadata: {name: x}\n"))[0]["kind"] == "Pod"
    with pytest.raises(manifests.ManifestError, match="does not exist"):
        manifests.load([str(tmp_path / "missing.yaml")])
    (tmp_path / "bad.yml").write_text("kind: [")
    with pytest.raises(manifests.ManifestError, match=r"bad\.yml"):
        manifests.load([str(tmp_path / "bad.yml")])


# --- the client and failover -----------------------------------------------------------

def test_failover_skips_a_down_server(fake: FakeServer, down_url: str) -> None:
    fake.json("GET", "/api/v1/namespaces/default/pods", pod_list(pod("web")))
    client = Client([down_url, fake.url], token="t0k")
    listing = client.list("po")
    assert [p["metadata"]["name"] for p in listing["items"]] == ["web"]
    assert fake.requests[0]["headers"]["Authorization"] == "Bearer t0k"
    assert client.current_server == fake.url  # the next request goes straight to it
    client.list("po")
    assert len(fake.requests) == 2


def test_failover_on_503_and_writes_retried(fake: FakeServer, fake2: FakeServer) -> None:
    fake.json("POST", "/api/v1/namespaces/default/pods",
              {"error": "no leader", "reason": "NotReady", "field": None}, status=503)
    fake2.json("POST", "/api/v1/namespaces/default/pods", pod("web"), status=201)
    client = Client([fake.url, fake2.url])
    created = client.create({"kind": "Pod", "metadata": {"name": "web"}, "spec": {}})
    assert created["metadata"]["name"] == "web"
    assert len(fake.requests) == 1 and len(fake2.requests) == 1
    assert json.loads(fake2.requests[0]["body"])["metadata"]["name"] == "web"


def test_unknown_outcome_503_is_not_replayed_for_writes(fake: FakeServer, fake2: FakeServer) -> None:
    timeout = {"error": "the write was not confirmed in time; its outcome is unknown",
               "reason": "OutcomeUnknown", "field": None}
    fake.json("DELETE", "/api/v1/namespaces/default/pods/web", timeout, status=503)
    fake.json("POST", "/api/v1/apply", timeout, status=503)
    fake2.json("POST", "/api/v1/apply", {"items": [], "actions": []})
    with pytest.raises(ApiError, match="outcome is unknown"):
        Client([fake.url, fake2.url]).delete("pod", "web")
    assert fake2.requests == []
    # apply converges when repeated, so it is sent on.
    assert Client([fake.url, fake2.url]).apply("kind: Pod\n") == {"items": [], "actions": []}


def test_all_servers_unavailable(fake: FakeServer, down_url: str) -> None:
    with pytest.raises(Unreachable, match="connection refused"):
        Client([down_url]).list("pods")
    fake.json("GET", "/api/v1/nodes", {"error": "catching up", "reason": "NotReady"}, status=503)
    with pytest.raises(ApiError) as caught:
        Client([down_url, fake.url]).list("nodes")
    assert caught.value.status == 503 and caught.value.reason == "NotReady"


def test_write_not_replayed_after_connection_breaks(fake: FakeServer, fake2: FakeServer) -> None:
    def hang_up(handler: Handler, query: Any, body: bytes) -> None:
        handler.close_connection = True
        handler.connection.shutdown(socket.SHUT_RDWR)

    fake.routes[("POST", "/api/v1/namespaces/default/configmaps")] = hang_up
    fake2.json("POST", "/api/v1/namespaces/default/configmaps", {"kind": "ConfigMap"}, status=201)
    with pytest.raises(Unreachable, match="may or may not"):
        Client([fake.url, fake2.url]).create({"kind": "ConfigMap", "metadata": {"name": "c"}})
    assert fake2.requests == []
    # A read after the same failure is simply sent to the next master.
    fake.routes[("GET", "/api/v1/namespaces/default/configmaps/c")] = hang_up
    fake2.json("GET", "/api/v1/namespaces/default/configmaps/c", {"kind": "ConfigMap"})
    assert Client([fake.url, fake2.url]).get("cm", "c") == {"kind": "ConfigMap"}


def test_paths_and_parameters(fake: FakeServer) -> None:
    fake.json("GET", "/api/v1/pods", pod_list())
    fake.json("GET", "/api/v1/nodes/n1", {"kind": "Node"})
    fake.json("PATCH", "/api/v1/namespaces/prod/deployments/web", {"kind": "Deployment"})
    fake.json("DELETE", "/api/v1/namespaces/default/services/web", {"kind": "Service"})
    fake.json("POST", "/api/v1/apply", {"items": [], "actions": []})
    client = Client([fake.url], namespace="default")
    client.list("pods", all_namespaces=True, label_selector="app=web,tier!=db")
    client.get("no", "n1", namespace="ignored-for-cluster-kinds")
    client.patch("deploy", "web", {"spec": {"replicas": 2}}, namespace="prod")
    client.delete("svc", "web")
    client.apply([{"kind": "Pod", "metadata": {"name": "a"}}], namespace="team")
    listing, node, patch, delete, apply = fake.requests
    assert listing["query"] == {"labelSelector": ["app=web,tier!=db"]}
    assert node["path"] == "/api/v1/nodes/n1"
    assert patch["headers"]["Content-Type"] == "application/merge-patch+json"
    assert delete["method"] == "DELETE"
    assert apply["query"] == {"namespace": ["team"]}
    assert apply["headers"]["Content-Type"] == "application/yaml"
    assert yaml.safe_load(apply["body"]) == {"kind": "Pod", "metadata": {"name": "a"}}


# --- the commands ----------------------------------------------------------------------

def run(fake_url: str, *args: str, stdin: str | None = None) -> Any:
    return CliRunner().invoke(main, ["--server", fake_url, "--token", "t", *args], input=stdin,
                              env={"XDG_CONFIG_HOME": "/nonexistent"})


def test_get_command_table_and_errors(fake: FakeServer, down_url: str) -> None:
    fake.json("GET", "/api/v1/namespaces/default/pods", pod_list(pod("web", seconds_ago=30)))
    result = CliRunner().invoke(main, ["--server", f"{down_url},{fake.url}", "get", "po"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert lines[1].split()[:4] == ["web", "1/1", "Running", "0"]

    fake.json("GET", "/api/v1/namespaces/default/pods/nope",
              {"error": "Pod default/nope not found", "field": "metadata.name", "reason": "NotFound"},
              status=404)
    result = run(fake.url, "get", "pod", "nope")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error from server (NotFound): Pod default/nope not found [field: metadata.name]")

    result = run(down_url, "get", "pods")
    assert result.exit_code == 1 and result.stderr.startswith("Error: cannot reach any Berth server")
    assert "Traceback" not in result.output


def test_get_empty_and_json(fake: FakeServer) -> None:
    fake.json("GET", "/api/v1/namespaces/prod/pods", pod_list())
    result = run(fake.url, "get", "pods", "-n", "prod")
    assert result.exit_code == 0
    assert result.stdout == "" and "No resources found in prod namespace." in result.stderr
    fake.json("GET", "/api/v1/namespaces/default/pods/web", pod("web"))
    result = run(fake.url, "get", "pod/web", "-o", "json")
    assert json.loads(result.stdout)["metadata"]["name"] == "web"


def test_get_several_kinds(fake: FakeServer) -> None:
    fake.json("GET", "/api/v1/namespaces/default/pods", pod_list(pod("web")))
    fake.json("GET", "/api/v1/namespaces/default/services", {"kind": "ServiceList", "items": [
        {"kind": "Service", "metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}}]})
    result = run(fake.url, "get", "po,svc", "-o", "name")
    assert result.stdout == "pod/web\nservice/web\n"
    result = run(fake.url, "get", "pods,services")  # several kinds: rows named kind/name, as kubectl's
    assert [line.split()[0] for line in result.stdout.splitlines() if line] == [
        "NAME", "pod/web", "NAME", "service/web"]


def test_apply_command_prints_actions(fake: FakeServer, tmp_path: Path) -> None:
    fake.json("POST", "/api/v1/apply", {
        "items": [pod("web"), {"kind": "Service", "metadata": {"name": "web"}}],
        "actions": ["created", "unchanged"],
    })
    manifest = tmp_path / "app.yaml"
    manifest.write_text("kind: Pod\nmetadata: {name: web}\n---\nkind: Service\nmetadata: {name: web}\n")
    result = run(fake.url, "apply", "-f", str(manifest))
    assert result.exit_code == 0, result.output
    assert result.stdout == "pod/web created\nservice/web unchanged\n"
    sent = list(yaml.safe_load_all(fake.requests[0]["body"]))
    assert [d["kind"] for d in sent] == ["Pod", "Service"]

    fake.json("POST", "/api/v1/apply", {"error": "document 1: spec.ports: Field required",
                                        "field": "spec.ports", "reason": "FieldValueRequired"},
              status=400)
    result = run(fake.url, "apply", "-f", "-", stdin="kind: Service\nmetadata: {name: x}\n")
    assert result.exit_code == 1
    assert "Error from server (FieldValueRequired): document 1" in result.stderr


def test_delete_and_create_commands(fake: FakeServer) -> None:
    fake.json("DELETE", "/api/v1/namespaces/default/pods/a", pod("a"))
    fake.json("DELETE", "/api/v1/namespaces/default/pods/b",
              {"error": "Pod default/b not found", "reason": "NotFound", "field": "metadata.name"},
              status=404)
    result = run(fake.url, "delete", "po", "a", "b")
    assert result.exit_code == 1
    assert result.stdout == 'pod "a" deleted\n'
    assert "(NotFound)" in result.stderr
    assert run(fake.url, "delete", "po", "b", "--ignore-not-found").exit_code == 0

    fake.json("POST", "/api/v1/namespaces/default/configmaps",
              {"error": "ConfigMap default/c exists", "reason": "AlreadyExists", "field": None},
              status=409)
    result = run(fake.url, "create", "-f", "-", stdin="kind: ConfigMap\nmetadata: {name: c}\n")
    assert result.exit_code == 1 and "(AlreadyExists)" in result.stderr


def test_cluster_status_command(fake: FakeServer) -> None:
    fake.json("GET", "/api/v1/cluster", {
        "self": "127.0.0.1:7001", "leader": "127.0.0.1:7002", "state": "follower", "term": 4,
        "commitIndex": 99, "lastApplied": 99, "revision": 12, "ready": True,
        "members": [
            {"address": "127.0.0.1:7001", "self": True, "leader": False, "reachable": True},
            {"address": "127.0.0.1:7002", "self": False, "leader": True, "reachable": True},
            {"address": "127.0.0.1:7003", "self": False, "leader": False, "reachable": False},
        ],
    })
    result = run(fake.url, "cluster", "status")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Term:" in out and "4" in out and "Commit index:  99" in out
    rows = [line.split() for line in out.splitlines() if line.startswith(("ADDRESS", "127."))]
    assert rows == [
        ["ADDRESS", "ROLE", "REACHABLE"],
        ["127.0.0.1:7001", "(self)", "follower", "yes"],
        ["127.0.0.1:7002", "leader", "yes"],
        ["127.0.0.1:7003", "unknown", "no"],  # not reachable: not known to follow
    ]


# --- watch -----------------------------------------------------------------------------

def test_watch_stream_and_relist_on_410(fake: FakeServer) -> None:
    calls: list[dict[str, list[str]]] = []

    def watch(handler: Handler, query: dict[str, list[str]], body: bytes) -> None:
        calls.append(query)
        if len(calls) == 1:
            handler.send_stream([
                {"type": "BOOKMARK", "revision": 10},
                {"type": "MODIFIED", "revision": 11, "object": pod("a")},
                {"type": "ERROR", "code": 410, "reason": "Expired", "error": "too old"},
            ])
        elif len(calls) == 2:
            handler.send_json(410, {"error": "too old", "reason": "Expired", "field": "since"})
        else:
            handler.send_stream([{"type": "ADDED", "revision": 31, "object": pod("d")}])

    first = pod_list(pod("a"), pod("b"), rv=10)
    later = pod_list(pod("a"), {**pod("c"), "metadata": {**pod("c")["metadata"], "resourceVersion": 25}},
                     rv=30)
    lists = [first]
    fake.routes[("GET", "/api/v1/namespaces/default/pods")] = (
        lambda h, q, b: h.send_json(200, lists.pop() if lists else later))
    fake.routes[("GET", "/api/v1/watch")] = watch
    notices: list[str] = []
    clock = iter(range(1000))
    events = follow(Client([fake.url]), "pods", timeout=500, notice=notices.append,
                    clock=lambda: float(next(clock)), sleep=lambda s: None)
    got = [(e["type"], e["object"]["metadata"]["name"], e["revision"]) for e in
           (next(events) for _ in range(4))]
    # The relists: a is unchanged since its MODIFIED event, b vanished, c appeared; the second
    # 410 (on reconnecting) relists again with nothing new to report.
    assert got == [("MODIFIED", "a", 11), ("ADDED", "c", 25), ("DELETED", "b", 30), ("ADDED", "d", 31)]
    assert calls[0]["since"] == ["10"] and calls[0]["kind"] == ["Pod"]
    assert calls[0]["namespace"] == ["default"]
    assert calls[1]["since"] == ["30"] and calls[2]["since"] == ["30"]
    assert any("listing again" in n for n in notices)


def test_a_watch_from_a_given_list_reports_its_objects_gone_across_a_410(fake: FakeServer) -> None:
    """`berth wait --for=delete` lists, then follows from that list: a pod deleted while the window
    expired still comes as DELETED from the relist."""
    calls: list[dict[str, list[str]]] = []

    def watch(handler: Handler, query: dict[str, list[str]], body: bytes) -> None:
        calls.append(query)
        if len(calls) == 1:
            handler.send_json(410, {"error": "too old", "reason": "Expired", "field": "since"})
        else:
            handler.send_stream([])

    fake.json("GET", "/api/v1/namespaces/default/pods", pod_list(pod("a"), rv=30))
    fake.routes[("GET", "/api/v1/watch")] = watch
    clock = iter(range(1000))
    events = follow(Client([fake.url]), "pods", since=10, listed=[pod("a"), pod("b")], timeout=500,
                    clock=lambda: float(next(clock)), sleep=lambda s: None)
    first = next(events)
    assert (first["type"], first["object"]["metadata"]["name"], first["revision"]) == ("DELETED", "b", 30)
    assert calls[0]["since"] == ["10"]


def test_relist_events_diff() -> None:
    known = {("default", "a"): 5, ("default", "b"): 6}
    items = [{**pod("a"), "metadata": {**pod("a")["metadata"], "resourceVersion": 9}}]
    events = relist_events("Pod", known, items, since=6, revision=12)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("MODIFIED", "a"), ("DELETED", "b")]
    assert known == {("default", "a"): 9}


def test_watch_command_prints_lines(fake: FakeServer) -> None:
    fake.json("GET", "/api/v1/pods", pod_list(rv=3))
    fake.routes[("GET", "/api/v1/watch")] = lambda h, q, b: h.send_stream([
        {"type": "ADDED", "revision": 4, "object": pod("web", ns="prod")},
        {"type": "BOOKMARK", "revision": 4},
        {"type": "DELETED", "revision": 5, "object": pod("web", ns="prod")},
    ])
    result = run(fake.url, "watch", "po", "-A", "--timeout", "0.5")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[:2] == [
        "ADDED pod/web rv=4 namespace=prod", "DELETED pod/web rv=5 namespace=prod"]
    watch_query = next(r["query"] for r in fake.requests if r["path"] == "/api/v1/watch")
    assert "namespace" not in watch_query and watch_query["since"] == ["3"]
    result = run(fake.url, "watch", "po", "-A", "--since", "3", "--timeout", "0.5", "-o", "json")
    assert json.loads(result.stdout.splitlines()[0])["revision"] == 4


def test_options_are_options_and_only_what_follows_dash_dash_is_the_command(fake: FakeServer) -> None:
    """The bug: unknown flags became the container's command (`--dry-run=client -o yaml`), and
    `exec -it POD` looked up a pod named `-t`."""
    pods = "/api/v1/namespaces/default/pods"
    fake.json("POST", pods, pod("dr"), status=201)
    fake.exec_session("multi", b"", 0)
    server = ["--server", fake.url]
    for argv in (["run", "dr", "--image", "busybox", "--rm", "-it", "--", "sh"],
                 ["run", "dr", "--image", "busybox", "sleep", "1"],  # a command only after --
                 ["exec", "-it", "multi"],
                 ["exec", "multi"]):
        result = CliRunner().invoke(main, [*server, *argv])
        assert result.exit_code == 2 and fake.requests == [], (argv, result.output)
        assert "Error" in result.output
    dry = CliRunner().invoke(main, [*server, "run", "dr", "--image", "busybox", "--dry-run=client",
                                    "-o", "yaml"])
    assert dry.exit_code == 0 and "kind: Pod" in dry.output and fake.requests == []  # the options, parsed
    made = CliRunner().invoke(main, [*server, "run", "dr", "--image", "busybox", "--labels", "app=x,tier=y",
                                     "--", "sh", "-c", "echo --dry-run=client", "--", "-o"])
    assert made.exit_code == 0, made.output
    sent = json.loads(fake.requests[-1]["body"])
    assert sent["metadata"]["labels"] == {"app": "x", "tier": "y"}
    assert sent["spec"]["containers"][0]["command"] == ["sh", "-c", "echo --dry-run=client", "--", "-o"]
    ran = CliRunner().invoke(main, [*server, "exec", "-i", "multi", "--", "ls", "-l"], input="")
    assert ran.exit_code == 0, ran.output
    opened = [r for r in fake.requests if r["path"].endswith("/exec/sessions")]
    assert json.loads(opened[-1]["body"])["command"] == ["ls", "-l"]
    # -it: the pod is `multi`, not `-t`; without a terminal on stdin there is no tty (kubectl's notice)
    shell = CliRunner().invoke(main, [*server, "exec", "-it", "multi", "--", "sh"], input="exit\n")
    assert shell.exit_code == 0 and "Unable to use a TTY" in shell.output, shell.output
    opened = [r for r in fake.requests if r["path"].endswith("/exec/sessions")]
    assert json.loads(opened[-1]["body"]) == {"command": ["sh"], "stdin": True, "tty": False}


def test_a_typed_namespace_must_agree_with_the_manifests(fake: FakeServer, tmp_path: Path) -> None:
    manifest = tmp_path / "pod.yaml"
    manifest.write_text("apiVersion: berth/v1\nkind: Pod\nmetadata: {name: a, namespace: team-a}\n"
                        "spec: {containers: [{name: c, image: busybox}]}\n")
    for command in ("apply", "create"):
        result = CliRunner().invoke(main, ["--server", fake.url, command, "-n", "team-b",
                                           "-f", str(manifest)])
        assert result.exit_code == 1 and fake.requests == [], result.output
        assert "does not match the namespace \"team-b\"" in result.output


def test_describe_prints_times_and_quantities_as_kubectl() -> None:
    """It once printed `Started At: 1795994379` and a node's memory as a count of bytes."""
    obj = pod("web")
    obj["status"]["containerStatuses"][0]["state"] = {"running": {"startedAt": "1795994379.5"}}
    obj["status"]["capacity"] = {"cpu": 2000, "memory": 4 << 30}
    text = describe(obj, [], NOW)
    assert "Started At:  Sun, 29 Nov 2026 23:19:39 +0000" in text, text
    assert "memory:  4Gi" in text and "cpu:     2" in text


def test_a_master_found_unreachable_is_tried_last_for_a_while(fake: FakeServer, down_url: str,
                                                               tmp_path: Path) -> None:
    """With the first configured master down, every command once waited out its connect timeout."""
    from berth.client import UnreachableMemory

    fake.json("GET", "/api/v1/namespaces/default/pods", pod_list(pod("web")))
    memory = UnreachableMemory(tmp_path / "unreachable.json", seconds=60)
    first = Client([down_url, fake.url], unreachable=memory)
    assert first.current_server == down_url
    first.list("po")
    later = Client([down_url, fake.url], unreachable=memory)  # the next command, a new process
    assert later.current_server == fake.url
    later.list("po")
    assert len(fake.requests) == 2
    expired = UnreachableMemory(tmp_path / "unreachable.json", seconds=60)
    expired.path.write_text(json.dumps({down_url: time.time() - 1}))  # remembered for a while only
    assert Client([down_url, fake.url], unreachable=expired).current_server == down_url


def test_jsonpath_templates_columns_and_sorting() -> None:
    from berth.cli import jsonpath

    listing = {"kind": "List", "items": [
        {"metadata": {"name": "b", "labels": {"app": "x"}}, "spec": {"replicas": 10}},
        {"metadata": {"name": "a"}, "spec": {"replicas": 9, "ports": [{"port": 80}, {"port": 443}]}}]}
    assert jsonpath.render("{.items[*].metadata.name}", listing) == "b a"
    assert jsonpath.render("first={.items[0].metadata.name}\\n", listing) == "first=b\n"
    assert jsonpath.render("{$.items[1].spec.ports[*].port}", listing) == "80 443"
    assert jsonpath.render("{.items[0].metadata.labels}", listing) == '{"app":"x"}'
    assert jsonpath.render("{.items[5].metadata.name}", listing) == ""  # nothing there: nothing printed
    assert jsonpath.render("{.items[0].metadata['name']}", listing) == "b"
    ordered = sorted(listing["items"], key=jsonpath.sort_key(".spec.replicas"))
    assert [o["metadata"]["name"] for o in ordered] == ["a", "b"]  # 9 before 10: numbers as numbers
    assert jsonpath.column_spec("NAME:.metadata.name,R:{.spec.replicas}") == [
        ("NAME", ".metadata.name"), ("R", ".spec.replicas")]
    for bad in ("NAME", "NAME:.metadata..name"):
        with pytest.raises(BerthError):
            jsonpath.column_spec(bad)
