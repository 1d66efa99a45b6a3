"""Followers relay heartbeats to the leader in signed batches; forged batches are refused."""

from __future__ import annotations

import json
import time

import requests

from master.autoscaling.metrics import ContainerUsage, PodSample
from master.objects.conditions import condition, ready_condition
from master.peer_auth import MAX_SKEW_SECONDS, SeenNonces, peer_key, sign, verify, verify_head
from master.reports.books import ReportBooks
from master.reports.heartbeats import HeartbeatBook
from master.reports.probes import Verdict
from master.reports.relay import RELAY_PATH, Pending, ReportRelay, batch_body
from master.runtime.attention import Attention
from tests.harness import TOKENS, MasterCluster, berth, pod, wait_until

KEY = peer_key("a raft password")
TO = "10.0.0.1:7201"  # the Raft address of the master a batch is sent to


def test_a_signature_covers_key_body_and_time() -> None:
    header = sign(KEY, b"{}", now=1000.0, to=TO)
    assert verify(KEY, header, b"{}", TO, now=1000.0 + MAX_SKEW_SECONDS - 1)
    assert verify_head(KEY, header, TO, len(b"{}"), now=1000.0)  # what the door checks, before the body
    assert not verify_head(KEY, header, TO, 10**8, now=1000.0)  # signed for another length
    assert not verify(peer_key("another password"), header, b"{}", TO, now=1000.0)
    assert not verify(KEY, header, b'{"heartbeats":[]}', TO, now=1000.0)
    assert not verify(KEY, header, b"{}", "10.0.0.2:7201", now=1000.0)  # signed for another master
    assert not verify_head(KEY, header, "10.0.0.2:7201", 2, now=1000.0)
    assert not verify(KEY, header, b"{}", TO, now=1000.0 + MAX_SKEW_SECONDS + 1)  # an old capture
    for forged in (None, "", "Bearer x", "BerthPeer ", "BerthPeer nan:00", "BerthPeer 1000.000",
                   header.replace("BerthPeer", "berthpeer")):
        assert not verify(KEY, forged, b"{}", TO, now=1000.0), forged
    assert b"a raft password" not in KEY


def test_a_nonce_is_accepted_once_while_its_signature_could_pass() -> None:
    seen = SeenNonces(limit=3)
    assert seen.first_time("a" * 32, now=1000.0) and not seen.first_time("a" * 32, now=1001.0)
    assert seen.first_time("b" * 32, now=1000.0) and seen.first_time("c" * 32, now=1000.0)
    assert not seen.first_time("d" * 32, now=1000.0)  # full of live nonces: refused, never forgotten
    assert seen.first_time("d" * 32, now=1000.0 + 2 * MAX_SKEW_SECONDS + 1)  # the others expired
    header = sign(KEY, b"{}", now=1000.0, to=TO, nonce="e" * 32)
    assert verify(KEY, header, b"{}", TO, now=1000.0) == "e" * 32
    assert verify(KEY, header.replace("e" * 32, "f" * 32), b"{}", TO, now=1000.0) is None  # signed
    assert verify(KEY, header[:-2] + "é1", b"{}", TO, now=1000.0) is None  # not ASCII: refused, no error


def test_the_book_keeps_the_newest_heartbeat() -> None:
    book = HeartbeatBook()
    book.record("a", {"cpuPercent": 2.0}, at=10.0)
    book.record("a", {"cpuPercent": 1.0}, at=9.0)  # a relayed beat older than a direct one
    assert book.usage("a") == {"cpuPercent": 2.0}
    pending = Pending(heartbeats={"a": (9.5, {"cpuPercent": 1.0, "memoryUsed": 5})},
                      probes={"a": (9.0, [("u1", "main", "liveness", Verdict(False, "100", "exit 1"))])},
                      runtime_events={"b": 9.9},
                      pod_metrics={"a": (9.8, [PodSample("u1", 1e9, 5.0,
                                                         {"main": ContainerUsage(250, 1 << 20)})])})
    assert json.loads(batch_body(pending, now=10.0)) == {
        "heartbeats": [{"node": "a", "ageSeconds": 0.5, "cpuPercent": 1.0, "memoryUsed": 5}],
        "probes": [{"node": "a", "results": [{"podUID": "u1", "container": "main", "probe": "liveness",
                                              "healthy": False, "startedAt": "100", "message": "exit 1"}]}],
        "runtimeEvents": ["b"],
        "podMetrics": [{"node": "a", "pods": [{"uid": "u1", "timestamp": 1e9, "window": 5.0, "containers": {
            "main": {"cpuMillicores": 250, "memoryBytes": 1 << 20}}, "responseTimes": {}, "custom": {}}]}]}
    many = Pending(heartbeats={f"n{i}": (1.0, {}) for i in range(7000)}, runtime_events={"b": 1.0})
    assert [len(c.heartbeats) + len(c.runtime_events) for c in many.chunks()] == [5000, 2001]


