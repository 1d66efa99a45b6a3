"""Five masters and membership changes (issue 19, item 6): the quorum rule as a table, a 5-master
cluster losing 2, and a master added and removed while writes go on."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
import requests

from master.store.membership import check_address, check_api_url, judge
from tests.conftest import STORE_ONLY, TEST_ROOT
from tests.harness import MasterCluster, berth, wait_until

A, B, C, D, E = (f"10.0.0.{i}:4321" for i in range(1, 6))
THREE = frozenset({A, B, C})


# --- pure --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("change", "address", "members", "reachable", "pending", "status", "why"), [
    ("add", D, THREE, THREE, False, 0, "3 reachable of 4: a majority"),
    ("add", D, THREE, frozenset({A, B}), False, 422, "2 reachable of 4: no majority until D caught up"),
    ("add", B, THREE, THREE, False, 409, "already a member"),
    ("add", D, THREE, THREE, True, 409, "one change at a time"),
    ("remove", C, THREE, frozenset({A, B}), False, 0, "the dead one: 2 of 2 left"),
    ("remove", B, THREE, frozenset({A, B}), False, 422, "a live one, C dead: 1 of 2 left"),
    ("remove", D, THREE, THREE, False, 404, "not a member"),
    ("remove", A, THREE, THREE, False, 503, "the leader: it hands over first"),
    ("remove", C, THREE, THREE, True, 409, "one change at a time"),
    ("remove", E, THREE | {D, E}, frozenset({A, B, C}), False, 0, "5 -> 4 with 3 reachable"),
    ("remove", C, THREE | {D, E}, frozenset({A, B, C}), False, 422, "5 -> 4 with 2 reachable"),
    ("add", E, THREE | {D}, frozenset({A, B, C}), False, 0, "4 -> 5 with 3 reachable"),
])
def test_quorum_rule(change: str, address: str, members: frozenset[str], reachable: frozenset[str],
                     pending: bool, status: int, why: str) -> None:
    assert judge(change, address, members, reachable, A, pending).status == status, why


@pytest.mark.parametrize("value", ["10.0.0.1:0", "10.0.0.1:70000", "host", "a b:1", "x:1/../y",
                                   "user@host:22", "-oProxy:1", "host:1;rm", "", None, 5, "[::1:1"])
def test_addresses_are_strict(value: Any) -> None:
    with pytest.raises(ValueError):
        check_address(value)


def test_api_urls_are_strict() -> None:
    assert check_api_url("https://m4.example:8443") == "https://m4.example:8443"
    for bad in ("http://m4:8443", "https://u:p@m4:8443", "https://m4:8443/x", "https://m4:8443?a=1", "https://m4"):
        with pytest.raises(ValueError):
            check_api_url(bad)
    assert check_address("[::1]:7001") == "[::1]:7001"


# --- masters -----------------------------------------------------------------------------------

def configmap(name: str) -> dict[str, Any]:
    return {"apiVersion": "berth/v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"},
            "data": {"k": "v"}}


def create(cluster: MasterCluster, index: int, name: str, session: requests.Session) -> requests.Response:
    return session.post(cluster.url(index, "/api/v1/namespaces/default/configmaps"), json=configmap(name),
                        timeout=15)


def names_on(cluster: MasterCluster, index: int) -> set[str]:
    listed = cluster.session().get(cluster.url(index, "/api/v1/namespaces/default/configmaps?consistent=1"),
                                   timeout=15)
    assert listed.status_code == 200, listed.text
    return {item["metadata"]["name"] for item in listed.json()["items"]}


@pytest.fixture
def five(request: pytest.FixtureRequest) -> Any:
    cluster = MasterCluster(TEST_ROOT / "membership-five", size=5, extra_settings=STORE_ONLY)
    cluster.start_all()
    try:
        cluster.wait_ready(timeout=60)
        yield cluster
    finally:
        cluster.close()
        if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
            print(cluster.logs())


def test_five_masters_survive_two_killed_the_leader_among_them(five: MasterCluster) -> None:
    session = five.session()
    leader = five.leader_index()
    assert create(five, leader, "before", session).status_code == 201
    other = (leader + 1) % 5
    five.kill(leader)
    five.kill(other)
    alive = [i for i in range(5) if i not in (leader, other)]
    new_leader = five.leader_index(timeout=30)
    assert new_leader in alive
    for i in alive:
        answer = create(five, i, f"after-{i}", session)
        assert answer.status_code == 201, answer.text
    expected = {"before", *(f"after-{i}" for i in alive)}
    for i in alive:
        assert names_on(five, i) == expected
    five.start(leader)
    five.start(other)
    five.wait_ready([leader, other], timeout=60)
    for i in (leader, other):
        wait_until(lambda i=i: names_on(five, i) == expected, 30, what=f"master {i} caught up")

    # the leader itself is removed: it hands leadership over, the CLI retries at the new leader
    leader = five.leader_index()
    address = five.specs[leader].raft_address
    removed = berth(five, "cluster", "remove-master", address)
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout == f"master {address} removed (4 members)\n"
    five.kill(leader)
    rest = [i for i in range(5) if i != leader]
    five.wait_ready(rest, timeout=30)
    assert create(five, rest[0], "after-removal", session).status_code == 201
    assert address not in {m["address"] for m in five.status(rest[1])["members"]}


class Writer(threading.Thread):
    """Creates ConfigMaps one after another through the masters in turn, keeping what was acknowledged
    and what failed: a 503, or a connection to a master being restarted, is retried at the next
    master (as the CLI's client does)."""

    def __init__(self, cluster: MasterCluster, count: int) -> None:
        super().__init__(daemon=True)
        self.cluster, self.count = cluster, count
        self.acked: list[str] = []
        self.failed: list[tuple[str, int, str]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        session = self.cluster.session()
        for n in range(self.count):
            if self.stop.is_set():
                return
            name = f"w-{n}"
            unknown = False  # an earlier attempt may have been applied
            for attempt in range(6):
                try:
                    answer = create(self.cluster, (n + attempt) % 3, name, session)
                except requests.ConnectionError as err:  # a master restarted under it: the next one
                    self.failed.append((name, 0, str(err)[:200]))
                    unknown = True
                    continue
                if answer.status_code == 201 or (unknown and answer.status_code == 409):
                    self.acked.append(name)
                    break
                self.failed.append((name, answer.status_code, answer.text[:200]))
                if answer.status_code != 503:
                    break
                unknown = unknown or answer.json().get("reason") == "OutcomeUnknown"


def test_membership_add_and_remove_with_writes_going_on() -> None:
    cluster = MasterCluster(TEST_ROOT / "membership-writes", size=4, initial=3, extra_settings=STORE_ONLY)
    admin = cluster.session()
    cluster.start(0)
    cluster.start(1)
    cluster.start(2)
    try:
        cluster.wait_ready([0, 1, 2], timeout=60)
        members_url = cluster.url(0, "/api/v1/cluster/members")
        new = cluster.specs[3]
        writer = Writer(cluster, 400)
        writer.start()
        wait_until(lambda: len(writer.acked) >= 20, 30, what="writes going on")

        # refusals first: not an admin, a bad address, an existing member
        for role in ("operator", "viewer"):
            refused = cluster.session(role).post(members_url, json={"address": new.raft_address,
                                                                    "apiURL": new.api_url})
            assert refused.status_code == 403, refused.text
        bad = admin.post(members_url, json={"address": "x:1;rm -rf /", "apiURL": new.api_url})
        assert (bad.status_code, bad.json()["field"]) == (422, "address")
        existing = admin.post(members_url, json={"address": cluster.specs[1].raft_address,
                                                 "apiURL": cluster.specs[1].api_url})
        assert existing.status_code == 409, existing.text

        # add m4 (started with the three as its peers), through a follower or the leader alike
        cluster.start(3)
        added = admin.post(cluster.url(1, "/api/v1/cluster/members"),
                           json={"address": new.raft_address, "apiURL": new.api_url}, timeout=15)
        assert added.status_code == 201, added.text
        assert new.raft_address in added.json()["members"]
        cluster.wait_ready([3], timeout=60)
        wait_until(lambda: len(writer.acked) >= 80, 60, what="writes after the add")
        seen = set(writer.acked)
        wait_until(lambda: seen <= names_on(cluster, 3), 30, what="m4 caught up and serving reads")

        # a member restarted with its original peers (m1..m3) comes back with m4 among them
        leader = cluster.leader_index()
        follower = next(i for i in (0, 1, 2) if i != leader)
        cluster.kill(follower)
        cluster.start(follower)
        cluster.wait_ready([follower], timeout=60)
        members = {m["address"] for m in cluster.status(follower)["members"]}
        assert new.raft_address in members

        # remove m4 again with the CLI, then stop it
        three = [m.api_url for m in cluster.masters[:3]]
        removed = berth(cluster, "cluster", "remove-master", new.raft_address, servers=three)
        assert removed.returncode == 0, removed.stderr
        assert removed.stdout == f"master {new.raft_address} removed (3 members)\n"
        assert new.raft_address not in {m["address"] for m in cluster.status(2)["members"]}
        cluster.kill(3)
        gone = admin.delete(cluster.url(0, f"/api/v1/cluster/members/{new.raft_address}"), timeout=15)
        assert gone.status_code == 404, gone.text
        wait_until(lambda: len(writer.acked) >= 160, 60, what="writes after the removal")
        writer.stop.set()
        writer.join(60)
        assert not writer.is_alive()
        present = names_on(cluster, 0)
        assert set(writer.acked) <= present
        # only retryable refusals, each retried: no write was lost or refused for good
        assert all(status in (0, 503) for _, status, _ in writer.failed), writer.failed
        retried = Counter("connection" if status == 0 else status for _, status, _ in writer.failed)
        print(f"writes acknowledged: {len(writer.acked)}, attempts retried: {dict(retried)}")

        # with one of three dead, removing a live member would lose quorum: refused
        leader = cluster.leader_index()
        dead = next(i for i in (0, 1, 2) if i != leader)
        live = next(i for i in (0, 1, 2) if i not in (leader, dead))
        cluster.kill(dead)
        dead_address = cluster.specs[dead].raft_address
        wait_until(lambda: not any(m["reachable"] for m in cluster.status(leader)["members"]
                                   if m["address"] == dead_address), 30, what="the leader sees it dead")
        live_address = cluster.specs[live].raft_address
        refused = admin.delete(cluster.url(leader, f"/api/v1/cluster/members/{live_address}"), timeout=15)
        assert refused.status_code == 422, refused.text
        assert "quorum" in refused.json()["error"]
        by_cli = berth(cluster, "cluster", "remove-master", live_address, servers=three)
        assert by_cli.returncode == 1 and "would lose quorum" in by_cli.stderr, by_cli.stderr
        assert create(cluster, leader, "still-writable", admin).status_code == 201
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        cluster.close()
