"""The pod network's VXLAN backend on real lab hosts deployed by Ansible: pods on two hosts reach
each other over the hosts' VXLAN devices, with their own addresses kept."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from berth.lab import hosts
from berth.lab.hosts import Lab
from master.objects.conditions import ready_condition
from tests.harness import wait_until
from tests.test_lab import deployed_lab
from tests.test_network_lab import api, called_from, in_pod, pod_on, running

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with deployed_lab("vx", tmp_path_factory.mktemp("cli"), "--hosts", "2",
                      "--var", "berth_pod_network_backend=vxlan") as made:
        yield made


def test_pods_reach_each_other_over_vxlan(lab: Lab) -> None:
    first, second = lab.host_names()
    wait_until(lambda: all(ready_condition(api(lab, f"/api/v1/nodes/{h}").json()) for h in (first, second)),
               90, interval=0.5, what="both nodes Ready")
    for pod in (pod_on("server", second, ["nc", "-ll", "-p", "9000", "-e", "netstat", "-tn"]),
                pod_on("client", first, ["sleep", "3600"])):
        assert api(lab, "/api/v1/namespaces/default/pods", "POST", pod).status_code == 201
    try:
        server = wait_until(lambda: running(lab, "server"), 90, interval=0.5, what="the server pod running")
        client = wait_until(lambda: running(lab, "client"), 90, interval=0.5, what="the client pod running")
        route = hosts.in_host(lab, first, ["ip", "route", "show", "proto", "177"]).stdout
        assert "dev berth.vxlan" in route, route  # the other host's pods are reached over the device
        called = in_pod(lab, client, "nc", "-w", "3", server["status"]["podIP"], "9000")
        assert called_from(called.stdout, client["status"]["podIP"]), called.stdout + called.stderr
    finally:
        for name in ("server", "client"):
            api(lab, f"/api/v1/namespaces/default/pods/{name}", "DELETE")