class FollowerStore:
    """The questions the relay asks its store."""

    def __init__(self) -> None:
        self.leading = False
        self.leader_name: str | None = "m1"

    def is_leader(self) -> bool:
        return self.leading

    def leader(self) -> str | None:
        return self.leader_name

    def read(self, reader):  # type: ignore[no-untyped-def] - the store's shape: pods bound to a node
        class State:
            def select(self, kind: str, node: str) -> list[dict]:
                return [{"metadata": {"uid": "u1"}}] if node == "c" else []
        return reader(State()), 0


def test_a_relay_that_cannot_reach_the_leader_stops_accepting_until_it_can() -> None:
    store = FollowerStore()
    books = ReportBooks(Attention(), store)  # type: ignore[arg-type] - a fake
    relay = ReportRelay(store, books, {"m1": "http://leader"}, KEY)  # type: ignore[arg-type]
    sent: list[dict] = []
    reachable = [False]

    def send(body: bytes) -> bool:
        sent.append(json.loads(body))
        return reachable[0]

    relay._send = send  # type: ignore[method-assign]
    assert relay.accepting()
    relay.heartbeat("a", {"cpuPercent": 1.0, "memoryUsed": 1})
    relay.flush()
    assert not relay.accepting() and [b["node"] for b in sent[-1]["heartbeats"]] == ["a"]
    relay.heartbeat("b", {"cpuPercent": 2.0, "memoryUsed": 2})
    relay.flush()  # what failed is sent again with what came since
    assert sorted(b["node"] for b in sent[-1]["heartbeats"]) == ["a", "b"]
    reachable[0] = True
    relay.flush()
    assert relay.accepting()
    relay.flush()  # nothing pending: nothing sent
    assert len(sent) == 3
    reachable[0] = False
    relay.heartbeat("a", {"cpuPercent": 1.0, "memoryUsed": 1})
    relay.flush()
    reachable[0] = True
    relay._pending = Pending()  # its agents went elsewhere: an empty batch tells it the leader hears again
    relay.flush()
    assert relay.accepting() and sent[-1] == {"heartbeats": [], "probes": [], "runtimeEvents": [],
                                                     "podMetrics": []}
    store.leader_name = None
    assert not relay.accepting()
    store.leading = True  # leadership came here: what is pending goes into the local books
    relay.heartbeat("c", {"cpuPercent": 3.0, "memoryUsed": 3})
    relay.probe_results("c", [("u1", "main", "readiness", Verdict(True, "100"))])
    books.attention.take_due(["c"], 0.0)  # a new leader's first look at every host, done
    relay.runtime_events("c")
    relay.flush()
    assert books.heartbeats.usage("c") == {"cpuPercent": 3.0, "memoryUsed": 3}
    assert books.probes.snapshot() == {("u1", "main", "readiness"): Verdict(True, "100")}
    assert books.attention.take_due(["c"], 0.0) == {"c"}  # the runtime looks at the host next round


def _peer_key(cluster: MasterCluster) -> bytes:
    return peer_key((cluster.root / "raft-password").read_text().strip())


def _relay(cluster: MasterCluster, index: int, body: bytes, authorization: str | None) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    return cluster.session(None).post(cluster.url(index, RELAY_PATH), data=body, headers=headers, timeout=10)


