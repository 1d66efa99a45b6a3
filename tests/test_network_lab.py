"""The pod network on real lab hosts deployed by Ansible (two podman hosts, one docker): every pod
an address of its node's pod CIDR, reached from any host's pods by that address, with its own
source address kept."""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess
from collections.abc import Iterator

import pytest
import requests

from berth.containers import container_name
from berth.lab import deploy, hosts
from berth.lab.hosts import Lab
from master.objects.conditions import ready_condition
from tests.harness import wait_until
from tests.test_lab import deployed_lab

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with deployed_lab("nw", tmp_path_factory.mktemp("cli"), "--hosts", "3", "--runtime", "h3=docker") as made:
        yield made


def api(lab: Lab, path: str, method: str = "GET", body: dict | None = None) -> requests.Response:
    for url in deploy.api_urls(lab):
        try:
            return requests.request(method, url + path, json=body, timeout=10,
                                    headers={"Authorization": f"Bearer {deploy.admin_token(lab)}"})
        except requests.RequestException:
            continue
    raise requests.ConnectionError("no master answers")


def pod_on(name: str, node: str, command: list[str]) -> dict:
    return {"apiVersion": "berth/v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1, "containers": [
                {"name": "main", "image": "localhost/busybox:lab", "command": command,
                 "resources": {"requests": {"cpu": "10m", "memory": "8Mi"}}}]}}


def running(lab: Lab, name: str) -> dict | None:
    pod = api(lab, f"/api/v1/namespaces/default/pods/{name}").json()
    status = pod.get("status") or {}
    return pod if status.get("phase") == "Running" and status.get("podIP") else None


def in_pod(lab: Lab, pod: dict, *command: str) -> subprocess.CompletedProcess:
    """A command inside the pod's container, on its own host (traffic never leaves the lab)."""
    host = pod["spec"]["nodeName"]
    return hosts.in_host(lab, host, [lab.runtime(host), "exec", "--", container_name(pod, "main"), *command],
                         check=False, timeout=30)


def called_from(netstat: str, address: str) -> bool:
    """`netstat -tn` shows a connection from `address` (as itself, or IPv4 mapped in IPv6)."""
    return re.search(rf"(?:^|[ :]){re.escape(address)}:\d+ ", netstat, re.MULTILINE) is not None


def test_pods_on_different_hosts_reach_each_other_by_their_own_addresses(lab: Lab) -> None:
    names = lab.host_names()
    wait_until(lambda: all(ready_condition(api(lab, f"/api/v1/nodes/{h}").json()) for h in names), 90,
               interval=0.5, what="every node Ready (its pod network made)")
    cidrs = {h: api(lab, f"/api/v1/nodes/{h}").json()["spec"]["podCIDR"] for h in names}
    assert len(set(cidrs.values())) == len(names), cidrs
    client_host, outside_host, server_host = names  # h3 runs docker, the others podman
    show_peer = ["nc", "-ll", "-p", "9000", "-e", "netstat", "-tn"]  # answers each caller with who called
    for pod in (pod_on("server", server_host, show_peer), pod_on("client", client_host, ["sleep", "3600"])):
        created = api(lab, "/api/v1/namespaces/default/pods", "POST", pod)
        assert created.status_code == 201, created.text
    try:
        server = wait_until(lambda: running(lab, "server"), 90, interval=0.5, what="the server pod running")
        client = wait_until(lambda: running(lab, "client"), 90, interval=0.5, what="the client pod running")
        for pod, host in ((server, server_host), (client, client_host)):
            address = ipaddress.IPv4Address(pod["status"]["podIP"])
            assert address in ipaddress.IPv4Network(cidrs[host]), (pod["status"]["podIP"], cidrs[host])
        assert in_pod(lab, client, "hostname").stdout.strip() == "client"
        called = in_pod(lab, client, "nc", "-w", "3", server["status"]["podIP"], "9000")
        # the server saw the client's own address: no NAT between pods
        assert called_from(called.stdout, client["status"]["podIP"]), called.stdout + called.stderr
        # to anything else (a host's own address), a pod's traffic leaves as its host's
        outside = lab.address(outside_host)
        listen = "(timeout 60 busybox nc -ll -p 9100 -e busybox netstat -tn >/dev/null 2>&1 &)"
        hosts.in_host(lab, outside_host, ["sh", "-c", listen])
        seen = wait_until(lambda: in_pod(lab, client, "nc", "-w", "3", outside, "9100").stdout or None, 30,
                          interval=0.5, what="the outside listener answering")
        assert called_from(seen, lab.address(client_host)), seen
        assert not called_from(seen, client["status"]["podIP"]), seen
    finally:
        for name in ("server", "client"):
            api(lab, f"/api/v1/namespaces/default/pods/{name}", "DELETE")

