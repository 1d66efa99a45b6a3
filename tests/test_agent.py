"""berth-agent registering its Node with real masters: capacity, idempotence, its own name only."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import AgentConfig
from berth.lab.masters import free_ports
from tests.harness import TOKENS, MasterCluster


def agent(cluster: MasterCluster, tmp_path: Path, name: str, *extra: str) -> subprocess.CompletedProcess:
    token = tmp_path / "token"
    token.write_text(TOKENS["agent"][1] + "\n")  # the agent token is named h1
    dead = f"https://127.0.0.1:{free_ports(1)[0]}"
    return subprocess.run(
        [sys.executable, "-m", "agent.main", "--once", "--name", name, "--address", "10.250.0.11",
         "--master", dead, "--master", cluster.masters[1].api_url, "--token-file", str(token),
         "--ca-file", str(cluster.ca_file), *extra],
        capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parent.parent)


def test_agent_registers_its_node_with_capacity_and_again_idempotently(
    cluster: MasterCluster, tmp_path: Path,
) -> None:
    first = agent(cluster, tmp_path, "h1")
    assert first.returncode == 0, first.stderr
    url = cluster.url(0, "/api/v1/nodes/h1?consistent=1")
    node = cluster.session().get(url).json()
    capacity, allocatable = node["status"]["capacity"], node["status"]["allocatable"]
    assert capacity["cpu"] >= 1000 and capacity["cpu"] % 1000 == 0 and capacity["memory"] > 1 << 28
    assert allocatable == {"cpu": capacity["cpu"] - 100, "memory": capacity["memory"] - (128 << 20)}
    assert node["spec"] == {"address": "10.250.0.11", "sshPort": 22, "sshUser": "root",
                            "runtime": "podman", "taints": [], "unschedulable": False}
    again = agent(cluster, tmp_path, "h1")
    assert again.returncode == 0, again.stderr
    after = cluster.session().get(url).json()
    assert after["metadata"]["uid"] == node["metadata"]["uid"]
    assert after["metadata"]["generation"] == node["metadata"]["generation"]


def test_an_agent_cannot_move_its_node_by_registering_again(cluster: MasterCluster, tmp_path: Path) -> None:
    """Its address is how the runtime reaches the host: once registered, the admins' to change."""
    first = agent(cluster, tmp_path, "h1")
    assert first.returncode == 0, first.stderr
    moved = agent(cluster, tmp_path, "h1", "--address", "10.250.0.12")
    assert moved.returncode == 0, moved.stderr
    assert "address '10.250.0.11' (configured here: '10.250.0.12')" in moved.stderr
    node = cluster.session().get(cluster.url(0, "/api/v1/nodes/h1?consistent=1")).json()
    assert node["spec"]["address"] == "10.250.0.11"


def test_agent_cannot_register_another_node(cluster: MasterCluster, tmp_path: Path) -> None:
    refused = agent(cluster, tmp_path, "h2")
    assert refused.returncode != 0 and "403" in refused.stderr


def test_agent_settings_are_checked() -> None:
    base = {"name": "h1", "address": "10.250.0.11", "masters": ["127.0.0.1:1"], "token_file": "/t"}
    assert AgentConfig.build(base, {}).masters == ["https://127.0.0.1:1"]
    for bad in ({"heartbeat_interval": 0}, {"heartbeat_interval": -1}, {"heartbeat_interval": 301},
                {"masters": []}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            AgentConfig.build({**base, **bad}, {})