def test_heartbeats_sent_to_a_follower_reach_the_leader_without_raft_writes(cluster: MasterCluster) -> None:
    admin = cluster.session("admin")
    node = {"apiVersion": "berth/v1", "kind": "Node", "metadata": {"name": "h1"},
            "spec": {"address": "10.250.0.11"}}
    assert admin.post(cluster.url(0, "/api/v1/nodes"), json=node, timeout=10).status_code == 201
    try:
        leader = cluster.leader_index()
        follower = (leader + 1) % 3
        agent = cluster.session("agent")
        metrics = cluster.url(follower, "/api/v1/metrics/nodes")
        wait_until(lambda: admin.get(cluster.url(follower, "/api/v1/nodes/h1"), timeout=5).status_code == 200,
                   15, what="h1 applied on the follower")

        def beat(cpu: float, **runtime: object) -> bool:
            answer = agent.post(cluster.url(follower, "/api/v1/nodes/h1/heartbeat"),
                                json={"cpuPercent": cpu, "memoryUsed": 1000, **runtime}, timeout=10)
            assert answer.status_code == 200, answer.text
            return True

        # beating on meanwhile, as an agent does: under load an election may come between a single
        # beat's arrival and the question, and a new leader's memory starts empty (soft state)
        def reported(cpu: float) -> bool:
            return beat(cpu) and admin.get(metrics, timeout=5).json()["items"]["h1"]["cpuPercent"] == cpu

        wait_until(lambda: reported(42.5), 15, interval=0.3, what="the heartbeat in the leader's memory")
        ready = cluster.url(leader, "/api/v1/nodes/h1")
        wait_until(lambda: beat(42.5) and ready_condition(admin.get(ready, timeout=5).json()), 15,
                   interval=0.3, what="h1 Ready")  # an agent's beats go on meanwhile
        revision = cluster.status(leader)["revision"]
        for cpu in (1.0, 2.0, 3.0):  # each relayed to the leader (the positive signal), none a write
            wait_until(lambda cpu=cpu: reported(cpu), 15, interval=0.3, what=f"heartbeat {cpu} relayed")
        assert cluster.status(leader)["revision"] == revision, "a relayed heartbeat was written to Raft"

        def readiness(**runtime: object) -> tuple[str, str, list]:
            beat(4.0, **runtime)
            node = admin.get(ready, timeout=5).json()
            said = condition(node, "Ready") or {}
            return said.get("status"), said.get("message"), node["spec"].get("taints") or []

        failing = {"runtimeReady": False, "runtimeMessage": "podman: exit status 125"}
        _, message, taints = wait_until(lambda: (r := readiness(**failing))[0] == "False" and r, 15,
                                        interval=0.3, what="h1 NotReady by its agent's word, relayed")
        assert message == "container runtime is not ready: podman: exit status 125"
        assert taints == [{"key": "node.berth.io/not-ready", "effect": "NoExecute"}]
        wait_until(lambda: readiness(runtimeReady=True)[0] == "True", 15, interval=0.3,
                   what="h1 Ready once its agent says its engine works")
    finally:
        admin.delete(cluster.url(0, "/api/v1/nodes/h1"), timeout=10)


def test_only_a_master_may_relay_heartbeats(cluster: MasterCluster) -> None:
    leader = cluster.leader_index()
    follower = (leader + 1) % 3
    key = _peer_key(cluster)
    body = json.dumps({"heartbeats": [{"node": "nobody", "ageSeconds": 0.1, "cpuPercent": 1.0,
                                       "memoryUsed": 1}]}).encode()
    to_leader, to_follower = (cluster.masters[i].spec.raft_address for i in (leader, follower))
    for authorization in (None, f"Bearer {TOKENS['admin'][1]}",
                          sign(peer_key("guess"), body, time.time(), to_leader),
                          sign(key, body, time.time() - 3600, to_leader),
                          sign(key, body, time.time(), to_follower)):  # good, but for another master
        answer = _relay(cluster, leader, body, authorization)
        assert answer.status_code == 401 and answer.json()["field"] == "Authorization", answer.text
    answer = _relay(cluster, follower, body, sign(key, body, time.time(), to_follower))
    assert answer.status_code == 503 and answer.json()["reason"] == "NotLeader"
    answer = _relay(cluster, leader, body, sign(key, body, time.time(), to_leader))
    assert answer.status_code == 200 and answer.json() == {
        "recorded": {"heartbeats": 0, "probeResults": 0, "runtimeEvents": 0, "podMetrics": 0},
        "unknown": ["nobody"]}
    bad = json.dumps({"heartbeats": [{"node": "Not_A_Name", "ageSeconds": -1, "cpuPercent": 1.0,
                                      "memoryUsed": 1}]}).encode()
    answer = _relay(cluster, leader, bad, sign(key, bad, time.time(), to_leader))
    assert answer.status_code == 400 and "heartbeats" in answer.json()["field"], answer.text


