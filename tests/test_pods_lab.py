"""Pods really run: three masters on loopback drive podman on lab hosts over SSH.

The nodes are registered by the test (no agents here: test_lab_cluster covers them), with
the lab hosts' addresses, so the runtime's SSH, podman, restarts and orphan removal are
what is under test.
"""

from __future__ import annotations

import fcntl
import os
import select
import signal
import socket
import struct
import subprocess
import termios
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from berth.containers import container_name
from berth.lab import hosts as lab_hosts
from berth.lab.hosts import IMAGE, Lab
from tests.conftest import TEST_ROOT
from tests.harness import (
    MasterCluster,
    berth,
    berth_process,
    masters_driving,
    pod,
    temporary_lab,
    wait_until,
)
from tests.test_prometheus_masters import scrape

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")  # CI runs as root
PODS = "/api/v1/namespaces/default/pods"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with temporary_lab("pl", hosts=2) as made:
        yield made


@pytest.fixture(scope="module")
def cluster(lab: Lab) -> Iterator[MasterCluster]:
    with masters_driving(lab, TEST_ROOT / "pods-lab", controllers=("persistent-volume",)) as made:
        yield made


def on_host(lab: Lab, host: str, *argv: str) -> subprocess.CompletedProcess:
    return lab_hosts.in_host(lab, host, list(argv), check=False)


def names_on(lab: Lab, host: str) -> list[str]:
    return on_host(lab, host, "podman", "ps", "-a", "--format", "{{.Names}}").stdout.split()


def create(cluster: MasterCluster, obj: dict[str, Any]) -> dict[str, Any]:
    answer = cluster.session().post(cluster.url(0, PODS), json=obj, timeout=10)
    assert answer.status_code == 201, answer.text
    return answer.json()


def get(cluster: MasterCluster, name: str) -> dict[str, Any]:
    return cluster.session().get(cluster.url(0, f"{PODS}/{name}"), timeout=10).json()


def exists(cluster: MasterCluster, name: str) -> bool:
    return cluster.session().get(cluster.url(0, f"{PODS}/{name}"), timeout=10).status_code == 200


def phase(cluster: MasterCluster, name: str) -> str | None:
    return (get(cluster, name).get("status") or {}).get("phase")


def command_pod(name: str, script: str, restart: str = "Always") -> dict[str, Any]:
    obj = pod(name, image=IMAGE)
    obj["spec"]["containers"][0]["command"] = ["sh", "-c", script]
    obj["spec"]["restartPolicy"] = restart
    return obj


def test_a_pod_runs_and_a_killed_container_is_restarted(lab: Lab, cluster: MasterCluster) -> None:
    created = create(cluster, pod("sleeper", image=IMAGE))
    wait_until(lambda: phase(cluster, "sleeper") == "Running", 60, interval=0.3, what="sleeper Running")
    ssh_timed = "berth_runtime_ssh_command_duration_seconds_count"  # the runtime's SSH, by action type
    timed = scrape(cluster, cluster.leader_index())
    assert timed(ssh_timed, verb="RunContainer") >= 1 and timed(ssh_timed, verb="ListContainers") >= 1
    status = get(cluster, "sleeper")["status"]
    host = get(cluster, "sleeper")["spec"]["nodeName"]
    assert status["hostIP"] == lab.address(host) and status["podIP"]
    assert status["containerStatuses"][0]["restartCount"] == 0
    name = container_name(created, "main")
    assert on_host(lab, host, "podman", "inspect", "--format", "{{.State.Status}}", name).stdout.strip() == \
        "running"
    assert on_host(lab, host, "podman", "kill", name).returncode == 0
    wait_until(lambda: get(cluster, "sleeper")["status"]["containerStatuses"][0]["restartCount"] == 1, 60,
               interval=0.3, what="restart count 1")
    wait_until(lambda: on_host(lab, host, "podman", "inspect", "--format", "{{.State.Status}}", name)
               .stdout.strip() == "running", 30, what="the container running again")
    described = " ".join(berth(cluster, "describe", "pod", "sleeper").stdout.split())
    assert "Restarted container main (restart 1)" in described  # the "Started" event, counted twice
    # deleting the pod removes its containers from the host
    gone = cluster.session().delete(cluster.url(0, f"{PODS}/sleeper?gracePeriodSeconds=1"), timeout=10)
    assert gone.status_code == 200
    wait_until(lambda: name not in names_on(lab, host), 60, interval=0.3, what="containers removed")
    wait_until(lambda: scrape(cluster, cluster.leader_index())(ssh_timed, verb="StopPod") >= 1, 10,
               what="the graceful stop timed (when its background work ended)")


