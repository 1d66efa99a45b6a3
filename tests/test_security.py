"""The attacks of issue 9's security review, replayed against real masters.

Each attacker holds one of the cluster's tokens (or none). Every attack must get a clear
4xx, change nothing it may not, and leave the master answering `/healthz` meanwhile
(a generous deadline per probe of health, never a timing assertion).
"""

from __future__ import annotations

import contextlib
import json
import select
import ssl
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack, closing
from typing import Any

import pytest
import requests

from master.peer_auth import peer_key, sign
from master.reports.relay import RELAY_PATH
from tests.harness import TOKENS, MasterCluster, pod, wait_until

PODS = "/api/v1/namespaces/default/pods"
MERGE = {"Content-Type": "application/merge-patch+json"}
YAML = {"Content-Type": "application/yaml"}
HEALTH_DEADLINE = 5.0  # a frozen master misses it; a busy machine does not

BILLION_LAUGHS = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]"
       for prev, name in zip("abcdefgh", "bcdefghi", strict=True)])


def healthy_while(cluster: MasterCluster, attack: Callable[[], requests.Response], repeat: int = 5,
                  index: int = 0) -> list[requests.Response]:
    """Run `attack` `repeat` times in a thread while asking /healthz; every health answer must come."""
    answers: list[requests.Response] = []
    failure: list[BaseException] = []

    def attacker() -> None:
        try:
            for _ in range(repeat):
                answers.append(attack())
        except BaseException as err:  # re-raised below, in the test's thread
            failure.append(err)

    thread = threading.Thread(target=attacker)
    thread.start()
    checks, deadline = 0, time.monotonic() + 120
    anyone = cluster.session(None)
    while (thread.is_alive() or checks == 0) and time.monotonic() < deadline:
        health = anyone.get(cluster.url(index, "/healthz"), timeout=HEALTH_DEADLINE)
        assert health.status_code == 200
        checks += 1
        time.sleep(0.05)
    thread.join(timeout=60)
    assert not failure, failure
    assert len(answers) == repeat
    return answers


def refused(answer: requests.Response, status: int, field: str | None = None) -> None:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["error"] and body["reason"]
    if field is not None:
        assert body["field"] == field, body


# --- 1. an image name that podman would read as options ---------------------------------

def test_an_image_reference_must_start_with_an_alphanumeric(cluster: MasterCluster) -> None:
    attack = pod("escape")
    attack["spec"]["containers"][0].update(
        image="-w/tmp", args=["--privileged", "--pid", "host", "-v", "/:/host", "localhost/busybox:lab",
                              "chroot", "/host", "sh"])
    for role in ("admin", "operator"):
        answer = cluster.session(role).post(cluster.url(0, PODS), json=attack)
        refused(answer, 400, "spec.containers[0].image")
    probe = pod("probe-path")
    probe["spec"]["containers"][0]["livenessProbe"] = {"httpGet": {"port": 80, "path": "/x HTTP/1.1\r\nX: y"}}
    refused(cluster.session().post(cluster.url(0, PODS), json=probe), 400,
            "spec.containers[0].livenessProbe.httpGet.path")


# --- 3 and 5. an agent token against its own Node ------------------------------------------

