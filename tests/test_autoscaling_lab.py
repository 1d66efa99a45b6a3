"""Autoscaling on real lab hosts deployed by Ansible (h1 podman, h2 docker): the agents read each
container's usage from its cgroup, `berth top pods` shows it, and a HorizontalPodAutoscaler on CPU
scales a deployment out under load and back once the load is gone.

The lab's pod network is the VXLAN backend, and its first test shows pods on the two hosts
reaching each other over it, with their own addresses kept (podman's side and docker's): one
deployment of a lab for both, where each took one (about a minute of the machine's CPU)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from berth.lab import hosts
from berth.lab.hosts import Lab
from master.objects.conditions import ready_condition
from tests.harness import wait_until
from tests.test_lab import deployed_lab
from tests.test_network_lab import api, called_from, in_pod, pod_on, running

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")

SPIN = (Path(__file__).resolve().parent.parent / "lab" / "spin.yaml").read_text()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with deployed_lab("as", tmp_path_factory.mktemp("cli"), "--hosts", "2", "--runtime", "h2=docker",
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


def cli(lab: Lab, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "berth.cli.main", *args], input=stdin, text=True,
                          capture_output=True, timeout=60, cwd=Path(__file__).resolve().parent.parent,
                          env={"PATH": "/usr/bin:/bin", "BERTH_CONFIG": str(lab.cli_config)})


def replicas(lab: Lab) -> int:
    return api(lab, "/api/v1/namespaces/default/deployments/spin").json()["spec"]["replicas"]


def spin_pods(lab: Lab) -> list[dict]:
    pods = api(lab, "/api/v1/namespaces/default/pods?labelSelector=app=spin").json()["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")
            and (p.get("status") or {}).get("phase") == "Running"]


def busiest(lab: Lab) -> int:
    """The highest CPU of the spin pods in `berth top pods` (millicores; 0 while none is shown)."""
    shown = cli(lab, "top", "pods", "-l", "app=spin").stdout.splitlines()[1:]
    return max((int(line.split()[1].rstrip("m")) for line in shown), default=0)


def test_top_pods_shows_a_busy_pod_and_the_hpa_scales_out_then_in(lab: Lab) -> None:
    applied = cli(lab, "apply", "-f", "-", stdin=SPIN)
    assert applied.returncode == 0, applied.stderr
    try:
        [first] = wait_until(lambda: spin_pods(lab) or None, 90, interval=0.5, what="the spin pod running")
        wait_until(lambda: "main" in cli(lab, "top", "pods", "--containers").stdout, 60, interval=1,
                   what="the idle pod's usage reported")
        assert busiest(lab) < 50  # idle: it sleeps
        go = cli(lab, "exec", first["metadata"]["name"], "--", "touch", "/tmp/go")
        assert go.returncode == 0, go.stderr
        wait_until(lambda: busiest(lab) >= 150, 60, interval=1, what="the busy pod near its 200m limit")
        wait_until(lambda: replicas(lab) >= 2, 60, interval=1, what="the HPA scaling out")
        events = api(lab, "/api/v1/namespaces/default/events").json()["items"]
        rescaled = [e for e in events if e["reason"] == "SuccessfulRescale"]
        assert rescaled and "above target" in rescaled[-1]["message"], rescaled
        shown = cli(lab, "get", "hpa", "spin").stdout
        assert "cpu: " in shown and "%/50%" in shown, shown

        def measured() -> bool:  # on both hosts: podman's cgroups and docker's
            listed = cli(lab, "top", "pods", "-l", "app=spin").stdout
            pods = spin_pods(lab)
            return len({p["spec"]["nodeName"] for p in pods}) == 2 and all(
                p["metadata"]["name"] in listed for p in pods)

        wait_until(measured, 60, interval=1, what="every spin pod measured, on both hosts")
        for pod in spin_pods(lab):  # the load stops everywhere; the window (10 s) passes
            cli(lab, "exec", pod["metadata"]["name"], "--", "rm", "-f", "/tmp/go")
        wait_until(lambda: replicas(lab) == 1, 120, interval=1, what="the HPA back at its minimum")
    finally:
        cli(lab, "delete", "-f", "-", stdin=SPIN)


SLOW = """apiVersion: berth/v1
kind: Deployment
metadata: {name: slow}
spec:
  replicas: 1
  selector: {matchLabels: {app: slow}}
  template:
    metadata: {labels: {app: slow}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: localhost/busybox:lab
        # a CGI page that takes half a second to answer while /tmp/slow exists
        command: [sh, -c, 'mkdir -p /www/cgi-bin &&
                          printf "#!/bin/sh\\\\n[ -f /tmp/slow ] && sleep 0.5\\\\n" > /www/cgi-bin/ok &&
                          printf "echo Content-Type: text/plain\\\\necho\\\\n" >> /www/cgi-bin/ok &&
                          echo "echo ok" >> /www/cgi-bin/ok &&
                          chmod +x /www/cgi-bin/ok && exec httpd -f -p 8080 -h /www']
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 2}
        resources: {requests: {cpu: 20m, memory: 16Mi}}
---
apiVersion: berth/v1
kind: HorizontalPodAutoscaler
metadata: {name: slow}
spec:
  scaleTargetRef: {kind: Deployment, name: slow}
  minReplicas: 1
  maxReplicas: 2
  metrics:
  - type: ResponseTime
    # the path is the metric's own: the agents time it on the target's pods (no probe names it)
    responseTime: {path: /cgi-bin/ok, target: {type: Value, milliseconds: 200}}
  behavior:
    scaleDown: {stabilizationWindowSeconds: 10}
"""


def slow_replicas(lab: Lab) -> int:
    return api(lab, "/api/v1/namespaces/default/deployments/slow").json()["spec"]["replicas"]


def test_a_response_time_hpa_scales_out_a_slow_deployment(lab: Lab) -> None:
    applied = cli(lab, "apply", "-f", "-", stdin=SLOW)
    assert applied.returncode == 0, applied.stderr
    try:
        def running_slow() -> list[dict]:
            pods = api(lab, "/api/v1/namespaces/default/pods?labelSelector=app=slow").json()["items"]
            return [p for p in pods if (p.get("status") or {}).get("phase") == "Running"]

        [first] = wait_until(lambda: running_slow() or None, 90, interval=0.5, what="the slow pod running")
        wait_until(lambda: "responseTime /cgi-bin/ok: " in (shown := cli(lab, "get", "hpa", "slow").stdout)
                   and "<unknown>" not in shown, 60, interval=1, what="the HPA reading a response time")
        assert slow_replicas(lab) == 1  # fast: no reason to scale
        slowed = cli(lab, "exec", first["metadata"]["name"], "--", "touch", "/tmp/slow")
        assert slowed.returncode == 0, slowed.stderr
        wait_until(lambda: slow_replicas(lab) == 2, 90, interval=1, what="the HPA scaling out on latency")
        events = api(lab, "/api/v1/namespaces/default/events").json()["items"]
        assert any(e["reason"] == "SuccessfulRescale" and e["involvedObject"]["name"] == "slow"
                   and "responseTime" in e["message"] for e in events), [e["message"] for e in events]
    finally:
        cli(lab, "delete", "-f", "-", stdin=SLOW)
