"""Prometheus metrics, the pure parts and the agent's port: how a request is labelled (from fixed
sets, whatever an attacker sends), nodes and pods by state, the runtime's timings, and the agent's
families served on its local port. The masters' end to end is tests/test_prometheus_masters.py."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from agent import probes
from agent.config import AgentConfig
from agent.pod_network import PodNetwork
from agent.probes import ProbeRunner
from agent.prometheus import AgentMetrics
from master.api.app import create_app
from master.api.audit import Seen
from master.api.auth import Principal, TokenBook, digest
from master.api.context import ApiContext
from master.api.prometheus import OTHER, UNMATCHED, request_labels
from master.controllers.scheduling import SchedulingController
from master.errors import ApiError
from master.observability import MasterMetrics, RequestLabels, node_conditions, pod_phases
from master.runtime.actions import FindAddress, MakeSandbox, RunContainer
from master.runtime.driver import DRIVERS
from master.runtime.executor import Background, Executor
from master.store.commands import Bind, Command
from master.store.state import Outcome
from tests.test_agent_probes import pod as probed_pod
from tests.test_isolation import NOW, FakeStore
from tests.test_isolation import node as isolated_node
from tests.test_isolation import pod as isolated_pod
from tests.test_pod_network import NODES, FakeHost
from tests.test_runtime_executor import HOST, FakePool, pod

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
TOKENS = {"admin": "adm1n", "viewer": "v1ewer", "agent": "ag3nt", "scoped": "sc0ped"}


def samples(text: str) -> Samples:
    """Every sample of an exposition, by name and labels."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def app_client() -> tuple[Any, MasterMetrics]:
    """The app alone, with metrics and no store: what it answers before any store is read."""
    metrics = MasterMetrics()
    tokens = TokenBook([{"name": "a", "role": "admin", "sha256": digest(TOKENS["admin"])},
                        {"name": "v", "role": "viewer", "sha256": digest(TOKENS["viewer"])},
                        {"name": "h1", "role": "agent", "sha256": digest(TOKENS["agent"])},
                        {"name": "s", "groups": ["team-a"], "sha256": digest(TOKENS["scoped"])}])
    app = create_app(ApiContext(store=None, books=None, tokens=tokens, metrics=metrics))  # type: ignore[arg-type]
    return app.test_client(), metrics


def auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}"}


def seen(method: str, path: str, code: int, query: list[tuple[str, str]] | None = None) -> Seen:
    """A request as the app's own routing reads it (what app.py hands the metrics)."""
    client, _ = app_client()
    adapter = client.application.url_map.bind("berth")
    try:
        rule, args = adapter.match(path, method, return_rule=True)
        endpoint, route = rule.endpoint, rule.rule
    except Exception:
        endpoint, route, args = None, None, {}
    return Seen(method, path, endpoint, route, args, query or [], Principal("a", "admin"), "127.0.0.1", code)


@pytest.mark.parametrize(("method", "path", "code", "query", "labels"), [
    ("GET", "/api/v1/namespaces/default/pods", 200, [], ("list", "pods", "", "200")),
    ("GET", "/api/v1/pods", 200, [], ("list", "pods", "", "200")),
    ("GET", "/api/v1/namespaces/default/pods/web", 404, [], ("get", "pods", "", "404")),
    ("POST", "/api/v1/namespaces/default/deployments", 201, [], ("create", "deployments", "", "201")),
    ("PUT", "/api/v1/nodes/h1", 200, [], ("update", "nodes", "", "200")),
    ("PATCH", "/api/v1/namespaces/default/pods/web/status", 200, [], ("patch", "pods", "status", "200")),
    ("DELETE", "/api/v1/namespaces/default/services/web", 200, [], ("delete", "services", "", "200")),
    ("GET", "/api/v1/namespaces/default/pods/web/log", 200, [], ("get", "pods", "log", "200")),
    ("PUT", "/api/v1/namespaces/default/deployments/web/scale", 200, [],
     ("update", "deployments", "scale", "200")),
    ("POST", "/api/v1/nodes/h1/heartbeat", 200, [], ("update", "nodes", "heartbeat", "200")),
    ("GET", "/api/v1/watch", 200, [("kind", "po")], ("watch", "pods", "", "200")),
    ("GET", "/api/v1/watch", 400, [("kind", "<script>")], ("watch", "", "", "400")),
    ("HEAD", "/api/v1/namespaces/default/pods", 200, [], ("list", "pods", "", "200")),
    # paths that name no object: the route as declared, the method as the verb (Kubernetes')
    ("GET", "/api/v1/cluster", 200, [], ("get", "/api/v1/cluster", "", "200")),
    ("POST", "/api/v1/apply", 200, [], ("post", "/api/v1/apply", "", "200")),
    ("GET", "/metrics", 403, [], ("get", "/metrics", "", "403")),
    # no route: the path is the client's text, never a label
    ("GET", "/api/v1/gadgets/x", 404, [], ("get", UNMATCHED, "", "404")),
    ("GET", "/wp-admin/%00<x>", 404, [], ("get", UNMATCHED, "", "404")),
    ("BREW", "/api/v1/cluster", 405, [], (OTHER, UNMATCHED, "", "405")),
])
def test_a_request_is_labelled_by_the_apis_own_routing(method: str, path: str, code: int,
                                                       query: list[tuple[str, str]],
                                                       labels: tuple[str, str, str, str]) -> None:
    assert request_labels(seen(method, path, code, query)) == RequestLabels(*labels)