def test_a_follower_without_a_leader_refuses_heartbeats(own_cluster: MasterCluster) -> None:
    admin = own_cluster.session("admin")
    node = {"apiVersion": "berth/v1", "kind": "Node", "metadata": {"name": "h1"},
            "spec": {"address": "10.250.0.11"}}
    assert admin.post(own_cluster.url(0, "/api/v1/nodes"), json=node, timeout=10).status_code == 201
    leader = own_cluster.leader_index()
    survivor = (leader + 1) % 3
    wait_until(lambda: admin.get(own_cluster.url(survivor, "/api/v1/nodes/h1"), timeout=5).status_code == 200,
               15, what="h1 applied on the survivor")
    for index in range(3):
        if index != survivor:
            own_cluster.kill(index)
    url = own_cluster.url(survivor, "/api/v1/nodes/h1/heartbeat")
    agent = own_cluster.session("agent")
    answers: list[requests.Response] = []

    def refused() -> bool:
        answers.append(agent.post(url, json={"cpuPercent": 1.0, "memoryUsed": 1}, timeout=10))
        return answers[-1].status_code == 503

    try:
        wait_until(refused, 30, interval=0.2, what="503 from a master without a leader")
    finally:
        if answers:
            print("last answer:", answers[-1].status_code, answers[-1].text)
    assert answers[-1].json()["reason"] == "Unavailable"


def test_a_heartbeat_answer_tells_when_the_nodes_pods_changed(cluster: MasterCluster) -> None:
    """The agent's cue to list its pods again (master/reports/pod_revisions.py), from leader and follower."""
    admin, agent = cluster.session("admin"), cluster.session("agent")
    node = {"apiVersion": "berth/v1", "kind": "Node", "metadata": {"name": "h1"},
            "spec": {"address": "10.250.0.11"}}
    assert admin.post(cluster.url(0, "/api/v1/nodes"), json=node, timeout=10).status_code == 201
    pods = "/api/v1/namespaces/default/pods"
    try:
        leader = cluster.leader_index()
        follower = (leader + 1) % 3

        def revision(index: int) -> int:
            answer = agent.post(cluster.url(index, "/api/v1/nodes/h1/heartbeat"),
                                json={"cpuPercent": 1.0, "memoryUsed": 1000}, timeout=10)
            assert answer.status_code == 200, answer.text
            return answer.json()["podsRevision"]

        wait_until(lambda: admin.get(cluster.url(follower, "/api/v1/nodes/h1"), timeout=5).status_code == 200,
                   15, what="h1 applied on the follower")
        before = revision(leader)
        elsewhere = pod("elsewhere")
        elsewhere["spec"]["nodeName"] = "h2"
        assert admin.post(cluster.url(0, pods), json=elsewhere, timeout=10).status_code == 201
        assert revision(leader) == before  # another node's pod: no cue
        here = pod("here")
        here["spec"]["nodeName"] = "h1"
        created = admin.post(cluster.url(0, pods), json=here, timeout=10)
        assert created.status_code == 201
        bound_at = int(created.json()["metadata"]["resourceVersion"])
        assert revision(leader) == bound_at
        wait_until(lambda: revision(follower) == bound_at, 15, interval=0.2, what="the follower's answer")
    finally:
        for name in ("elsewhere", "here"):
            admin.delete(cluster.url(0, f"{pods}/{name}?gracePeriodSeconds=0"), timeout=10)
        admin.delete(cluster.url(0, "/api/v1/nodes/h1"), timeout=10)


