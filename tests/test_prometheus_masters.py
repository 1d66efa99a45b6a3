"""`GET /metrics` on three real masters, with a real agent heartbeating one of the followers: every
family is there on every master, and each moves when the cluster does (pods made, a node
registered and heard, the scheduler binding, Raft committing, one leader); the agent's own port
counts its heartbeats. Who may scrape: a viewer, not an agent, not a request without a token."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from berth.lab.masters import free_ports
from tests.harness import TOKENS, MasterCluster, pod, wait_until

CLUSTER_SETTINGS = {"controllers": ["node-lifecycle", "scheduler"], "node_grace_seconds": 3600}
NS = "/api/v1/namespaces/default"
MASTER_FAMILIES = (
    "berth_api_requests", "berth_api_request_duration_seconds", "berth_raft_commit_index",
    "berth_raft_applied_index", "berth_raft_term", "berth_raft_is_leader",
    "berth_raft_apply_duration_seconds",
    "berth_scheduler_schedule_attempts", "berth_scheduler_scheduling_duration_seconds", "berth_nodes",
    "berth_pods", "berth_controller_queue_depth", "berth_controller_round_duration_seconds",
    "berth_heartbeats_received", "berth_heartbeats_relayed", "berth_runtime_ssh_command_duration_seconds")


class Scrape:
    """One exposition: its families' names, and each sample by name and labels."""

    def __init__(self, text: str) -> None:
        families = list(text_string_to_metric_families(text))
        self.families = {f.name for f in families}
        self.samples = {(s.name, frozenset(s.labels.items())): s.value for f in families for s in f.samples}

    def __call__(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def labelled(self, name: str, label: str) -> set[str]:
        return {dict(labels)[label] for sample, labels in self.samples if sample == name}


def scrape(cluster: MasterCluster, index: int, role: str = "viewer") -> Scrape:
    answer = cluster.session(role).get(cluster.url(index, "/metrics"), timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("text/plain")
    return Scrape(answer.text)


@pytest.fixture
def agent(cluster: MasterCluster, tmp_path: Path) -> Iterator[tuple[subprocess.Popen, int, int]]:
    """A real agent (no pod network), heartbeating a follower first; its metrics on a free port.
    (process, its metrics port, the follower's index)"""
    token = tmp_path / "token"
    token.write_text(TOKENS["agent"][1])  # the agent token is named h1
    follower = (cluster.leader_index() + 1) % 3
    order = [follower, *(i for i in range(3) if i != follower)]
    port = free_ports(1)[0]
    process = subprocess.Popen(
        [sys.executable, "-m", "agent.main", "--name", "h1", "--address", "10.250.0.11", "--no-pod-network",
         "--token-file", str(token), "--heartbeat-interval", "0.3", "--ca-file", str(cluster.ca_file),
         "--prometheus-port", str(port),
         *[arg for i in order for arg in ("--master", cluster.masters[i].api_url)]],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=Path(__file__).resolve().parent.parent)
    try:
        yield process, port, follower
    finally:
        process.kill()
        process.wait(timeout=10)


def test_every_family_is_on_every_master_and_follows_the_cluster(
        cluster: MasterCluster, agent: tuple[subprocess.Popen, int, int]) -> None:
    _, agent_port, follower = agent
    admin = cluster.session()
    leader = cluster.leader_index()
    before = [scrape(cluster, i) for i in range(3)]
    for found in before:
        assert set(MASTER_FAMILIES) <= found.families, set(MASTER_FAMILIES) - found.families
        assert found.labelled("berth_controller_queue_depth", "controller") == {"node-lifecycle", "scheduler"}
        assert found.labelled("berth_pods", "phase") == {"Pending", "Running", "Succeeded", "Failed",
                                                         "Unknown"}
    assert [found("berth_raft_is_leader") for found in before].count(1.0) == 1
    assert before[leader]("berth_raft_is_leader") == 1.0

    # a node registers and heartbeats (through a follower, which relays to the leader)
    wait_until(lambda: all(scrape(cluster, i)("berth_nodes", condition="Ready") == 1 for i in range(3)), 30,
               what="h1 Ready on every master's replica")
    wait_until(lambda: scrape(cluster, follower)("berth_heartbeats_received_total", source="agent") >= 3
               and scrape(cluster, follower)("berth_heartbeats_relayed_total") >= 2
               and scrape(cluster, leader)("berth_heartbeats_received_total", source="relay") >= 2, 30,
               what="heartbeats received on the follower, relayed, and landed on the leader")

    # pods made: one placed, one that fits nowhere
    assert admin.post(cluster.url(0, f"{NS}/pods"), json=pod("fits"), timeout=10).status_code == 201
    huge = pod("huge")
    huge["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "512"}}
    assert admin.post(cluster.url(0, f"{NS}/pods"), json=huge, timeout=10).status_code == 201
    wait_until(lambda: admin.get(cluster.url(0, f"{NS}/pods/fits"), timeout=5).json()["spec"].get("nodeName"),
               30, what="the pod bound")
    wait_until(lambda: scrape(cluster, leader)("berth_scheduler_schedule_attempts_total", result="scheduled")
               >= 1 and scrape(cluster, leader)("berth_scheduler_schedule_attempts_total",
                                                result="unschedulable") >= 1, 30,
               what="the scheduler's attempts counted")
    wait_until(lambda: all(scrape(cluster, i)("berth_pods", phase="Pending") == 2 for i in range(3)), 10,
               what="both pods Pending on every master's replica")  # bound, and no runtime to start it
    after = [scrape(cluster, i) for i in range(3)]
    for found, earlier in zip(after, before, strict=True):
        assert found("berth_raft_commit_index") > earlier("berth_raft_commit_index")
        assert found("berth_raft_applied_index") > earlier("berth_raft_applied_index")
        assert found("berth_raft_term") >= 1
    created = {"verb": "create", "resource": "pods", "subresource": "", "code": "201"}
    counted = "berth_api_requests_total"
    assert after[0](counted, **created) == before[0](counted, **created) + 2
    assert after[0]("berth_api_request_duration_seconds_count", verb="create", resource="pods",
                    subresource="") >= 2
    applied = "berth_raft_apply_duration_seconds_count"
    assert after[0](applied) > before[0](applied)
    lead = after[leader]
    assert lead("berth_scheduler_scheduling_duration_seconds_count") >= 1
    assert lead("berth_controller_round_duration_seconds_count", controller="scheduler") >= 1
    assert lead("berth_controller_round_duration_seconds_count", controller="node-lifecycle") >= 1
    assert lead("berth_controller_queue_depth", controller="scheduler") >= 1  # the huge pod waits
    assert [found("berth_raft_is_leader") for found in after].count(1.0) == 1

    # the agent's own port, on loopback
    mine = Scrape(requests.get(f"http://127.0.0.1:{agent_port}/metrics", timeout=5).text)
    assert mine("berth_agent_heartbeat_duration_seconds_count") >= 3
    assert mine("berth_agent_heartbeats_total", result="accepted") >= 3
    assert {"berth_agent_probe_results", "berth_agent_datapath_reloads",
            "berth_agent_datapath_reload_failures"} <= mine.families


@pytest.mark.parametrize(("role", "code"), [("viewer", 200), ("operator", 200), ("admin", 200),
                                            ("agent", 403), (None, 401)])
def test_who_may_scrape(cluster: MasterCluster, role: str | None, code: int) -> None:
    answer = cluster.session(role).get(cluster.url(1, "/metrics"), timeout=10)
    assert answer.status_code == code, answer.text
    if code != 200:
        assert answer.json()["reason"] == ("Forbidden" if code == 403 else "Unauthorized")


def test_a_refusal_at_the_door_is_counted_too(cluster: MasterCluster) -> None:
    """A request without a token never reaches the app (master/api/server.py): the door counts it."""
    unauthorized = {"verb": "get", "resource": "/metrics", "subresource": "", "code": "401"}
    earlier = scrape(cluster, 2)("berth_api_requests_total", **unauthorized)
    assert cluster.session(None).get(cluster.url(2, "/metrics"), timeout=10).status_code == 401
    assert scrape(cluster, 2)("berth_api_requests_total", **unauthorized) == earlier + 1
