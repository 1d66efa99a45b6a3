"""Simulated hosts (master/runtime/simulated.py), what bench/cluster_scale.py runs the runtime on: the
podman commands the runtime's driver writes, answered from memory; and on real masters with
`simulated_hosts: true`, a Deployment's pods bound by the scheduler and made Running by the real
runtime, with no SSH anywhere; bench/cluster_scale.py's figures."""

from __future__ import annotations

import pytest

from bench.cluster_scale import Progress, answered_share, difference, per_second, progress
from berth.lab.masters import sample_pod
from master.config import MasterConfig
from master.runtime.driver import PodmanDriver
from master.runtime.simulated import SimulatedHosts
from master.runtime.ssh import Host, SshError
from tests.harness import GI, WORKLOADS, MasterCluster, add_node, wait_until
from tests.test_workloads_masters import NS, create, deployment, get

CLUSTER_SETTINGS = {"controllers": ["scheduler", "runtime", *WORKLOADS], "simulated_hosts": True}
HOST = Host("sim-1", "10.250.0.11")


def placed(name: str) -> dict:
    pod = sample_pod(name)
    pod["metadata"]["uid"] = f"uid-{name}"
    return pod


def listed(hosts: SimulatedHosts, driver: PodmanDriver) -> list[tuple[str, str, bool]]:
    result = hosts.run(HOST, driver.list_managed())
    assert result.ok
    return sorted((c.name, c.state, c.sandbox) for c in driver.parse_list(result.text()))


def test_a_pod_made_on_a_simulated_host_is_listed_running_and_removed_with_its_sandbox() -> None:
    hosts, driver = SimulatedHosts(), PodmanDriver()
    pod = placed("web")
    for argv in (driver.remove_sandbox(pod), driver.create_sandbox(pod), driver.start_sandbox(pod),
                 driver.image_present("localhost/busybox:lab"),
                 driver.run_container(pod, pod["spec"]["containers"][0])):
        assert hosts.run(HOST, argv).ok, argv
    states = listed(hosts, driver)
    assert sorted((state, sandbox) for _, state, sandbox in states) == [("running", False), ("running", True)]
    containers = driver.parse_list(hosts.run(HOST, driver.list_managed()).text())
    assert {c.pod_uid for c in containers} == {"uid-web"}
    assert hosts.run(HOST, driver.sandbox_ip(pod)).text().strip()  # the infra container's id
    assert hosts.run(HOST, driver.stop_sandbox(pod, 0)).ok
    assert {state for _, state, _ in listed(hosts, driver)} == {"exited"}
    assert hosts.run(HOST, driver.remove_sandbox(pod)).ok
    assert listed(hosts, driver) == []
    assert hosts.run(Host("sim-2", "10.250.0.12"), driver.list_managed()).text() == "[]"  # hosts apart


def test_simulated_hosts_refuse_what_they_cannot_pretend() -> None:
    hosts = SimulatedHosts()
    assert not hosts.run(HOST, ["sh", "-c", "docker ps"]).ok  # docker nodes: not simulated
    assert not hosts.run(HOST, PodmanDriver().start("absent")).ok
    with pytest.raises(SshError), hosts.sftp(HOST):
        pass


def test_the_runtime_needs_ssh_unless_its_hosts_are_simulated() -> None:
    base = {"name": "m1", "raft_address": "127.0.0.1:1", "api_address": "127.0.0.1:2", "data_dir": "/tmp/x",
            "tokens_file": "/tmp/t", "insecure_raft_without_password": True, "controllers": ["runtime"]}
    with pytest.raises(ValueError, match="ssh_key_file"):
        MasterConfig(**base)
    assert MasterConfig(**base, simulated_hosts=True).simulated_hosts


def test_a_deployment_runs_on_simulated_hosts_through_the_real_runtime(cluster: MasterCluster) -> None:
    for index in range(3):
        add_node(cluster, f"sim-{index}", cpu=4000, memory=8 * GI, address=f"10.250.0.{11 + index}")
    create(cluster, deployment("simulated", 6))

    def running() -> bool:
        pods = get(cluster, f"{NS}/pods?labelSelector=app=simulated")["items"]
        return len(pods) == 6 and all(p["spec"].get("nodeName") and p.get("status", {}).get("phase")
                                      == "Running" for p in pods)

    wait_until(running, timeout=60, what="6 pods Running on simulated hosts")
    pods = get(cluster, f"{NS}/pods?labelSelector=app=simulated")["items"]
    assert {p["status"]["hostIP"] for p in pods} <= {"10.250.0.11", "10.250.0.12", "10.250.0.13"}
    assert all(c["state"].get("running") for p in pods for c in p["status"]["containerStatuses"])


@pytest.mark.parametrize(("reached", "total", "expected"), [
    ([10.5, 11.0, 12.0, 14.0], 4, Progress(4, 1.0, 4.0, 1.0)),  # half: the 2nd of 4; all: the 4th
    ([14.0, 10.5, 12.0, 11.0], 4, Progress(4, 1.0, 4.0, 1.0)),  # in any order
    ([11.0, 12.0, 13.0], 3, Progress(3, 2.0, 3.0, 1.0)),  # half of 3: the 2nd
    ([10.0 + i / 1000 for i in range(1, 1001)], 1000, Progress(1000, 0.5, 1.0, 1000.0)),
    ([11.0], 4, Progress(1, None, None, None)),  # not even half
    ([11.0, 12.0, 13.0], 4, Progress(3, 2.0, None, None)),  # half, not all
    ([], 0, Progress(0, None, None, None)),
])
def test_progress_is_seconds_to_half_and_all_and_pods_per_second(reached: list[float], total: int,
                                                                  expected: Progress) -> None:
    got = progress(10.0, reached, total)
    assert got.reached == expected.reached
    for field in ("half_s", "all_s", "per_s"):
        value, wanted = getattr(got, field), getattr(expected, field)
        assert (value is None) == (wanted is None) and (wanted is None or abs(value - wanted) < 1e-9), field


@pytest.mark.parametrize(("before", "after", "seconds", "expected"), [
    (100, 1100, 2.0, 500.0),
    (None, 1100, 2.0, None),
    (100, None, 2.0, None),
    (100, 100, 0.0, None),
])
def test_per_second(before: int | None, after: int | None, seconds: float, expected: float | None) -> None:
    assert per_second(before, after, seconds) == expected


@pytest.mark.parametrize(("before", "after", "expected"), [(100, 497, 397), (None, 5, None), (5, None, None)])
def test_difference(before: int | None, after: int | None, expected: int | None) -> None:
    assert difference(before, after) == expected


@pytest.mark.parametrize(("ok", "offered", "expected"), [(99, 100, 0.99), (0, 0, None), (5, 5, 1.0)])
def test_answered_share(ok: int, offered: int, expected: float | None) -> None:
    assert answered_share(ok, offered) == expected
