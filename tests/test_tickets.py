"""A write Raft loses track of is settled by its ticket, and a stopping leader hands over first.

Three real Stores on loopback. A follower forwards its writes to the leader; when the leader
changes before answering where it put one, PySyncObj answers LEADER_CHANGED and says no more. The
follower here is made to see exactly that, for a write the leader did append, and for one that
never left: the first is answered as applied (with its own outcome, not a second create's
AlreadyExists), the second is proposed again and applied once. And a leader that hands over
(what a master does on SIGTERM) leaves another leading within one election, no write lost.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pysyncobj import FAIL_REASON

from master.store.commands import Create, Group
from master.store.replicated import RaftTimings, Store
from master.store.tickets import Tickets
from tests.harness import store_cluster, wait_until


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Store]]:
    yield from store_cluster(tmp_path_factory.mktemp("tickets"), RaftTimings())


def _config_map(name: str) -> Create:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"},
           "data": {}}
    return Create(obj, uid=name, timestamp="2026-12-01T00:00:00Z")


def _names(entry: Any) -> list[str]:
    commands = entry.commands if isinstance(entry, Group) else (entry,)
    return [c.obj["metadata"]["name"] for c in commands if isinstance(c, Create)]


def _follower(stores: list[Store]) -> Store:
    return next(store for store in stores if not store.is_leader())


def _losing_track_of(store: Store, name: str, *, send: bool) -> Callable[[], None]:
    """Make `store` lose track of the first entry holding `name`: PySyncObj answers LEADER_CHANGED
    for it, after sending it on (`send`) or without. Returns the undo."""
    real = store.machine.apply
    lost: list[Any] = []

    def apply(entry: Any, callback: Callable[[Any, int], None]) -> None:
        if lost or name not in _names(entry):
            real(entry, callback=callback)
            return
        lost.append(entry)
        if send:
            real(entry, callback=lambda _result, _error: callback(None, FAIL_REASON.LEADER_CHANGED))
        else:
            callback(None, FAIL_REASON.LEADER_CHANGED)

    store.machine.apply = apply  # type: ignore[method-assign] - PySyncObj applies through its own table
    return lambda: vars(store.machine).pop("apply", None)


def test_tickets_keep_only_what_is_awaited() -> None:
    tickets = Tickets()
    awaited, answered = tickets.issue(), tickets.issue()
    tickets.forget(answered)
    tickets.applied(awaited, ["outcome"])
    tickets.applied(answered, ["not kept"])
    tickets.applied(12345, ["another master's"])
    assert tickets.settle(awaited) == (True, ["outcome"])
    never = tickets.issue()
    assert tickets.settle(never) == (False, None)
    assert len(tickets) == 0 and awaited % 2 == 1  # never 0, which marks an entry without a ticket


def test_a_write_applied_though_its_leader_changed_is_answered_as_applied(stores: list[Store]) -> None:
    follower = _follower(stores)
    undo = _losing_track_of(follower, "applied-unseen", send=True)
    try:
        outcome = follower.propose(_config_map("applied-unseen"))
    finally:
        undo()
    assert outcome.error is None and outcome.objects[0]["metadata"]["name"] == "applied-unseen"
    wait_until(lambda: all(store.get("ConfigMap", "default", "applied-unseen") for store in stores), 10,
               what="the write on every store (the third may be an append behind)")
    assert len(follower.machine.tickets) == 0


def test_a_write_lost_with_its_leader_is_proposed_again_and_applied_once(stores: list[Store]) -> None:
    follower = _follower(stores)
    before = follower.latest()
    undo = _losing_track_of(follower, "never-sent", send=False)
    try:
        outcome = follower.propose(_config_map("never-sent"))
    finally:
        undo()
    assert outcome.error is None
    created = [e for e in follower.events_after(before, 0) if e.obj["metadata"]["name"] == "never-sent"]
    assert [e.type for e in created] == ["ADDED"]


def test_a_leader_hands_over_and_no_write_is_lost(stores: list[Store]) -> None:
    """Writes go on through the leader (held while it hands over) and through a follower (forwarded
    to it: dropped while it hands over, then settled by their tickets and proposed to the new one)."""
    leader = next(store for store in stores if store.is_leader())
    follower = _follower(stores)
    term = leader.raft._term()
    written: dict[str, list[int]] = {"leader": [], "follower": []}
    failed: list[str] = []
    stop = threading.Event()

    def write(store: Store, via: str) -> None:
        for number in range(2000):  # bounded; stopped once the hand-over is done
            if stop.is_set():
                return
            try:
                store.propose(_config_map(f"handed-{via}-{number}"))
                written[via].append(number)
            except Exception as err:  # what failed is the assertion's to show
                failed.append(repr(err))

    writers = [threading.Thread(target=write, args=(leader, "leader")),
               threading.Thread(target=write, args=(follower, "follower"))]
    for writer in writers:
        writer.start()
    try:
        wait_until(lambda: min(map(len, written.values())) >= 20, 20, what="writes under way")
        assert leader.hand_over(5.0)
        counts = {via: len(numbers) for via, numbers in written.items()}
        wait_until(lambda: all(len(written[via]) >= counts[via] + 20 for via in written), 20,
                   what="writes after the hand-over")
    finally:
        stop.set()
        for writer in writers:
            writer.join(30)
    new = wait_until(lambda: next((s for s in stores if s.is_leader()), None), 10, what="a leader")
    assert new is not leader and new.raft._term() == term + 1  # one election, asked for
    assert failed == []
    names = [f"handed-{via}-{n}" for via, numbers in written.items() for n in numbers]

    def missing() -> dict[int, list[str]]:
        """What each store has not applied yet: the old leader, a follower now, may be an append
        behind the writes its peers answered last; a lost write stays missing."""
        return {i: gone for i, store in enumerate(stores)
                if (gone := [name for name in names if not store.get("ConfigMap", "default", name)])}

    with contextlib.suppress(TimeoutError):  # the assertion names what stayed missing, and where
        wait_until(lambda: not missing(), 10, what="every answered write on every store")
    assert missing() == {}
