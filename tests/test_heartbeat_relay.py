"""Followers relay heartbeats to the leader in signed batches; forged batches are refused."""

from __future__ import annotations

import json
import time

import requests

from master.api.peer_auth import MAX_SKEW_SECONDS, SeenNonces, peer_key, sign, verify, verify_head
from master.heartbeat_relay import RELAY_PATH, HeartbeatRelay, batch_body
from master.liveness import HeartbeatBook, ready_condition
from tests.harness import TOKENS, MasterCluster, pod, wait_until

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
    assert json.loads(batch_body({"a": (9.5, {"cpuPercent": 1.0, "memoryUsed": 5})}, now=10.0)) == {
        "heartbeats": [{"node": "a", "ageSeconds": 0.5, "cpuPercent": 1.0, "memoryUsed": 5}]}


class FollowerStore:
    """The two questions the relay asks its store."""

    def __init__(self) -> None:
        self.leading = False
        self.leader_name: str | None = "m1"

    def is_leader(self) -> bool:
        return self.leading

    def leader(self) -> str | None:
        return self.leader_name


def test_a_relay_that_cannot_reach_the_leader_stops_accepting_until_it_can() -> None:
    store = FollowerStore()
    book = HeartbeatBook()
    relay = HeartbeatRelay(store, book, {"m1": "http://leader"}, KEY)  # type: ignore[arg-type]
    sent: list[dict] = []
    reachable = [False]

    def send(body: bytes) -> bool:
        sent.append(json.loads(body))
        return reachable[0]

    relay._send = send  # type: ignore[method-assign]
    assert relay.accepting()
    relay.add("a", {"cpuPercent": 1.0, "memoryUsed": 1})
    relay.flush()
    assert not relay.accepting() and [b["node"] for b in sent[-1]["heartbeats"]] == ["a"]
    relay.add("b", {"cpuPercent": 2.0, "memoryUsed": 2})
    relay.flush()  # what failed is sent again with what came since
    assert sorted(b["node"] for b in sent[-1]["heartbeats"]) == ["a", "b"]
    reachable[0] = True
    relay.flush()
    assert relay.accepting()
    relay.flush()  # nothing pending: nothing sent
    assert len(sent) == 3
    reachable[0] = False
    relay.add("a", {"cpuPercent": 1.0, "memoryUsed": 1})
    relay.flush()
    reachable[0] = True
    relay._pending.clear()  # its agents went elsewhere: an empty batch tells it the leader hears again
    relay.flush()
    assert relay.accepting() and sent[-1] == {"heartbeats": []}
    store.leader_name = None
    assert not relay.accepting()
    store.leading = True  # leadership came here: pending beats go into the local book
    relay.add("c", {"cpuPercent": 3.0, "memoryUsed": 3})
    relay.flush()
    assert book.usage("c") == {"cpuPercent": 3.0, "memoryUsed": 3}


def _peer_key(cluster: MasterCluster) -> bytes:
    return peer_key((cluster.root / "raft-password").read_text().strip())


def _relay(cluster: MasterCluster, index: int, body: bytes, authorization: str | None) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    return requests.post(cluster.url(index, RELAY_PATH), data=body, headers=headers, timeout=10)


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

        def beat(cpu: float) -> bool:
            answer = agent.post(cluster.url(follower, "/api/v1/nodes/h1/heartbeat"),
                                json={"cpuPercent": cpu, "memoryUsed": 1000}, timeout=10)
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
    assert answer.status_code == 200 and answer.json() == {"recorded": 0, "unknown": ["nobody"]}
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
    """The agent's cue to list its pods again (master/pod_revisions.py), from leader and follower."""
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