def test_a_resource_the_routes_never_name_is_other() -> None:
    """Defence in depth: the routes' converters take only the kinds' plurals, and were one to let
    another through, it would still not become a label."""
    forged = Seen("GET", "/x", "resources.list_objects", "/x", {"plural": "gadgets"}, [], None, "", 200)
    assert request_labels(forged).resource == OTHER


def test_whatever_an_attacker_sends_the_label_sets_stay_few() -> None:
    """500 requests of random paths, methods and queries, with and without a token, through the app:
    the registry holds a handful of label sets, none holding anything the requests carried."""
    client, metrics = app_client()
    chance = random.Random(18)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-_.%~é<>'\""
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "BREW", "PROPFIND", "X-Evil"]
    sent: set[str] = set()
    for _ in range(500):
        words = ["".join(chance.choices(alphabet, k=chance.randint(1, 12)))
                 for _ in range(chance.randint(1, 5))]
        prefix = chance.choice(["", "api/v1/", "api/v1/namespaces/default/", "api/v1/nodes/"])
        path = "/" + prefix + "/".join(words)
        sent.update(words)
        headers = auth("admin") if chance.random() < 0.7 else {}
        client.open(path, method=chance.choice(methods), headers=headers,
                    query_string={chance.choice(words): chance.choice(words)})
    counted = {key for key in samples(metrics.exposition().decode())
               if key[0] == "berth_api_requests_total"}
    values = {value for _, labels in counted for _, value in labels}
    assert len(counted) <= 30, counted
    assert not {w for w in sent if len(w) > 3} & values


@pytest.mark.parametrize(("role", "code"), [("admin", 200), ("viewer", 200), ("agent", 403),
                                            ("scoped", 403), (None, 401)])
def test_who_may_scrape(role: str | None, code: int) -> None:
    """Whoever may list every node and every namespace's pods; not an agent, not a user whose roles
    are bound in one namespace alone (here, none at all), not a request without a token."""
    client, _ = app_client()
    answer = client.get("/metrics", headers=auth(role) if role else {})
    assert answer.status_code == code, answer.get_data(as_text=True)
    if code == 200:
        assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert "berth_raft_apply_duration_seconds" in answer.get_data(as_text=True)


def ready(status: str | None) -> dict:
    conditions = [] if status is None else [{"type": "Ready", "status": status}]
    return {"metadata": {"name": "n"}, "status": {"conditions": conditions}}


def test_nodes_by_their_ready_condition_and_pods_by_phase() -> None:
    nodes = [ready("True"), ready("True"), ready("False"), ready("Unknown"), ready(None),
             {"metadata": {"name": "garbage"}, "status": "x"}]
    assert node_conditions(nodes) == {"Ready": 2, "NotReady": 1, "Unknown": 3}
    pods = [{"status": {"phase": p}} for p in ("Running", "Running", "Pending", "Succeeded", "Failed",
                                               "Exploded")] + [{"metadata": {}}, {"status": None}]
    assert pod_phases(pods) == {"Pending": 3, "Running": 2, "Succeeded": 1, "Failed": 1, "Unknown": 1}
    assert node_conditions([]) == {"Ready": 0, "NotReady": 0, "Unknown": 0}


def test_the_executor_times_each_action_by_its_type() -> None:
    timed: list[tuple[str, float]] = []
    web = pod()
    executor = Executor(FakePool(), lambda kind, namespace, name: None,  # type: ignore[arg-type] - a fake
                        Background(2, lambda node: None), lambda verb, seconds: timed.append((verb, seconds)))
    actions = [MakeSandbox(web), RunContainer(web, web["spec"]["containers"][0]), FindAddress(web)]
    executor.execute("h1", HOST, DRIVERS["podman"], actions, lambda obj, err: None)
    assert [verb for verb, _ in timed] == ["MakeSandbox", "RunContainer", "FindAddress"]
    assert all(seconds >= 0 for _, seconds in timed)