def test_an_agent_writes_only_its_nodes_status_and_within_its_schema(cluster: MasterCluster) -> None:
    agent = cluster.session("agent")  # token name h1
    node = {"kind": "Node", "metadata": {"name": "h1", "labels": {"node-restriction.berth.io/pci": "yes"}},
            "spec": {"address": "10.250.0.11"}}
    refused(agent.post(cluster.url(0, "/api/v1/nodes"), json=node), 403,
            "metadata.labels.node-restriction.berth.io/pci")
    node["metadata"]["labels"] = {"node-role.berth.io/worker": ""}
    registered = agent.post(cluster.url(0, "/api/v1/nodes"), json=node)
    assert registered.status_code == 201, registered.text
    try:
        url = cluster.url(0, "/api/v1/nodes/h1")
        for patch in ({"spec": {"address": "127.0.0.2"}}, {"metadata": {"labels": {"x": "y"}}},
                      {"spec": {"unschedulable": True}},
                      {"spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}}):
            refused(agent.patch(url, data=json.dumps(patch), headers=MERGE), 403)
        refused(agent.put(url, json={"kind": "Node", "metadata": {"name": "h1"},
                                     "spec": {"address": "127.0.0.2"}}), 403)
        refused(agent.delete(url), 403)
        for garbage, field in (({"conditions": ["x"]}, "status.conditions[0]"),
                               ({"allocatable": {"memory": "1" * 40}}, "status.allocatable.memory"),
                               ({"allocatable": {"cpu": -5}}, "status.allocatable.cpu"),
                               ({"conditions": [{"type": "Ready", "status": "maybe"}]},
                                "status.conditions[0].status"),
                               ({"nodeInfo": {}}, "status.nodeInfo")):
            refused(agent.patch(f"{url}/status", json={"status": garbage}, headers=MERGE), 400, field)
        resources = {"allocatable": {"cpu": "2", "memory": "1Ti"}}
        written = agent.patch(f"{url}/status", json={"status": resources}, headers=MERGE)
        assert written.status_code == 200, written.text
        assert written.json()["status"]["allocatable"] == {"cpu": 2000, "memory": 1 << 40}
        assert cluster.session().get(f"{url}?consistent=1").json()["spec"]["address"] == "10.250.0.11"
    finally:
        cluster.session().delete(cluster.url(0, "/api/v1/nodes/h1"))


def test_status_is_the_systems_to_write(cluster: MasterCluster) -> None:
    admin, operator = cluster.session("admin"), cluster.session("operator")
    made = pod("spoofed")
    made["status"] = {"podIP": "10.0.0.66", "phase": "Running"}
    created = operator.post(cluster.url(0, PODS), json=made)
    assert created.status_code == 201, created.text
    assert "status" not in created.json()  # ignored on a spec write, as Kubernetes does
    url = cluster.url(0, f"{PODS}/spoofed/status")
    refused(operator.put(url, json={"status": {"podIP": "10.0.0.66"}}), 403)
    refused(operator.patch(url, json={"status": {"podIP": "10.0.0.66"}}, headers=MERGE), 403)
    refused(admin.put(url, json={"status": {"podIP": "not-an-ip"}}), 400, "status.podIP")
    refused(admin.put(cluster.url(0, "/api/v1/namespaces/default/services/x/status"),
                      json={"status": {}}), 404, "status")
    assert admin.delete(cluster.url(0, f"{PODS}/spoofed")).status_code == 200


# --- 4. freezing a master before authorization -----------------------------------------------

def test_a_viewer_or_agent_cannot_make_a_master_parse_anything(cluster: MasterCluster) -> None:
    for role in ("viewer", "agent"):
        session = cluster.session(role)
        answers = healthy_while(cluster, lambda s=session: s.post(
            cluster.url(0, "/api/v1/apply"), data=BILLION_LAUGHS, headers=YAML, timeout=30))
        for answer in answers:
            refused(answer, 403)
        refused(session.post(cluster.url(0, PODS), json=pod("x"), timeout=30), 403)


def test_parsing_is_bounded_for_those_who_may_write(cluster: MasterCluster) -> None:
    admin = cluster.session("admin")
    laughs = healthy_while(cluster, lambda: admin.post(cluster.url(0, "/api/v1/apply"), data=BILLION_LAUGHS,
                                                       headers=YAML, timeout=30))
    for answer in laughs:
        refused(answer, 400, "body")
        assert "aliases" in answer.json()["error"]
    huge = pod("huge-quantity")
    huge["spec"]["containers"][0]["resources"]["requests"]["memory"] = "9" * 900_000
    quantities = healthy_while(cluster, lambda: admin.post(cluster.url(0, PODS), json=huge, timeout=30))
    for answer in quantities:
        refused(answer, 400, "spec.containers[0].resources.requests.memory")
    nested = "[" * 100_000 + "]" * 100_000
    for body, headers in ((nested, {"Content-Type": "application/json"}), (nested, YAML),
                          ('{"a": ' + "9" * 5000 + "}", {"Content-Type": "application/json"}),
                          ('{"a": NaN}', {"Content-Type": "application/json"})):
        answer = admin.post(cluster.url(0, "/api/v1/apply"), data=body, headers=headers, timeout=30)
        refused(answer, 400, "body")
    deep_patch = json.dumps({"metadata": {"labels": {}}, "spec": json.loads("[" * 50 + "]" * 50)})
    refused(admin.patch(cluster.url(0, f"{PODS}/none"), data=deep_patch, headers=MERGE), 400, "body")


# --- 8. selectors ------------------------------------------------------------------------------

def test_selectors_are_bounded(cluster: MasterCluster) -> None:
    viewer = cluster.session("viewer")
    long = ",".join(f"k{i}=v{i}" for i in range(15_000))  # about 200 KB, as the review sent
    refused(viewer.get(cluster.url(0, "/api/v1/pods"), params={"labelSelector": long}), 400, "labelSelector")
    many = ",".join(f"k{i}" for i in range(33))
    refused(viewer.get(cluster.url(0, "/api/v1/pods"), params={"labelSelector": many}), 400, "labelSelector")
    wide = "k in (" + ",".join(f"v{i}" for i in range(65)) + ")"
    refused(viewer.get(cluster.url(0, "/api/v1/pods"), params={"labelSelector": wide}), 400, "labelSelector")
    refused(viewer.get(cluster.url(0, "/api/v1/pods"), params={"fieldSelector": "metadata.name=a," * 40}),
            400, "fieldSelector")
    fine = ",".join(f"k{i}=v{i}" for i in range(32))
    assert viewer.get(cluster.url(0, "/api/v1/pods"), params={"labelSelector": fine}).status_code == 200


# --- 10 and quotas. what one object may hold ------------------------------------------------

def test_quantities_and_objects_are_bounded(cluster: MasterCluster) -> None:
    admin = cluster.session()
    # past the published pattern's digits a 400; within it but past what a host has, a 422
    limits = (("cpu", "9" * 400, 400), ("memory", "9" * 4300, 400), ("cpu", "2000000", 422),
              ("memory", "5Ei", 422))
    for resource, value, status in limits:
        bad = pod("bounded")
        bad["spec"]["containers"][0]["resources"]["limits"] = {resource: value}
        field = f"spec.containers[0].resources.limits.{resource}"
        refused(admin.post(cluster.url(0, PODS), json=bad), status, field)
    slow = pod("slow-probe")
    for delay, field in ((10**12, "spec.containers[0].livenessProbe.initialDelaySeconds"),
                         (10**300, "body")):  # past 32 characters no number is even parsed
        slow["spec"]["containers"][0]["livenessProbe"] = {"exec": {"command": ["true"]},
                                                          "initialDelaySeconds": delay}
        refused(admin.post(cluster.url(0, PODS), json=slow), 400, field)
    beat = cluster.session("agent").post(cluster.url(0, "/api/v1/nodes/h1/heartbeat"),
                                         data="cpuPercent: 1\nmemoryUsed: 0x" + "f" * 5000,
                                         headers=YAML)  # hexadecimal: a string, not a number
    refused(beat, 400, "memoryUsed")
    config = {"kind": "ConfigMap", "metadata": {"name": "big"}, "data": {"blob": "x" * (600 << 10)}}
    refused(admin.post(cluster.url(0, "/api/v1/namespaces/default/configmaps"), json=config), 413, "body")


# --- 6. bodies and connections before authentication ------------------------------------------

def _raw_request(cluster: MasterCluster, index: int, head: str, source: str = "127.0.0.1") -> bytes:
    """Send only the head of a request (no body) to master `index` and read what comes back before the
    body."""
    with closing(cluster.raw_socket(index, source)) as sock:
        sock.sendall(head.encode())
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer


def test_a_body_is_refused_before_it_is_read(cluster: MasterCluster) -> None:
    upload = "POST /api/v1/namespaces/default/pods HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    huge = "Content-Length: 200000000\r\n\r\n"
    for head, status in ((upload + huge, b"401"),
                         (upload + "Authorization: Bearer wrong\r\n" + huge, b"401"),
                         (upload + f"Authorization: Bearer {TOKENS['viewer'][1]}\r\n"
                          "Content-Length: 200000000\r\n\r\n", b"413"),
                         (upload + "Transfer-Encoding: chunked\r\n\r\n", b"401"),
                         (upload + "Expect: 100-continue\r\n" + huge, b"401")):
        answer = _raw_request(cluster, 0, head)  # the body is never sent: the answer comes without it
        status_line, _, rest = answer.partition(b"\r\n")
        assert status in status_line, answer[:300]
        body = json.loads(rest.partition(b"\r\n\r\n")[2])
        assert body["reason"] in ("Unauthorized", "RequestEntityTooLarge") and body["field"], body


@pytest.mark.parametrize("own_cluster", [{"api_connections_per_address": 24, "stream_limit": 6,
                                          "stream_limit_per_token": 4}], indirect=True)
def test_one_address_and_one_token_cannot_take_a_master(own_cluster: MasterCluster) -> None:
    cluster = own_cluster
    with ExitStack() as stack:
        # half-sent requests from one address: those past its share are closed at once
        held: list[ssl.SSLSocket] = []
        refused_at_accept = 0  # closed before the handshake could end
        for _ in range(40):
            try:  # TLS: counted at accept, before any handshake
                sock = stack.enter_context(closing(cluster.raw_socket(0)))
            except OSError:
                refused_at_accept += 1
                continue
            sock.sendall(b"POST /api/v1/apply HTTP/1.1\r\nHost: x\r\nContent-Le")
            sock.setblocking(False)
            held.append(sock)

        closed: set[ssl.SSLSocket] = set()
        deadline = time.monotonic() + 15
        while refused_at_accept + len(closed) < 40 - 24 and time.monotonic() < deadline:
            ready, _, _ = select.select([s for s in held if s not in closed], [], [], 0.5)
            for sock in ready:
                try:
                    if sock.recv(1) == b"":
                        closed.add(sock)
                except ssl.SSLWantReadError:
                    pass  # TLS's own records (session tickets), no data and no close
                except OSError:
                    closed.add(sock)
        time.sleep(0.5)  # none of the share is closed a little later either
        for sock in held:
            with contextlib.suppress(ssl.SSLWantReadError):
                if sock not in closed and sock.recv(1) == b"":
                    closed.add(sock)
        # the address's share stays open, the rest is closed at once
        assert refused_at_accept + len(closed) == 40 - 24
        # another address is served meanwhile
        answer = _raw_request(cluster, 0, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", source="127.0.0.2")
        assert b"200" in answer.partition(b"\r\n")[0]

    anyone = cluster.session(None)
    wait_until(lambda: anyone.get(cluster.url(0, "/healthz"), timeout=HEALTH_DEADLINE).ok, 15,
               what="the address's connections given back once closed")
    # streams: a viewer gets its share of watch slots, then 429; the others are still served
    viewer, operator = cluster.session("viewer"), cluster.session("operator")
    watch = cluster.url(0, "/api/v1/watch?kind=Pod&timeoutSeconds=60")
    with ExitStack() as stack:
        opened = [stack.enter_context(viewer.get(watch, stream=True, timeout=10)) for _ in range(4)]
        assert all(r.status_code == 200 for r in opened)
        refused(viewer.get(watch, stream=True, timeout=10), 429)
        more = [stack.enter_context(operator.get(watch, stream=True, timeout=10)) for _ in range(2)]
        assert all(r.status_code == 200 for r in more)
        refused(cluster.session("admin").get(watch, stream=True, timeout=10), 429)  # the master's share
        assert anyone.get(cluster.url(0, "/healthz"), timeout=HEALTH_DEADLINE).status_code == 200
        listed = operator.get(cluster.url(0, PODS), timeout=HEALTH_DEADLINE)
        assert listed.status_code == 200
    # closed streams give their slots back
    short = cluster.url(0, "/api/v1/watch?kind=Pod&timeoutSeconds=1")
    wait_until(lambda: viewer.get(short, timeout=10).status_code == 200, 15, what="a slot free again")


# --- 9. the heartbeat relay's signatures --------------------------------------------------------

def test_a_relayed_batch_is_good_once_and_only_now(cluster: MasterCluster) -> None:
    leader = cluster.leader_index()
    key = peer_key((cluster.root / "raft-password").read_text().strip())
    body = json.dumps({"heartbeats": []}).encode()

    def send(authorization: str) -> requests.Response:
        return cluster.session(None).post(cluster.url(leader, RELAY_PATH), data=body, timeout=10, headers={
            "Authorization": authorization, "Content-Type": "application/json"})

    to = cluster.masters[leader].spec.raft_address
    header = sign(key, body, time.time(), to)
    assert send(header).status_code == 200
    for _ in range(3):
        refused(send(header), 401, "Authorization")  # the same batch again: a replay
    refused(send(sign(key, body, time.time() + 29, to)), 401, "Authorization")  # dated in the future
    refused(send(sign(key, body, time.time() - 29, to)), 401, "Authorization")
    refused(send(header.replace(header[-8:], "é" * 8)), 401, "Authorization")  # not ASCII
    # a forged signature is refused before a (large) body is read
    forged = f"BerthPeer {time.time():.3f}:{'0' * 32}:{'0' * 64}:{'0' * 64}"
    answer = _raw_request(cluster, leader, f"POST {RELAY_PATH} HTTP/1.1\r\nHost: x\r\n"
                          f"Authorization: {forged}\r\nContent-Length: 900000\r\n\r\n")
    assert b"401" in answer.partition(b"\r\n")[0]


# --- low: probe verdicts from an agent count only for its own node's pods ----------------------

def test_an_agent_cannot_report_on_another_nodes_pods(cluster: MasterCluster) -> None:
    admin, agent = cluster.session(), cluster.session("agent")
    for name in ("h1", "h2"):
        node = {"kind": "Node", "metadata": {"name": name}, "spec": {"address": f"10.250.0.1{name[1]}"}}
        assert admin.post(cluster.url(0, "/api/v1/nodes"), json=node).status_code == 201
    theirs = pod("theirs")
    theirs["spec"]["nodeName"] = "h2"
    uid = admin.post(cluster.url(0, PODS), json=theirs).json()["metadata"]["uid"]
    try:
        leader = cluster.leader_index()
        report = {"results": [{"podUID": uid, "container": "main", "probe": "liveness", "healthy": False,
                               "startedAt": "1", "message": "forged"}]}

        def answered() -> dict[str, Any]:
            return agent.post(cluster.url(leader, "/api/v1/nodes/h1/probes"), json=report, timeout=10).json()

        assert wait_until(lambda: answered().get("ignored") == 1, 15, what="the report seen") and \
            answered()["recorded"] == 0
    finally:
        admin.delete(cluster.url(0, f"{PODS}/theirs?gracePeriodSeconds=0"))
        for name in ("h1", "h2"):
            admin.delete(cluster.url(0, f"/api/v1/nodes/{name}"))
