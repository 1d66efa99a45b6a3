"""Group commit without Raft: grouping under load, one outcome per command, no stall."""

from __future__ import annotations

import threading
import time

from master.store.commands import Barrier, Group
from master.store.group_commit import GroupCommitter


class SlowRaft:
    """Stands in for StateMachine.apply: answers each entry after a delay, on another thread."""

    def __init__(self, delay: float, drop_first: bool = False) -> None:
        self.delay = delay
        self.entries: list[object] = []
        self.threads: list[threading.Thread] = []  # the thread each entry was proposed from
        self.drop_first = drop_first

    def apply(self, command, callback) -> None:
        self.entries.append(command)
        self.threads.append(threading.current_thread())
        if self.drop_first and len(self.entries) == 1:
            return  # a callback PySyncObj never calls
        size = len(command.commands) if isinstance(command, Group) else None
        result = [f"ok{i}" for i in range(size)] if size else "ok"
        threading.Timer(self.delay, callback, args=(result, 0)).start()


def test_concurrent_proposals_share_entries_and_get_their_own_outcome() -> None:
    raft = SlowRaft(delay=0.02)
    committer = GroupCommitter(raft.apply, max_in_flight=1)
    results: list[object] = []
    done = threading.Semaphore(0)

    def callback(result, error) -> None:
        results.append((result, error))
        done.release()

    try:
        for _ in range(100):
            committer.submit(Barrier(), callback)
        for _ in range(100):
            assert done.acquire(timeout=10)
    finally:
        committer.close()
    assert len(results) == 100 and all(error == 0 for _, error in results)
    assert len(raft.entries) < 10  # grouped: far fewer entries than proposals
    assert sum(len(e.commands) if isinstance(e, Group) else 1 for e in raft.entries) == 100


def test_a_lone_proposal_goes_at_once_ungrouped() -> None:
    raft = SlowRaft(delay=0.0)
    committer = GroupCommitter(raft.apply)
    got = threading.Event()
    try:
        committer.submit(Barrier(), lambda result, error: got.set())
        assert got.wait(5)
    finally:
        committer.close()
    assert raft.entries == [Barrier()]
    assert raft.threads == [threading.current_thread()]  # from the caller's thread: no hand-over


def test_a_lost_callback_does_not_stall_later_proposals() -> None:
    raft = SlowRaft(delay=0.0, drop_first=True)
    committer = GroupCommitter(raft.apply, max_in_flight=1, in_flight_timeout=0.3)
    got = threading.Event()
    try:
        committer.submit(Barrier(), lambda result, error: None)
        time.sleep(0.05)
        committer.submit(Barrier(), lambda result, error: got.set())
        assert got.wait(5)
    finally:
        committer.close()


def test_held_proposals_wait_and_go_together_on_release() -> None:
    """A leader handing over (Store.hand_over) appends nothing meanwhile; what came goes on release."""
    raft = SlowRaft(delay=0.0)
    committer = GroupCommitter(raft.apply)
    answered = threading.Semaphore(0)
    try:
        committer.hold()
        for _ in range(4):
            committer.submit(Barrier(), lambda result, error: answered.release())
        assert raft.entries == []  # unheld, the first would have gone at once, from this thread
        committer.release()
        for _ in range(4):
            assert answered.acquire(timeout=5)
    finally:
        committer.close()
    assert len(raft.entries) == 1 and isinstance(raft.entries[0], Group)