def test_the_agents_port_serves_its_families_and_counts_probes_and_reloads(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    metrics = AgentMetrics()
    port = metrics.serve("127.0.0.1", 0)
    assert port is not None
    try:
        outcomes = [True, False]
        monkeypatch.setattr(probes, "run_probe", lambda *_: (outcomes.pop(0), "exec exited 1"))
        runner = ProbeRunner(masters=None, node="h1", runtime="podman", metrics=metrics)  # type: ignore[arg-type]
        runner.sync([probed_pod("1", liveness={"exec": {"command": ["true"]}, "periodSeconds": 1})], now=0.0)
        runner.run_due(0.0)
        runner.run_due(1.0)

        def refusing(argv: list[str], stdin: str | None = None) -> str:
            if argv[0] == "nft":
                raise subprocess.CalledProcessError(1, argv, "", "Error: Could not process rule")
            return host(argv, stdin)

        host = FakeHost()
        PodNetwork("h1", "podman", run=host, forwarding=tmp_path / "f1", metrics=metrics).sync(NODES)
        PodNetwork("h1", "podman", run=refusing, forwarding=tmp_path / "f2", metrics=metrics).sync(NODES)
        metrics.heartbeat("accepted", 0.02)
        metrics.heartbeat("unanswered")
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    finally:
        metrics.stop()
    found = samples(text)
    assert found[("berth_agent_probe_results_total", frozenset({("probe", "liveness"),
                                                                ("result", "successful")}))] == 1
    assert found[("berth_agent_probe_results_total", frozenset({("probe", "liveness"),
                                                                ("result", "failed")}))] == 1
    assert found[("berth_agent_datapath_reloads_total", frozenset())] == 1
    assert found[("berth_agent_datapath_reload_failures_total", frozenset())] == 1
    assert found[("berth_agent_heartbeat_duration_seconds_count", frozenset())] == 1
    assert found[("berth_agent_heartbeats_total", frozenset({("result", "unanswered")}))] == 1
    with pytest.raises(requests.ConnectionError):  # stopped: the port is closed
        requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)


@pytest.mark.parametrize(("settings", "error"), [
    ({}, None), ({"prometheus_port": 0}, None), ({"prometheus_address": "::1"}, None),
    ({"prometheus_port": 65536}, "prometheus_port"), ({"prometheus_port": True}, "prometheus_port"),
    ({"prometheus_address": "localhost"}, "prometheus_address"),
    ({"prometheus_address": 1}, "prometheus_address"),
])
def test_the_agents_metrics_settings(settings: dict[str, Any], error: str | None) -> None:
    base = {"name": "h1", "address": "10.0.0.1", "masters": ["m:1"], "token_file": "/t"}
    if error is None:
        assert AgentConfig(**base, **settings).prometheus_port in (0, 9101)
    else:
        with pytest.raises(ValueError, match=error):
            AgentConfig(**base, **settings)


def test_a_port_already_taken_leaves_the_agent_working_without_metrics() -> None:
    first, second = AgentMetrics(), AgentMetrics()
    port = first.serve("127.0.0.1", 0)
    try:
        assert second.serve("127.0.0.1", port) is None  # type: ignore[arg-type]
    finally:
        first.stop()


class RefusingBinds(FakeStore):
    """A store whose every Bind loses to another writer (the pod changed meanwhile)."""

    def propose_all(self, commands: list[Command], timeout: float | None = None) -> list[Outcome | ApiError]:
        answers: list[Outcome | ApiError] = []
        for command in commands:
            refused = isinstance(command, Bind)
            answers.append(ApiError(409, "Conflict", "the pod changed") if refused else
                           super().propose_all([command])[0])
        return answers


def test_the_scheduler_counts_each_pods_attempt_by_result_and_what_it_left() -> None:
    metrics = MasterMetrics()

    def attempts(result: str) -> float | None:
        return metrics.registry.get_sample_value("berth_scheduler_schedule_attempts_total",
                                                 {"result": result})

    placed = SchedulingController(FakeStore(isolated_node("good"), isolated_pod("fits"),  # type: ignore[arg-type]
                                            isolated_pod("big", cpu="64")), lambda: NOW, lambda: "u")
    placed.observed = metrics
    placed.lead()
    placed.reconcile()
    assert (attempts("scheduled"), attempts("unschedulable"), attempts("error")) == (1, 1, 0)
    assert placed.queue_depth() == 1  # the big pod waits
    placed.follow()
    assert placed.queue_depth() == 0  # a follower has nothing waiting
    refused = SchedulingController(RefusingBinds(isolated_node("good"), isolated_pod("fits")),  # type: ignore[arg-type]
                                   lambda: NOW, lambda: "u")
    refused.observed = metrics
    refused.reconcile()
    assert (attempts("scheduled"), attempts("error")) == (1, 1)
    assert metrics.registry.get_sample_value("berth_scheduler_scheduling_duration_seconds_count") == 2


class FailingWrites(FakeStore):
    """A store whose round's write fails whole (this master lost its leadership meanwhile)."""

    def propose_all(self, commands: list[Command], timeout: float | None = None) -> list[Outcome | ApiError]:
        raise ApiError(503, "Unavailable", "not the leader")


def test_a_round_whose_write_fails_counts_each_pod_once_as_an_error() -> None:
    metrics = MasterMetrics()
    failing = SchedulingController(FailingWrites(isolated_node("good"), isolated_pod("fits"),  # type: ignore[arg-type]
                                                 isolated_pod("big", cpu="64")), lambda: NOW, lambda: "u")
    failing.observed = metrics
    with pytest.raises(ApiError):
        failing.reconcile()
    counted = {result: metrics.registry.get_sample_value("berth_scheduler_schedule_attempts_total",
                                                         {"result": result})
               for result in ("scheduled", "unschedulable", "error")}
    assert counted == {"scheduled": 0, "unschedulable": 0, "error": 2}