def test_restart_policies_and_crash_loop_back_off(lab: Lab, cluster: MasterCluster) -> None:
    create(cluster, command_pod("once-ok", "exit 0", restart="OnFailure"))
    create(cluster, command_pod("once-bad", "exit 3", restart="Never"))
    create(cluster, command_pod("crasher", "exit 1", restart="Always"))
    wait_until(lambda: phase(cluster, "once-ok") == "Succeeded", 60, interval=0.3, what="once-ok Succeeded")
    wait_until(lambda: phase(cluster, "once-bad") == "Failed", 60, interval=0.3, what="once-bad Failed")
    terminated = get(cluster, "once-bad")["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 3

    def backing_off() -> bool:
        entry = get(cluster, "crasher")["status"]["containerStatuses"][0]
        return entry["restartCount"] >= 2 and "CrashLoopBackOff" in str(entry)

    wait_until(backing_off, 90, interval=0.3, what="crasher in CrashLoopBackOff after restarts")
    assert "Back-off restarting failed container main" in berth(cluster, "describe", "pod", "crasher").stdout
    assert get(cluster, "once-ok")["status"]["containerStatuses"][0]["restartCount"] == 0


def test_an_orphan_container_with_our_labels_is_removed(lab: Lab, cluster: MasterCluster) -> None:
    ours = ("berth.managed=true", "berth.pod-uid=0rphan00-0000", "berth.namespace=default", "berth.pod=ghost",
            "berth.container=main")
    labels = [arg for label in ours for arg in ("--label", label)]
    started = on_host(lab, "h1", "podman", "run", "-d", "--name", "ghost", *labels, IMAGE, "sleep", "600")
    assert started.returncode == 0, started.stderr
    untouched = on_host(lab, "h1", "podman", "run", "-d", "--name", "not-ours", IMAGE, "sleep", "600")
    assert untouched.returncode == 0
    wait_until(lambda: "ghost" not in names_on(lab, "h1"), 60, interval=0.3, what="the orphan removed")
    assert "not-ours" in names_on(lab, "h1")
    on_host(lab, "h1", "podman", "rm", "-f", "-t", "0", "not-ours")


def test_run_logs_exec_and_wide_listing_through_the_cli(lab: Lab, cluster: MasterCluster) -> None:
    marker = f"/tmp/berth-pwned-{os.getpid()}"
    script = 'echo "started $TRAP $1"; exec sleep 600'
    run = berth(cluster, "run", "talker", "--image", IMAGE, "--cpu", "100m", "--memory", "32Mi",
                "--env", f"TRAP=$(touch {marker})", "--", "sh", "-c", script, "sh", f"; touch {marker}")
    assert run.returncode == 0 and "pod/talker created" in run.stdout, run.stderr
    wait_until(lambda: phase(cluster, "talker") == "Running", 60, interval=0.3, what="talker Running")
    logs = wait_until(lambda: (out := berth(cluster, "logs", "talker").stdout) and "started" in out and out,
                      30, interval=0.3, what="talker's logs")
    assert logs.strip() == f"started $(touch {marker}) ; touch {marker}"  # literal: nothing ran
    assert not os.path.exists(marker)
    answer = berth(cluster, "exec", "talker", "--", "sh", "-c", "echo $((6 * 7)); echo oops >&2; exit 4")
    assert (answer.returncode, answer.stdout, answer.stderr) == (4, "42\n", "oops\n")
    wide = berth(cluster, "get", "pods", "talker", "-o", "wide").stdout.splitlines()
    header, row = wide[0].split(), wide[1].split()
    assert header == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    assert row[:4] == ["talker", "1/1", "Running", "0"] and row[6] in lab.host_names()
    assert berth(cluster, "logs", "talker", role="viewer").returncode == 0
    refused = berth(cluster, "exec", "talker", "--", "true", role="viewer")
    assert refused.returncode != 0 and "may not create Pod talker (exec)" in refused.stderr
    bad = berth(cluster, "run", "bad;name", "--image", IMAGE)
    assert bad.returncode != 0 and "metadata.name" in bad.stderr


def test_following_logs_never_holds_the_runtimes_ssh_sessions(lab: Lab, cluster: MasterCluster) -> None:
    """`logs -f` streams run over the API's own SSH connection: as many as a host's sessions
    allow, on the leader, and the runtime still starts a pod there (issue 9, item 7). One token
    holds at most 4 of a host's sessions, and when all are taken the next user hears so at once."""
    quiet = command_pod("quiet", "echo up; exec sleep 600")
    create(cluster, quiet)
    wait_until(lambda: phase(cluster, "quiet") == "Running", 60, interval=0.3, what="quiet Running")
    host = get(cluster, "quiet")["spec"]["nodeName"]
    leader = cluster.leader_index()
    url = cluster.url(leader, f"{PODS}/quiet/log?follow=true")
    readers = []  # kept: a reader dropped half-way closes its connection (urllib3), freeing a session
    with ExitStack() as streams:
        for role in ("admin",) * 4 + ("operator",) * 4:  # the API pool's sessions per host (SshPool.per_host)
            answer = streams.enter_context(cluster.session(role).get(url, stream=True, timeout=30))
            readers.append(answer.iter_content(64))
            assert answer.status_code == 200 and next(readers[-1]).startswith(b"up")
        assert cluster.session("admin").get(url, timeout=30).status_code == 429  # its share of the host
        busy = cluster.session("viewer").get(url, timeout=30)  # the host's sessions: told, not queued
        assert busy.status_code == 429 and "sessions busy" in busy.json()["error"], busy.text
        beside = pod("beside", image=IMAGE)
        beside["spec"]["nodeName"] = host
        create(cluster, beside)
        wait_until(lambda: phase(cluster, "beside") == "Running", 60, interval=0.3, what="beside Running")


def test_a_secret_reaches_the_container_but_no_command_line_or_log(lab: Lab, cluster: MasterCluster) -> None:
    """Issue 10, item 5: Secret values go to podman as an env file on stdin, never in argv."""
    value = f"never-on-a-command-line-{os.getpid()}"
    secret = {"kind": "Secret", "metadata": {"name": "api"}, "stringData": {"token": value}}  # base64 in data
    assert cluster.session().post(cluster.url(0, "/api/v1/namespaces/default/secrets"), json=secret,
                                  timeout=10).status_code == 201
    keeper = command_pod("keeper", "exec sleep 600")
    keeper["spec"]["containers"][0]["env"] = [
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}},
        {"name": "PLAIN", "value": "visible"}]
    created = create(cluster, keeper)
    wait_until(lambda: phase(cluster, "keeper") == "Running", 60, interval=0.3, what="keeper Running")
    seen = berth(cluster, "exec", "keeper", "--", "sh", "-c", 'echo "$TOKEN $PLAIN"')
    assert seen.stdout.strip() == f"{value} visible", seen.stderr
    host = get(cluster, "keeper")["spec"]["nodeName"]
    name = container_name(created, "main")
    made_with = on_host(lab, host, "podman", "inspect", "--format", "{{.Config.CreateCommand}}", name).stdout
    assert "--env-file=/dev/stdin" in made_with and "--env=PLAIN=visible" in made_with
    assert value not in made_with  # podman's record of the command line that made it
    assert value not in on_host(lab, host, "ps", "-eo", "args").stdout
    assert value not in cluster.logs()


