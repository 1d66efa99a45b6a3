"""PreVote's answers (master/store/prevote.py), asked of real PySyncObj members on loopback.

The lab test (test_lab_cluster) shows a partitioned follower deposing no one; these show the
rule behind each "no": the leader refuses, a follower that hears the leader refuses, and a
master whose log is ahead of the asker's refuses; the asker's term is never raised by asking.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from pysyncobj import SyncObjConf
from pysyncobj.syncobj import _RAFT_STATE

from berth.lab.masters import free_ports
from master.store.prevote import PreVoteSyncObj
from tests.harness import wait_until


@pytest.fixture
def members() -> Iterator[list[PreVoteSyncObj]]:
    addresses = [f"127.0.0.1:{port}" for port in free_ports(3)]
    conf = SyncObjConf(autoTickPeriod=0.02, appendEntriesPeriod=0.05, raftMinTimeout=2.0, raftMaxTimeout=3.0,
                       connectionRetryTime=0.2, dynamicMembershipChange=False)
    made = [PreVoteSyncObj(a, [b for b in addresses if b != a], conf) for a in addresses]
    try:
        yield made
    finally:
        for member in made:
            member.destroy()


def _leader(members: list[PreVoteSyncObj]) -> PreVoteSyncObj | None:
    leaders = [m for m in members if m._SyncObj__raftState == _RAFT_STATE.LEADER]
    return leaders[0] if len(leaders) == 1 else None


def test_the_leader_and_a_follower_that_hears_it_say_no(members: list[PreVoteSyncObj]) -> None:
    leader = wait_until(lambda: _leader(members), 20, what="a leader")
    follower = next(m for m in members if m is not leader)
    # heard within the last second, so still within the 2 s minimum timeout when asked below
    wait_until(lambda: time.monotonic() - follower._heard_leader_at < 1.0, 10, what="the leader heard")
    index, log_term = leader._log_position()
    ask = {"type": "pre_vote", "term": leader._term() + 1, "last_log_index": index + 100,
           "last_log_term": log_term + 1}  # an asker as up to date as can be
    assert leader._would_vote(ask) is False  # it leads: a follower that can reach it has no cause
    assert follower._would_vote(ask) is False  # it heard the leader within the minimum timeout
    assert follower._would_vote({**ask, "term": follower._term()}) is False  # not a later term


def test_without_a_leader_a_master_says_yes_only_to_an_up_to_date_log(members: list[PreVoteSyncObj]) -> None:
    wait_until(lambda: _leader(members), 20, what="a leader")
    voter = next(m for m in members if m._SyncObj__raftState != _RAFT_STATE.LEADER)
    voter._heard_leader_at = 0.0  # as if the leader went silent a while ago
    index, log_term = voter._log_position()
    term = voter._term()
    ask = {"type": "pre_vote", "term": term + 1, "last_log_index": index, "last_log_term": log_term}
    assert voter._would_vote(ask) is True
    assert voter._would_vote({**ask, "last_log_index": index - 1}) is False  # behind: no
    assert voter._would_vote({**ask, "last_log_term": log_term - 1}) is False
    assert voter._term() == term  # answering a pre-vote changes no term


def test_a_leader_whose_connections_close_is_replaced_before_any_timeout() -> None:
    """Election timeouts of 5-6 s here: a new leader within 4 s of the old one's death comes only
    from the survivors seeing its connections close (prevote.LOST_LEADER_FIRST), and both must say
    yes to one another, since each heard the leader a moment ago but can no longer reach it."""
    addresses = [f"127.0.0.1:{port}" for port in free_ports(3)]
    conf = SyncObjConf(autoTickPeriod=0.02, appendEntriesPeriod=0.05, raftMinTimeout=5.0, raftMaxTimeout=6.0,
                       connectionTimeout=6.0, connectionRetryTime=0.2, dynamicMembershipChange=False)
    made = [PreVoteSyncObj(a, [b for b in addresses if b != a], conf) for a in addresses]
    try:
        old = wait_until(lambda: _leader(made), 30, what="a leader")
        survivors = [m for m in made if m is not old]
        wait_until(lambda: all(m._leader_reachable() for m in survivors), 10, what="the followers connected")
        term = old._term()
        old.destroy()
        new = wait_until(lambda: _leader(survivors), 4.0, interval=0.01,
                         what="a new leader before any timeout")
        assert new._term() == term + 1  # one election: the two survivors did not split their votes
    finally:
        for member in made:
            member.destroy()
