"""The docker driver for real: a lab host running its own dockerd, driven by three masters over SSH.

As test_pods_lab does for podman (the node registered by the test, no agent): a pod's two
containers share the sandbox's network and its published port, logs and exec work, a killed
container is restarted, a deleted pod leaves nothing behind, an orphan with our labels is
removed, and a missing image waits with back-off. The agent's docker event parsing is checked
against the real engine's stream.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import pytest
import requests

from berth.containers import EVENT_STREAMS, RuntimeEvent, container_name, sandbox_name
from berth.lab import hosts as lab_hosts
from berth.lab.hosts import IMAGE, Lab
from tests.conftest import TEST_ROOT
from tests.harness import MasterCluster, berth, berth_process, masters_driving, pod, temporary_lab, wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")  # CI runs as root
PODS = "/api/v1/namespaces/default/pods"
PORT = 18090


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with temporary_lab("dk", hosts=1, runtimes={"h1": "docker"}) as made:
        yield made


@pytest.fixture(scope="module")
def cluster(lab: Lab) -> Iterator[MasterCluster]:
    with masters_driving(lab, TEST_ROOT / "docker-lab") as made:
        yield made


def docker(lab: Lab, *argv: str) -> subprocess.CompletedProcess:
    return lab_hosts.in_host(lab, "h1", ["docker", *argv], check=False)


def names(lab: Lab) -> list[str]:
    return docker(lab, "ps", "--all", "--format", "{{.Names}}").stdout.split()


def status_of(cluster: MasterCluster, name: str) -> dict:
    return cluster.session().get(cluster.url(0, f"{PODS}/{name}"), timeout=10).json().get("status") or {}


def test_a_pod_runs_on_docker_shares_its_sandbox_restarts_and_is_removed(lab: Lab,
                                                                          cluster: MasterCluster) -> None:
    assert docker(lab, "version", "--format", "{{.Server.Version}}").returncode == 0  # a real engine
    obj = pod("duo", image=IMAGE)
    web, client = obj["spec"]["containers"][0], dict(obj["spec"]["containers"][0])
    web["command"] = ["sh", "-c", "echo hello-from-docker > /tmp/index.html && exec httpd -f -p 8080 -h /tmp"]
    web["ports"] = [{"containerPort": 8080, "hostPort": PORT}]
    web["resources"] = {"limits": {"cpu": "500m", "memory": "64Mi"}}
    client.update(name="client", command=["sh", "-c", "echo client-up; exec sleep 600"])
    obj["spec"]["containers"] = [web, client]
    created = cluster.session().post(cluster.url(0, PODS), json=obj, timeout=10)
    assert created.status_code == 201, created.text
    made = created.json()
    wait_until(lambda: status_of(cluster, "duo").get("phase") == "Running", 90, interval=0.3,
               what="duo Running")
    status = status_of(cluster, "duo")
    assert status["hostIP"] == lab.address("h1") and status["podIP"]
    assert all(float(s["state"]["running"]["startedAt"]) > 0 for s in status["containerStatuses"])
    web_name = container_name(made, "main")
    limits = docker(lab, "inspect", "--format", "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}", web_name)
    assert limits.stdout.split() == [str(64 * 2**20), "500000000"]
    # the client reaches the web container on localhost: one network namespace, the sandbox's
    request = "printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc 127.0.0.1 8080"
    exec_client = ["exec", "duo", "-c", "client", "--", "sh", "-c", request]
    answer = wait_until(lambda: (r := berth(cluster, *exec_client)) and "hello-from-docker" in r.stdout and r,
                        30, interval=0.5, what="web answering")
    assert answer.returncode == 0
    # the sandbox publishes the port on the host's address
    page = wait_until(lambda: _get(f"http://{lab.address('h1')}:{PORT}/index.html"), 30, interval=0.5,
                      what="the published port")
    assert "hello-from-docker" in page
    logs = berth(cluster, "logs", "duo", "-c", "client")
    assert logs.returncode == 0 and logs.stdout.strip() == "client-up"
    # a container joined to the sandbox shares its hostname, which is the pod's name
    assert berth(cluster, "exec", "duo", "-c", "client", "--", "hostname").stdout == "duo\n"
    # port-forward finds the container's process through docker and relays in its network
    forward = berth_process(cluster, "port-forward", "pod/duo", ":8080", stdout=subprocess.PIPE, text=True)
    try:
        assert forward.stdout is not None
        line = forward.stdout.readline()
        assert line.startswith("Forwarding from 127.0.0.1:"), line
        local = int(line.split(":")[1].split()[0])
        assert "hello-from-docker" in _get(f"http://127.0.0.1:{local}/index.html")
    finally:
        forward.terminate()
        forward.wait(timeout=15)
    # killed on the host: restarted, still in the sandbox's network
    assert docker(lab, "kill", web_name).returncode == 0

    def restarted() -> bool:
        status = status_of(cluster, "duo")
        return status.get("phase") == "Running" and status["containerStatuses"][0]["restartCount"] == 1

    wait_until(restarted, 60, interval=0.3, what="restart 1")
    wait_until(lambda: _get(f"http://{lab.address('h1')}:{PORT}/index.html"), 30, interval=0.5,
               what="the port answering again")
    # deleted: the pod's containers and its sandbox go
    assert berth(cluster, "delete", "pod", "duo", "--grace-period", "1").returncode == 0
    wait_until(lambda: not any(n.startswith(sandbox_name(made)) for n in names(lab)), 60, interval=0.3,
               what="the pod's containers removed")


def _get(url: str) -> str:
    try:
        return requests.get(url, timeout=3).text
    except requests.RequestException:
        return ""


def test_an_orphan_is_removed_and_docker_events_parse_as_the_agent_reads_them(
        lab: Lab, cluster: MasterCluster) -> None:
    events = EVENT_STREAMS["docker"]
    since = int(time.time()) - 1
    ours = ("berth.managed=true", "berth.pod-uid=0rphan00-0000", "berth.namespace=default",
            "berth.pod=ghost", "berth.container=main")
    labels = [arg for label in ours for arg in ("--label", label)]
    assert docker(lab, "run", "-d", "--name", "ghost", *labels, IMAGE, "sleep", "600").returncode == 0
    assert docker(lab, "run", "-d", "--name", "not-ours", IMAGE, "sleep", "600").returncode == 0
    wait_until(lambda: "ghost" not in names(lab), 60, interval=0.3, what="the orphan removed")
    assert "not-ours" in names(lab)
    docker(lab, "rm", "--force", "not-ours")
    # the agent's stream (EVENT_STREAMS), replayed over the test's window so that it ends
    window = ["--since", str(since), "--until", str(int(time.time()) + 1)]
    replay = lab_hosts.in_host(lab, "h1", [*events.command(), *window], check=False, timeout=30)
    seen = [e for e in map(events.parse, replay.stdout.splitlines()) if e is not None]
    assert RuntimeEvent("ghost", "start") in seen
    assert any(e.container == "ghost" and e.action == "die" and e.exit_code == 137 for e in seen)
    assert RuntimeEvent("ghost", "destroy") in seen
    assert not any(e.container == "not-ours" for e in seen)  # the label filter: ours only


def test_a_missing_image_waits_with_back_off_on_docker_too(lab: Lab, cluster: MasterCluster) -> None:
    """As on podman (test_pods_lab): docker's pull of localhost/... is refused at once (port 80),
    the container waits ErrImagePull, then ImagePullBackOff, and nothing is made or restarted."""
    missing = "localhost/berth-missing:nope"
    created = cluster.session().post(cluster.url(0, PODS), json=pod("unpullable", image=missing), timeout=10)
    assert created.status_code == 201, created.text

    def backing_off() -> dict | None:
        status = status_of(cluster, "unpullable")
        entry = (status.get("containerStatuses") or [{}])[0]
        reason = ((entry.get("state") or {}).get("waiting") or {}).get("reason")
        return status if reason == "ImagePullBackOff" else None

    status = wait_until(backing_off, 60, interval=0.3, what="unpullable backing off")
    assert status["phase"] == "Pending" and status["containerStatuses"][0]["restartCount"] == 0
    described = " ".join(berth(cluster, "describe", "pod", "unpullable").stdout.split())
    assert f'Failed to pull image "{missing}": ' in described and "connection refused" in described, described
    assert container_name(created.json(), "main") not in names(lab)
    assert berth(cluster, "delete", "pod", "unpullable", "--now").returncode == 0


def test_volumes_on_docker_an_empty_dir_shared_and_a_config_map_updated(lab: Lab,
                                                                       cluster: MasterCluster) -> None:
    """Issue 16: the same host plan and mounts as podman's (test_pods_lab has the rest)."""
    maps = "/api/v1/namespaces/default/configmaps"
    config = {"kind": "ConfigMap", "metadata": {"name": "dk-config"}, "data": {"say": "first"}}
    assert cluster.session().post(cluster.url(0, maps), json=config, timeout=10).status_code == 201
    obj = pod("dk-volumes", image=IMAGE)
    obj["spec"]["volumes"] = [{"name": "shared", "emptyDir": {}},
                              {"name": "cfg", "configMap": {"name": "dk-config"}}]
    writer, reader = obj["spec"]["containers"][0], dict(obj["spec"]["containers"][0])
    writer["command"] = ["sh", "-c", "echo from-docker > /shared/note; exec sleep 600"]
    writer["volumeMounts"] = [{"name": "shared", "mountPath": "/shared"}]
    reader.update(name="reader", command=["sh", "-c", "exec sleep 600"],
                  volumeMounts=[{"name": "shared", "mountPath": "/seen"},
                                {"name": "cfg", "mountPath": "/cfg"}])
    obj["spec"]["containers"].append(reader)
    made = cluster.session().post(cluster.url(0, PODS), json=obj, timeout=10)
    assert made.status_code == 201, made.text
    reader_name = container_name(made.json(), "reader")

    def read(path: str) -> str:
        done = docker(lab, "exec", reader_name, "cat", path)
        return done.stdout if done.returncode == 0 else ""

    wait_until(lambda: read("/seen/note") == "from-docker\n", 60, interval=0.3, what="the shared file")
    assert read("/cfg/say") == "first"
    patched = cluster.session().patch(cluster.url(0, f"{maps}/dk-config"), json={"data": {"say": "second"}},
                                      headers={"Content-Type": "application/merge-patch+json"}, timeout=10)
    assert patched.status_code == 200, patched.text
    wait_until(lambda: read("/cfg/say") == "second", 60, interval=0.5, what="the ConfigMap's file updated")
    uid = made.json()["metadata"]["uid"]
    assert cluster.session().delete(cluster.url(0, f"{PODS}/dk-volumes?gracePeriodSeconds=0"),
                                    timeout=10).status_code == 200
    pod_dir = lab.host_dir("h1") / "var-lib-berth" / "pods" / uid
    wait_until(lambda: not pod_dir.exists(), 60, interval=0.3, what="the pod's directory removed")