def test_two_containers_of_a_pod_reach_each_other_on_localhost(lab: Lab, cluster: MasterCluster) -> None:
    obj = pod("duo", image=IMAGE)
    web, client = obj["spec"]["containers"][0], dict(obj["spec"]["containers"][0])
    web["command"] = ["sh", "-c", "echo hello-from-web > /tmp/index.html && exec httpd -f -p 8080 -h /tmp"]
    client.update(name="client", command=["sleep", "600"])
    obj["spec"]["containers"] = [web, client]
    create(cluster, obj)
    wait_until(lambda: phase(cluster, "duo") == "Running", 60, interval=0.3, what="duo Running")
    request = "printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc 127.0.0.1 8080"
    exec_client = ["exec", "duo", "-c", "client", "--", "sh", "-c", request]
    answer = wait_until(lambda: (r := berth(cluster, *exec_client)) and "hello-from-web" in r.stdout and r,
                        30, interval=0.5, what="web answering")
    assert answer.returncode == 0
    for command in (["logs", "duo"], ["exec", "duo", "--", "true"]):  # the first container, as kubectl
        defaulted = berth(cluster, *command)
        assert defaulted.returncode == 0 and defaulted.stderr.strip() == \
            'Defaulted container "main" out of: main, client', defaulted.stderr


def test_a_running_pod_is_deleted_gracefully(lab: Lab, cluster: MasterCluster) -> None:
    polite = command_pod("polite", "trap 'exit 0' TERM; while true; do sleep 1; done")
    polite["spec"]["terminationGracePeriodSeconds"] = 600
    created = create(cluster, polite)
    create(cluster, pod("rude", image=IMAGE))
    wait_until(lambda: phase(cluster, "polite") == "Running" and phase(cluster, "rude") == "Running", 60,
               interval=0.3, what="both Running")
    host = get(cluster, "polite")["spec"]["nodeName"]
    deleted = berth(cluster, "delete", "pod", "polite")
    assert deleted.returncode == 0, deleted.stderr
    marked = cluster.session().get(cluster.url(0, f"{PODS}/polite"), timeout=10)
    if marked.status_code == 200:  # still stopping: shown as Terminating
        assert marked.json()["metadata"]["deletionGracePeriodSeconds"] == 600
    # SIGTERM reached it: it exits at once rather than after the 600 s grace
    wait_until(lambda: cluster.session().get(cluster.url(0, f"{PODS}/polite"), timeout=10).status_code == 404,
               60, interval=0.3, what="polite gone")
    assert container_name(created, "main") not in names_on(lab, host)
    assert berth(cluster, "delete", "pod", "rude", "--now").returncode == 0  # no grace: gone at once
    assert cluster.session().get(cluster.url(0, f"{PODS}/rude"), timeout=10).status_code == 404
    # a pod that ignores SIGTERM uses its whole grace; meanwhile a new pod starts on the same
    # host (the stop runs in the background, not holding up the runtime's rounds)
    stubborn = command_pod("stubborn", "trap '' TERM; while true; do sleep 1; done")
    stubborn["spec"]["terminationGracePeriodSeconds"] = 20
    stubborn["spec"]["nodeName"] = host
    create(cluster, stubborn)
    wait_until(lambda: phase(cluster, "stubborn") == "Running", 60, interval=0.3, what="stubborn Running")
    assert berth(cluster, "delete", "pod", "stubborn").returncode == 0
    follower = pod("follower", image=IMAGE)
    follower["spec"]["nodeName"] = host
    create(cluster, follower)
    wait_until(lambda: phase(cluster, "follower") == "Running", 60, interval=0.3, what="follower Running")
    assert "Terminating" in berth(cluster, "get", "pods", "stubborn").stdout  # still stopping
    wait_until(lambda: not exists(cluster, "stubborn"), 90, interval=0.5, what="stubborn gone")
    refused = cluster.session().delete(cluster.url(0, f"{PODS}/whatever?gracePeriodSeconds=-1"), timeout=10)
    assert refused.status_code == 400 and refused.json()["field"] == "gracePeriodSeconds"


def test_reapplying_leaves_a_running_pod_alone_and_a_new_image_replaces_its_container(
        lab: Lab, cluster: MasterCluster) -> None:
    """The bug: a second `apply` of an unchanged manifest cleared spec.nodeName, and the pod was
    scheduled afresh, its container's state lost. Now: `unchanged`, the same container on the
    same host; a new image makes the container afresh there; any other spec change is refused."""
    for host in lab.host_names():
        on_host(lab, host, lab.runtime(host), "tag", IMAGE, "localhost/busybox:other")

    def manifest(image: str = IMAGE, script: str = "echo kept > /tmp/mark; exec sleep 3600") -> str:
        return (f"apiVersion: berth/v1\nkind: Pod\nmetadata:\n  name: steady\n  labels: {{app: steady}}\n"
                f"spec:\n  containers:\n  - name: main\n    image: {image}\n"
                f"    command: [sh, -c, {script!r}]\n")

    def container_id(host: str) -> str:
        return on_host(lab, host, "podman", "inspect", "--format", "{{.Id}} {{.State.Status}} {{.ImageName}}",
                       container_name(get(cluster, "steady"), "main")).stdout.strip()

    first = berth(cluster, "apply", "-f", "-", stdin=manifest())
    assert first.returncode == 0 and first.stdout.strip() == "pod/steady created", first.stderr
    wait_until(lambda: phase(cluster, "steady") == "Running", 60, interval=0.3, what="steady Running")
    before = get(cluster, "steady")
    host = before["spec"]["nodeName"]
    running = container_id(host)
    again = berth(cluster, "apply", "-f", "-", stdin=manifest())
    assert again.returncode == 0 and again.stdout.strip() == "pod/steady unchanged", again.stdout
    after = get(cluster, "steady")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["spec"]["nodeName"] == host and container_id(host) == running
    kept = berth(cluster, "exec", "steady", "--", "cat", "/tmp/mark")
    assert kept.stdout.strip() == "kept", kept.stderr  # the container's own state is still there
    refused = berth(cluster, "apply", "-f", "-", stdin=manifest(script="exec sleep 7200"))
    assert refused.returncode == 1 and "spec.containers[0].command" in refused.stderr, refused.stderr
    changed = berth(cluster, "apply", "-f", "-", stdin=manifest(image="localhost/busybox:other"))
    assert changed.stdout.strip() == "pod/steady configured", changed.stderr
    wait_until(lambda: container_id(host).endswith("running localhost/busybox:other"), 60, interval=0.3,
               what="the container made afresh from the new image")

    def restarted() -> bool:
        entry = get(cluster, "steady")["status"]["containerStatuses"][0]
        return entry["restartCount"] == 1 and bool(entry["state"].get("running", {}).get("startedAt"))

    wait_until(restarted, 60, interval=0.3, what="the status telling the restart")
    assert get(cluster, "steady")["spec"]["nodeName"] == host
    described = " ".join(berth(cluster, "describe", "pod", "steady").stdout.split())
    assert "definition changed (image was localhost/busybox:lab)" in described
    cluster.session().delete(cluster.url(0, f"{PODS}/steady?gracePeriodSeconds=0"), timeout=10)
    wait_until(lambda: not exists(cluster, "steady"), 60, interval=0.3, what="steady gone")
    for name in lab.host_names():
        on_host(lab, name, lab.runtime(name), "rmi", "localhost/busybox:other")