def test_probe_verdicts_and_runtime_events_ride_the_same_relay(cluster: MasterCluster) -> None:
    """A follower answers an agent's verdicts and events itself, as the leader would; the leader
    lands a signed batch of them in its books, counting only verdicts on the node's own pods."""
    admin, agent = cluster.session("admin"), cluster.session("agent")
    node = {"apiVersion": "berth/v1", "kind": "Node", "metadata": {"name": "h1"},
            "spec": {"address": "10.250.0.11"}}
    assert admin.post(cluster.url(0, "/api/v1/nodes"), json=node, timeout=10).status_code == 201
    here = pod("probed")
    here["spec"]["nodeName"] = "h1"
    created = admin.post(cluster.url(0, "/api/v1/namespaces/default/pods"), json=here, timeout=10)
    assert created.status_code == 201
    uid = created.json()["metadata"]["uid"]
    try:
        leader = cluster.leader_index()
        follower = (leader + 1) % 3
        verdicts = {"results": [
            {"podUID": uid, "container": "main", "probe": "readiness", "healthy": True, "startedAt": "1"},
            {"podUID": "someone-elses", "container": "main", "probe": "liveness", "healthy": False,
             "startedAt": "1"}]}
        wait_until(lambda: agent.post(cluster.url(follower, "/api/v1/nodes/h1/probes"), json=verdicts,
                                      timeout=10).json() == {"recorded": 1, "ignored": 1},
                   15, interval=0.2, what="the follower counting verdicts on h1's pods")
        events = {"events": [{"container": "x", "action": "died", "exitCode": 1}]}
        answer = agent.post(cluster.url(follower, "/api/v1/nodes/h1/runtime-events"), json=events, timeout=10)
        assert answer.status_code == 200 and answer.json() == {"recorded": 1}
        usage = {"pods": [{"uid": uid, "timestamp": time.time(), "window": 5.0,
                           "containers": {"main": {"cpuMillicores": 250, "memoryBytes": 1 << 20}}},
                          {"uid": "someone-elses", "timestamp": time.time(), "window": 5.0}]}
        answer = agent.post(cluster.url(follower, "/api/v1/nodes/h1/metrics"), json=usage, timeout=10)
        assert answer.status_code == 200 and answer.json() == {"recorded": 1, "ignored": 1}
        batch = json.dumps({"probes": [{"node": "h1", **verdicts}], "runtimeEvents": ["h1", "nobody"],
                            "podMetrics": [{"node": "h1", **usage}]}).encode()
        to = cluster.masters[leader].spec.raft_address
        answer = _relay(cluster, leader, batch, sign(_peer_key(cluster), batch, time.time(), to))
        assert answer.status_code == 200 and answer.json() == {
            "recorded": {"heartbeats": 0, "probeResults": 1, "runtimeEvents": 1, "podMetrics": 1},
            "unknown": ["nobody"]}
        # the usage the leader holds, through any master and the CLI, as kubectl top shows it
        path = "/api/v1/metrics/pods?namespace=default"
        [item] = admin.get(cluster.url(follower, path), timeout=10).json()["items"]
        assert item["metadata"]["name"] == "probed" and item["containers"] == [
            {"name": "main", "usage": {"cpu": "250m", "memory": "1024Ki"}}]
        top = berth(cluster, "top", "pods", "--containers")
        assert top.stdout.split() == ["POD", "NAME", "CPU(cores)", "MEMORY(bytes)", "probed", "main", "250m",
                                      "1Mi"], top.stdout + top.stderr
        every = berth(cluster, "top", "pods", "-A", "-l", "app!=none")  # every namespace's, by a selector
        assert every.stdout.split() == ["NAMESPACE", "NAME", "CPU(cores)", "MEMORY(bytes)", "default",
                                        "probed", "250m", "1Mi"], every.stdout + every.stderr
    finally:
        admin.delete(cluster.url(0, "/api/v1/namespaces/default/pods/probed"), timeout=10)
        admin.delete(cluster.url(0, "/api/v1/nodes/h1"), timeout=10)
