"""The whole lab: hosts deployed by ansible/site.yml over SSH, agents heartbeating masters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from cli.main import main as berth
from lab import deploy, hosts
from lab.hosts import Lab
from master.liveness import ready_condition
from tests.harness import wait_until
from tests.test_lab import lab_name, leftovers

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    name = lab_name("lc")
    hosts.down(Lab(name=name))
    config = tmp_path_factory.mktemp("cli") / "config.yaml"
    result = CliRunner().invoke(berth, ["lab", "up", "--name", name, "--hosts", "3",
                                        "--config-out", str(config)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lab = Lab.load(name)
    lab.cli_config = config  # type: ignore[attr-defined]
    try:
        yield lab
    finally:
        hosts.down(lab)
        assert leftovers(lab) == []


def api(lab: Lab, path: str, index: int = 0) -> requests.Response:
    return requests.get(deploy.api_urls(lab)[index] + path, timeout=5,
                        headers={"Authorization": f"Bearer {deploy.admin_token(lab)}"})


def ready(lab: Lab, host: str) -> bool | None:
    for index in range(3):
        try:
            return ready_condition(api(lab, f"/api/v1/nodes/{host}", index).json())
        except (requests.RequestException, ValueError):
            continue
    return None


def test_all_nodes_ready_and_the_cli_works_right_after(lab: Lab) -> None:
    # lab up returned once all were Ready; under heavy machine load a heartbeat can be late
    wait_until(lambda: all(ready(lab, h) for h in lab.host_names()), 60, what="all Ready")
    result = subprocess.run([sys.executable, "-m", "cli.main", "get", "nodes"], text=True,
                            capture_output=True, timeout=60, cwd=Path(__file__).resolve().parent.parent,
                            env={"PATH": "/usr/bin:/bin", "BERTH_CONFIG": str(lab.cli_config)})
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()[1:]]
    assert [(r[0], r[1]) for r in rows] == [("h1", "Ready"), ("h2", "Ready"), ("h3", "Ready")]
    assert rows[0][2] == "master,worker"


def test_the_playbook_run_again_changes_nothing(lab: Lab) -> None:
    recap = deploy.run_playbook(lab)
    recap = recap[recap.rfind("PLAY RECAP"):]
    assert recap.count("changed=0") == 4, recap  # h1-h3 and localhost


def test_a_stopped_agent_makes_its_node_not_ready_until_it_runs_again(lab: Lab) -> None:
    run_dir = str(lab.host_dir("h3") / "berth" / "run")
    hosts.in_host(lab, "h3", [sys.executable, "-m", "lab.supervisor", "stop", "berth-agent",
                              "--dir", run_dir])
    wait_until(lambda: ready(lab, "h3") is False, 30, what="h3 NotReady")
    deploy.run_playbook(lab, limit="h3")
    wait_until(lambda: ready(lab, "h3") is True, 30, what="h3 Ready again")


def test_leader_sigkill_flaps_no_node(lab: Lab) -> None:
    status = api(lab, "/api/v1/cluster").json()
    leader = next(h for h in deploy.masters_of(lab) if status["leader"].startswith(lab.address(h) + ":"))
    other = next(i for i, h in enumerate(deploy.masters_of(lab)) if h != leader)
    since = api(lab, "/api/v1/cluster", other).json()["revision"]
    events: list[dict] = []
    url = f"{deploy.api_urls(lab)[other]}/api/v1/watch?kind=Node&since={since}&timeoutSeconds=8"

    def watch() -> None:
        headers = {"Authorization": f"Bearer {deploy.admin_token(lab)}"}
        with requests.get(url, headers=headers, stream=True, timeout=20) as stream:
            events.extend(json.loads(line) for line in stream.iter_lines())

    watcher = threading.Thread(target=watch)
    watcher.start()
    time.sleep(0.5)
    pid = (lab.host_dir(leader) / "berth" / "run" / "berth-master.pid").read_text().strip()
    hosts.in_host(lab, leader, ["kill", "-9", pid])  # its supervisor starts it again
    watcher.join(timeout=30)
    assert [e for e in events if e["type"] == "MODIFIED" and ready_condition(e["object"]) is False] == []
    assert all(ready(lab, h) for h in lab.host_names())


def test_a_crashed_host_goes_not_ready_and_comes_back(lab: Lab) -> None:
    hosts.crash_host(lab, "h3")
    wait_until(lambda: ready(lab, "h3") is False, 30, what="crashed h3 NotReady")
    result = CliRunner().invoke(berth, ["lab", "start", "--name", lab.name, "h3"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    wait_until(lambda: ready(lab, "h3") is True, 60, what="h3 Ready after start")