def test_a_pod_with_a_long_name_runs_and_its_hostname_is_its_name(lab: Lab, cluster: MasterCluster) -> None:
    """The bug: names of 42 to 63 characters passed validation, then `sethostname: invalid argument`
    (the sandbox's name, used as the hostname, passed 64 characters)."""
    name = "a-pod-whose-name-is-as-long-as-a-dns-label-may-be-sixty-three-c"
    assert len(name) == 63
    obj = pod(name, image=IMAGE)
    create(cluster, obj)
    wait_until(lambda: phase(cluster, name) == "Running", 60, interval=0.3, what="the long-named pod Running")
    answer = berth(cluster, "exec", name, "--", "hostname")
    assert answer.stdout.strip() == name, answer.stderr
    cluster.session().delete(cluster.url(0, f"{PODS}/{name}?gracePeriodSeconds=0"), timeout=10)
    wait_until(lambda: not exists(cluster, name), 60, interval=0.3, what="the long-named pod gone")


def test_logs_flags_and_image_pull_policy(lab: Lab, cluster: MasterCluster) -> None:
    """kubectl habits: logs --timestamps, --since, -l; imagePullPolicy Never runs only what the host
    has."""
    talky = command_pod("talky", "echo one; echo two; exec sleep 600")
    talky["metadata"]["labels"] = {"suite": "logs"}
    talky["spec"]["containers"][0]["imagePullPolicy"] = "Never"  # the lab's image is on every host
    absent = pod("absent", image="localhost/not-on-any-host:1")
    absent["spec"]["containers"][0]["imagePullPolicy"] = "Never"
    create(cluster, talky)
    create(cluster, absent)
    wait_until(lambda: phase(cluster, "talky") == "Running", 60, interval=0.3, what="talky Running")
    wait_until(lambda: "two" in berth(cluster, "logs", "talky").stdout, 30, interval=0.3,
               what="talky's output")
    stamped = berth(cluster, "logs", "talky", "--timestamps").stdout.splitlines()
    assert len(stamped) == 2 and all(line.split()[0][:4].isdigit() and line.endswith(("one", "two"))
                                     for line in stamped), stamped
    assert berth(cluster, "logs", "-l", "suite=logs", "--since", "1h").stdout.split() == ["one", "two"]
    assert berth(cluster, "logs", "talky", "--since", "bad").returncode == 2

    def refused() -> str:
        entry = (get(cluster, "absent").get("status") or {}).get("containerStatuses") or [{}]
        return str((entry[0].get("state") or {}).get("waiting", {}).get("message", ""))

    message = wait_until(lambda: "not-on-any-host" in refused() and refused(), 60, interval=0.3,
                         what="absent refused (never pulled)")
    assert message == 'Container image "localhost/not-on-any-host:1" is not present with pull policy of Never'
    assert get(cluster, "absent")["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == \
        "ErrImageNeverPull", message
    for name in ("talky", "absent"):
        cluster.session().delete(cluster.url(0, f"{PODS}/{name}?gracePeriodSeconds=0"), timeout=10)
    wait_until(lambda: not exists(cluster, "talky") and not exists(cluster, "absent"), 60, interval=0.3,
               what="both gone")


def test_an_image_no_host_has_waits_with_back_off_until_the_pod_names_one_it_has(
        lab: Lab, cluster: MasterCluster) -> None:
    """Issue 12, item 4: the image is missing and cannot be pulled (the lab reaches no registry:
    podman's pull of localhost/... is refused on 127.0.0.1:443, three tries in about 3 s), so the
    container waits, ErrImagePull and then ImagePullBackOff between attempts, each told by an event;
    nothing crash-loops or counts a restart. Given an image its host has, the pod runs."""
    missing = "localhost/berth-missing:nope"
    created = create(cluster, pod("unpullable", image=missing))

    def backing_off() -> dict | None:
        status = get(cluster, "unpullable").get("status") or {}
        entry = (status.get("containerStatuses") or [{}])[0]
        reason = ((entry.get("state") or {}).get("waiting") or {}).get("reason")
        return status if reason == "ImagePullBackOff" else None

    status = wait_until(backing_off, 60, interval=0.3, what="unpullable backing off")
    entry = status["containerStatuses"][0]
    said = entry["state"]["waiting"]["message"]
    assert said.startswith(f'Back-off pulling image "{missing}": ErrImagePull: '), said
    assert status["phase"] == "Pending" and entry["restartCount"] == 0

    def told() -> str:
        return " ".join(berth(cluster, "describe", "pod", "unpullable").stdout.split())

    described = wait_until(lambda: (text := told()) and "Back-off pulling image" in text and text, 30,
                           interval=0.5, what="the BackOff event")
    # ErrImagePull was the status between the attempt and the back-off: its Failed event says so
    assert "Warning Failed " in described and f'Failed to pull image "{missing}": ' in described
    assert "connection refused" in described, described
    assert f'Back-off pulling image "{missing}"' in described and "Normal BackOff" in described
    row = berth(cluster, "get", "pods", "unpullable").stdout.splitlines()[1].split()
    assert row[:2] == ["unpullable", "0/1"] and row[3] == "0", row
    assert row[2] in ("ErrImagePull", "ImagePullBackOff"), row  # the next attempt may be under way
    host = get(cluster, "unpullable")["spec"]["nodeName"]
    assert container_name(created, "main") not in names_on(lab, host)  # nothing made, nothing to restart
    fixed = berth(cluster, "patch", "pod", "unpullable", "--type", "json",
                  "-p", f'[{{"op": "replace", "path": "/spec/containers/0/image", "value": "{IMAGE}"}}]')
    assert fixed.returncode == 0, fixed.stderr
    wait_until(lambda: phase(cluster, "unpullable") == "Running", 30, interval=0.3,
               what="unpullable Running with an image its host has")
    entry = get(cluster, "unpullable")["status"]["containerStatuses"][0]
    assert entry["restartCount"] == 0 and "running" in entry["state"] and entry["image"] == IMAGE
    cluster.session().delete(cluster.url(0, f"{PODS}/unpullable?gracePeriodSeconds=0"), timeout=10)
    wait_until(lambda: not exists(cluster, "unpullable"), 60, interval=0.3, what="unpullable gone")


def test_logs_show_the_current_run_and_previous_the_one_before(lab: Lab, cluster: MasterCluster) -> None:
    """A restart reuses the container, whose log holds every run: logs cut it as kubectl shows it."""
    script = ('n=$(cat /tmp/runs 2>/dev/null || echo 0); n=$((n + 1)); echo $n > /tmp/runs; '
              'echo "run $n"; [ $n -ge 2 ] && exec sleep 600; exit 1')
    create(cluster, command_pod("twice", script))

    def restarted() -> bool:
        entry = ((get(cluster, "twice").get("status") or {}).get("containerStatuses") or [{}])[0]
        return entry.get("restartCount") == 1 and bool((entry.get("state") or {}).get("running", {})
                                                        .get("startedAt"))

    wait_until(restarted, 60, interval=0.3, what="twice running again after its first run failed")
    current = wait_until(lambda: (out := berth(cluster, "logs", "twice").stdout) and out, 30, interval=0.3,
                         what="the second run's output")
    assert current == "run 2\n"
    assert berth(cluster, "logs", "twice", "--previous").stdout == "run 1\n"
    assert berth(cluster, "logs", "twice", "-p", "--since", "1h").returncode != 0
    create(cluster, command_pod("once", "echo only; exec sleep 600"))
    wait_until(lambda: phase(cluster, "once") == "Running", 60, interval=0.3, what="once Running")
    none = berth(cluster, "logs", "once", "--previous")
    assert none.returncode != 0
    assert 'previous terminated container "main" in pod "once" not found' in none.stderr


def _read_until(fd: int, wanted: bytes, timeout: float = 30.0) -> bytes:
    """What the terminal shows until `wanted` appears; bounded in time."""
    seen = b""
    deadline = time.monotonic() + timeout
    while wanted not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"{wanted!r} not shown in {timeout:.0f}s; the terminal showed {seen!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                seen += os.read(fd, 4096)
            except OSError:  # the other side closed
                raise TimeoutError(f"the terminal closed before {wanted!r}; it showed {seen!r}") from None
    return seen


def _set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def test_exec_with_a_terminal_through_a_pty(lab: Lab, cluster: MasterCluster) -> None:
    create(cluster, command_pod("shell", "exec sleep 600"))
    wait_until(lambda: phase(cluster, "shell") == "Running", 60, interval=0.3, what="shell Running")
    script = ('tty; stty size; while read line; do [ "$line" = quit ] && exit 3; '
              'echo "got $line"; stty size; echo "end $line"; done')
    terminal, far_end = os.openpty()
    _set_size(far_end, 30, 100)
    shell = berth_process(cluster, "exec", "-it", "shell", "--", "sh", "-c", script, stdin=far_end,
                          stdout=far_end, stderr=far_end, start_new_session=True)
    os.close(far_end)
    try:
        shown = _read_until(terminal, b"30 100")
        assert b"/dev/pts/" in shown  # a real terminal, of the local terminal's size
        os.write(terminal, b"hello\r")
        _read_until(terminal, b"got hello")  # typed keys reach the command
        _set_size(terminal, 40, 120)
        shell.send_signal(signal.SIGWINCH)
        for attempt in range(20):  # podman passes the new size on by itself: ask until it shows
            os.write(terminal, f"size{attempt}\r".encode())
            shown = _read_until(terminal, f"end size{attempt}".encode())
            if b"40 120" in shown:
                break
        assert b"40 120" in shown  # the resize reached the container's terminal
        os.write(terminal, b"quit\r")
        assert shell.wait(timeout=30) == 3  # the command's status is berth's
    finally:
        shell.kill()
        shell.wait(timeout=10)
        os.close(terminal)
    refused = berth(cluster, "exec", "-it", "shell", "--", "sh", role="viewer")
    assert refused.returncode != 0 and "may not create Pod shell (exec)" in refused.stderr


def test_cp_both_ways_with_binary_data_and_paths_no_shell_reads(lab: Lab, cluster: MasterCluster,
                                                               tmp_path: Path) -> None:
    create(cluster, command_pod("files", "exec sleep 600"))
    wait_until(lambda: phase(cluster, "files") == "Running", 60, interval=0.3, what="files Running")
    payload = bytes(range(256)) * 1000
    (tmp_path / "data.bin").write_bytes(payload)
    odd = "/tmp/a b;touch pwned;$(touch pwned)"
    up = berth(cluster, "cp", str(tmp_path / "data.bin"), f"files:{odd}")
    assert up.returncode == 0, up.stderr
    listed = berth(cluster, "exec", "files", "--", "ls", "/tmp")
    assert "a b;touch pwned;$(touch pwned)" in listed.stdout.splitlines()
    gone = berth(cluster, "exec", "files", "--", "ls", "/pwned", "/tmp/pwned")
    assert gone.returncode != 0 and gone.stdout == ""  # nothing ran the path as a command
    down = berth(cluster, "cp", f"files:{odd}", str(tmp_path / "back.bin"))
    assert down.returncode == 0, down.stderr
    assert (tmp_path / "back.bin").read_bytes() == payload
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "leaf.txt").write_text("leaf\n")
    assert berth(cluster, "cp", str(tree), "files:/tmp/").returncode == 0  # into /tmp, as /tmp/tree
    assert berth(cluster, "exec", "files", "--", "cat", "/tmp/tree/sub/leaf.txt").stdout == "leaf\n"
    assert berth(cluster, "cp", "files:/tmp/tree", str(tmp_path / "copy")).returncode == 0
    assert (tmp_path / "copy" / "sub" / "leaf.txt").read_text() == "leaf\n"
    missing = berth(cluster, "cp", "files:/nowhere/at/all", str(tmp_path / "x"))
    assert missing.returncode != 0 and "in the container" in missing.stderr and "nowhere" in missing.stderr


def _http_get(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as conn:
        conn.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer


def test_port_forward_moves_bytes_to_a_port_only_the_pod_sees(lab: Lab, cluster: MasterCluster) -> None:
    # httpd listens on the pod's 127.0.0.1 only: reached as the pod's processes reach it, as kubectl does
    page = "".join(f"{n}\n" for n in range(1, 40_001))  # 229 kB
    web = command_pod("forwarded", "seq 1 40000 > /tmp/index.html && exec httpd -f -p 127.0.0.1:8080 -h /tmp")
    create(cluster, web)
    wait_until(lambda: phase(cluster, "forwarded") == "Running", 60, interval=0.3, what="forwarded Running")
    refused = berth(cluster, "port-forward", "pod/forwarded", "8080", "--address", "0.0.0.0")
    assert refused.returncode != 0 and "loopback only" in refused.stderr
    forward = berth_process(cluster, "port-forward", "pod/forwarded", ":8080", stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert forward.stdout is not None
        line = forward.stdout.readline()  # bounded: the process prints it at once or fails and ends
        assert line.startswith("Forwarding from 127.0.0.1:") and line.rstrip().endswith("-> 8080"), line
        port = int(line.split(":")[1].split()[0])
        answer = wait_until(lambda: (a := _http_get(port)) and page.encode() in a and a, 30, interval=0.5,
                            what="the page through the forward")
        assert answer.startswith(b"HTTP/1.") and b" 200 " in answer.split(b"\r\n")[0]
        assert page.encode() in _http_get(port)  # a second connection, its own session
    finally:
        forward.send_signal(signal.SIGINT)
        forward.wait(timeout=15)
        assert forward.stderr is not None
        print("port-forward's stderr:", forward.stderr.read())
    viewer = berth(cluster, "port-forward", "pod/forwarded", "8080", role="viewer")
    assert viewer.returncode != 0 and "may not create Pod forwarded (portforward)" in viewer.stderr


# --- volumes (issue 16) ----------------------------------------------------------------------

def exec_in(lab: Lab, cluster: MasterCluster, pod_name: str, container: str, *argv: str) -> str:
    made = get(cluster, pod_name)
    done = on_host(lab, made["spec"]["nodeName"], "podman", "exec", container_name(made, container), *argv)
    return done.stdout if done.returncode == 0 else f"<exit {done.returncode}: {done.stderr.strip()}>"


def mounts_under(lab: Lab, host: str, uid: str) -> list[str]:
    table = on_host(lab, host, "cat", "/proc/self/mountinfo").stdout.splitlines()
    return [line.split()[4] for line in table if f"/var/lib/berth/pods/{uid}" in line.split()[4]]


def pod_dir_on(lab: Lab, host: str, uid: str) -> Path:
    return lab.host_dir(host) / "var-lib-berth" / "pods" / uid  # the host's /var/lib/berth, seen from outside


def test_containers_share_an_empty_dir_and_a_memory_one_is_a_sized_tmpfs(lab: Lab,
                                                                        cluster: MasterCluster) -> None:
    shared = command_pod("sharing", "echo from-writer > /shared/note; exec sleep 600")
    shared["spec"]["volumes"] = [{"name": "shared", "emptyDir": {}},
                                 {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "2Mi"}}]
    shared["spec"]["containers"][0]["volumeMounts"] = [{"name": "shared", "mountPath": "/shared"},
                                                       {"name": "mem", "mountPath": "/mem"}]
    shared["spec"]["containers"].append({
        "name": "reader", "image": IMAGE, "command": ["sh", "-c", "exec sleep 600"],
        "volumeMounts": [{"name": "shared", "mountPath": "/seen", "readOnly": True},
                         {"name": "shared", "mountPath": "/sub", "subPath": "sub/dir"}]})
    created = create(cluster, shared)
    uid = created["metadata"]["uid"]
    wait_until(lambda: phase(cluster, "sharing") == "Running", 60, interval=0.3, what="sharing Running")
    wait_until(lambda: exec_in(lab, cluster, "sharing", "reader", "cat", "/seen/note") == "from-writer\n", 30,
               interval=0.3, what="the reader sees the writer's file")
    assert "<exit" in exec_in(lab, cluster, "sharing", "reader", "touch", "/seen/mine")  # mounted read-only
    assert exec_in(lab, cluster, "sharing", "reader", "sh", "-c", "echo x > /sub/y && echo ok") == "ok\n"
    assert exec_in(lab, cluster, "sharing", "main", "cat", "/shared/sub/dir/y") == "x\n"  # inside the volume
    # medium Memory: a tmpfs of the asked size, which refuses more
    host = get(cluster, "sharing")["spec"]["nodeName"]
    tmpfs = [line for line in on_host(lab, host, "cat", "/proc/mounts").stdout.splitlines()
             if f"{uid}/volumes/mem " in line]
    assert tmpfs and tmpfs[0].split()[2] == "tmpfs" and "size=2048k" in tmpfs[0], tmpfs
    too_big = exec_in(lab, cluster, "sharing", "main", "dd", "if=/dev/zero", "of=/mem/big", "bs=1M",
                      "count=4")
    assert "<exit" in too_big and "No space left" in too_big
    # the pod's volumes and mounts go with it
    assert pod_dir_on(lab, host, uid).is_dir()
    assert cluster.session().delete(cluster.url(0, f"{PODS}/sharing?gracePeriodSeconds=0"),
                                    timeout=10).status_code == 200
    wait_until(lambda: mounts_under(lab, host, uid) == [] and not pod_dir_on(lab, host, uid).exists(), 60,
               interval=0.3, what="the pod's mounts and directory removed from its host")
    assert not exists(cluster, "sharing")


def test_a_config_map_file_follows_an_update_of_the_config_map(lab: Lab, cluster: MasterCluster) -> None:
    maps = "/api/v1/namespaces/default/configmaps"
    config = {"kind": "ConfigMap", "metadata": {"name": "greeting"}, "data": {"text": "hello", "other": "o"}}
    assert cluster.session().post(cluster.url(0, maps), json=config, timeout=10).status_code == 201
    reader = command_pod("config-reader", "exec sleep 600")
    reader["spec"]["volumes"] = [
        {"name": "all", "configMap": {"name": "greeting"}},
        {"name": "some", "configMap": {"name": "greeting",
                                       "items": [{"key": "text", "path": "nested/said"}]}}]
    reader["spec"]["containers"][0]["volumeMounts"] = [{"name": "all", "mountPath": "/etc/config"},
                                                        {"name": "some", "mountPath": "/etc/some"}]
    create(cluster, reader)
    wait_until(lambda: phase(cluster, "config-reader") == "Running", 60, interval=0.3, what="reader Running")
    assert exec_in(lab, cluster, "config-reader", "main", "cat", "/etc/config/text") == "hello"
    assert exec_in(lab, cluster, "config-reader", "main", "cat", "/etc/some/nested/said") == "hello"
    assert "other" not in exec_in(lab, cluster, "config-reader", "main", "ls", "/etc/some")
    patched = cluster.session().patch(cluster.url(0, f"{maps}/greeting"), json={"data": {"text": "goodbye",
                                                                                        "other": None}},
                                      headers={"Content-Type": "application/merge-patch+json"}, timeout=10)
    assert patched.status_code == 200, patched.text
    wait_until(lambda: exec_in(lab, cluster, "config-reader", "main", "cat", "/etc/config/text") == "goodbye",
               60, interval=0.5, what="the file updated in place")
    assert "<exit" in exec_in(lab, cluster, "config-reader", "main", "cat", "/etc/config/other")  # a key gone
    assert exec_in(lab, cluster, "config-reader", "main", "cat", "/etc/some/nested/said") == "goodbye"
    assert get(cluster, "config-reader")["status"]["containerStatuses"][0]["restartCount"] == 0  # in place


def test_a_secret_volume_is_a_0400_file_on_a_tmpfs_and_never_on_a_command_line(
        lab: Lab, cluster: MasterCluster) -> None:
    value = f"volume-secret-{os.getpid()}"
    secret = {"kind": "Secret", "metadata": {"name": "filed"}, "stringData": {"token": value}}
    assert cluster.session().post(cluster.url(0, "/api/v1/namespaces/default/secrets"), json=secret,
                                  timeout=10).status_code == 201
    holder = command_pod("secret-holder", "exec sleep 600")
    holder["spec"]["volumes"] = [{"name": "creds", "secret": {"secretName": "filed", "defaultMode": "0400"}},
                                 {"name": "missing", "secret": {"secretName": "not-there", "optional": True}}]
    holder["spec"]["containers"][0]["volumeMounts"] = [{"name": "creds", "mountPath": "/var/run/creds"},
                                                        {"name": "missing", "mountPath": "/var/run/none"}]
    created = create(cluster, holder)
    wait_until(lambda: phase(cluster, "secret-holder") == "Running", 60, interval=0.3, what="holder Running")
    assert exec_in(lab, cluster, "secret-holder", "main", "cat", "/var/run/creds/token") == value
    mode = exec_in(lab, cluster, "secret-holder", "main", "stat", "-L", "-c", "%a", "/var/run/creds/token")
    assert mode == "400\n"
    host, uid = get(cluster, "secret-holder")["spec"]["nodeName"], created["metadata"]["uid"]
    on_tmpfs = [line for line in on_host(lab, host, "cat", "/proc/mounts").stdout.splitlines()
                if f"{uid}/volumes/creds " in line]
    assert on_tmpfs and on_tmpfs[0].split()[2] == "tmpfs"  # never on the host's disk ...
    disk = subprocess.run(["grep", "-r", "-l", value, str(lab.host_dir(host) / "var-lib-berth")],
                          capture_output=True, text=True, check=False, timeout=30)  # from outside: no tmpfs
    assert disk.returncode == 1 and disk.stdout == ""
    made_with = on_host(lab, host, "podman", "inspect", "--format", "{{.Config.CreateCommand}}",
                        container_name(created, "main")).stdout
    assert value not in made_with and value not in on_host(lab, host, "ps", "-eo", "args").stdout
    assert value not in cluster.logs()


def test_a_missing_config_map_keeps_the_pod_waiting_with_failed_mount(lab: Lab,
                                                                      cluster: MasterCluster) -> None:
    waiting = command_pod("mount-waiter", "exec sleep 600")
    waiting["spec"]["volumes"] = [{"name": "cfg", "configMap": {"name": "comes-later"}}]
    waiting["spec"]["containers"][0]["volumeMounts"] = [{"name": "cfg", "mountPath": "/cfg"}]
    create(cluster, waiting)

    def why() -> str:
        state = ((get(cluster, "mount-waiter").get("status") or {}).get("containerStatuses") or [{}])[0]
        return str((state.get("state") or {}).get("waiting") or "")

    wait_until(lambda: "comes-later" in why(), 60, interval=0.3, what="the pod waiting on its ConfigMap")
    assert "ContainerCreating" in why() and phase(cluster, "mount-waiter") == "Pending"
    assert "FailedMount" in berth(cluster, "describe", "pod", "mount-waiter").stdout
    later = {"kind": "ConfigMap", "metadata": {"name": "comes-later"}, "data": {"k": "v"}}
    assert cluster.session().post(cluster.url(0, "/api/v1/namespaces/default/configmaps"), json=later,
                                  timeout=10).status_code == 201
    wait_until(lambda: phase(cluster, "mount-waiter") == "Running", 60, interval=0.3,
               what="running once the ConfigMap exists")
    assert exec_in(lab, cluster, "mount-waiter", "main", "cat", "/cfg/k") == "v"


def test_a_host_path_volume_mounts_the_hosts_own_directory(lab: Lab, cluster: MasterCluster) -> None:
    user = command_pod("host-path-user", "echo written-by-pod > /host/data/out; exec sleep 600")
    user["spec"]["volumes"] = [{"name": "host", "hostPath": {"path": "/var/lib/berth/test-host-path",
                                                             "type": "DirectoryOrCreate"}}]
    user["spec"]["containers"][0]["volumeMounts"] = [{"name": "host", "mountPath": "/host/data"}]
    created = create(cluster, user)  # the harness's token is an admin's: hostPath is allowed
    wait_until(lambda: phase(cluster, "host-path-user") == "Running", 60, interval=0.3, what="Running")
    host, uid = get(cluster, "host-path-user")["spec"]["nodeName"], created["metadata"]["uid"]
    written = lab.host_dir(host) / "var-lib-berth" / "test-host-path" / "out"
    wait_until(written.exists, 30, interval=0.3, what="the pod's file in the host's directory")
    assert written.read_text() == "written-by-pod\n"
    assert cluster.session().delete(cluster.url(0, f"{PODS}/host-path-user?gracePeriodSeconds=0"),
                                    timeout=10).status_code == 200
    wait_until(lambda: not pod_dir_on(lab, host, uid).exists(), 60, interval=0.3,
               what="the pod's directory removed from its host")
    assert written.exists()  # the host's own files stay


def test_an_nfs_volume_is_mounted_with_the_kernels_client_as_far_as_this_kernel_allows(
        lab: Lab, cluster: MasterCluster) -> None:
    """This machine's kernel has no NFS client (LAB-NOTES): the claim binds to the hand-made nfs
    volume and the host is asked to mount it; the pod waits, FailedMount telling the kernel's answer."""
    session = cluster.session()
    volume = {"kind": "PersistentVolume", "metadata": {"name": "exports"},
              "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany"],
                       "storageClassName": "", "nfs": {"server": lab.address("h2"), "path": "/exports/data"}}}
    made = session.post(cluster.url(0, "/api/v1/persistentvolumes"), json=volume, timeout=10)
    assert made.status_code == 201, made.text
    claim = {"kind": "PersistentVolumeClaim", "metadata": {"name": "exported"},
             "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": "", "volumeName": "exports",
                      "resources": {"requests": {"storage": "1Gi"}}}}
    assert session.post(cluster.url(0, "/api/v1/namespaces/default/persistentvolumeclaims"), json=claim,
                        timeout=10).status_code == 201
    user = command_pod("nfs-user", "exec sleep 600")
    user["spec"]["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": "exported"}}]
    user["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    create(cluster, user)

    def why() -> str:
        state = ((get(cluster, "nfs-user").get("status") or {}).get("containerStatuses") or [{}])[0]
        return str(((state.get("state") or {}).get("waiting") or {}).get("message") or "")

    wait_until(lambda: "nfs" in why(), 60, interval=0.3, what="the host's answer to mounting nfs")
    assert "FailedMount" in why() and "mount" in why(), why()
    assert phase(cluster, "nfs-user") == "Pending"


def test_a_container_runs_as_the_user_asked_with_a_read_only_root_and_few_capabilities(
        lab: Lab, cluster: MasterCluster) -> None:
    """Issue 17, item 4: the securityContext reaches the engine; what none says is Berth's default,
    the engine's capabilities without NET_RAW (bit 13 of the effective set)."""
    locked = command_pod("locked-down", "exec sleep 600")
    locked["spec"]["securityContext"] = {"runAsUser": 1000, "runAsGroup": 1000}
    locked["spec"]["containers"][0]["securityContext"] = {"readOnlyRootFilesystem": True,
                                                          "allowPrivilegeEscalation": False}
    locked["spec"]["volumes"] = [{"name": "scratch", "emptyDir": {}}]
    locked["spec"]["containers"][0]["volumeMounts"] = [{"name": "scratch", "mountPath": "/scratch"}]
    create(cluster, locked)
    create(cluster, command_pod("plain", "exec sleep 600"))
    wait_until(lambda: phase(cluster, "locked-down") == "Running" and phase(cluster, "plain") == "Running",
               60, interval=0.3, what="both Running")
    assert exec_in(lab, cluster, "locked-down", "main", "id", "-u") == "1000\n"
    assert exec_in(lab, cluster, "locked-down", "main", "id", "-g") == "1000\n"
    assert "Read-only file system" in exec_in(lab, cluster, "locked-down", "main", "touch", "/made")
    written = exec_in(lab, cluster, "locked-down", "main", "sh", "-c", "echo ok > /scratch/f; cat /scratch/f")
    assert written == "ok\n"  # its volumes stay writable
    assert "NoNewPrivs:\t1" in exec_in(lab, cluster, "locked-down", "main", "cat", "/proc/self/status")
    status = exec_in(lab, cluster, "plain", "main", "cat", "/proc/1/status")
    effective = int(next(line.split()[1] for line in status.splitlines() if line.startswith("CapEff:")), 16)
    assert effective & (1 << 1) and not effective & (1 << 13)  # root keeps DAC_OVERRIDE, not NET_RAW
