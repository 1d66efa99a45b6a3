"""A write goes out as soon as it is proposed, not at the next tick (RaftTimings.prompt_send).

Three real Stores on loopback, sending append entries only every 1 s on purpose. Were a write
sent at the next append-entries period, as PySyncObj batches by default, each of 40 writes in a
row would wait for one (half a period on average, two through a follower), and they would need
20 s or more; sent at once, they need a few milliseconds each. So 40 writes in a row, on the leader
and through a follower (which forwards to the leader), done within 20 s, can only be done by prompt
sending. (Ticks stay at 50 ms: at 0.5 s ticks, three fresh members sometimes held no election for
30 s, with bc2bace's PreVote too; not seen at 50 ms, nor at the masters' 5 ms.)
The bound is half of what period-driven sending needs, never a latency figure (bench/versus_etcd.py
measures those).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest

from master.store.commands import Create
from master.store.replicated import RaftTimings, Store, raft_conf
from tests.harness import store_cluster

SLOW = RaftTimings(auto_tick_period=0.05, append_entries_period=1.0, raft_min_timeout=3.5,
                   raft_max_timeout=4.0, leader_fallback_timeout=5.0, connection_timeout=4.0)
WRITES = 40
PERIOD_DRIVEN_SECONDS = WRITES * SLOW.append_entries_period


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Store]]:
    yield from store_cluster(tmp_path_factory.mktemp("prompt-send"), SLOW)


@pytest.fixture(scope="module")
def masters_timed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Store]]:
    """Stores with the timings masters run with."""
    yield from store_cluster(tmp_path_factory.mktemp("prompt-send-default"), RaftTimings())


def _writes_in_a_row(store: Store, prefix: str) -> float:
    """ConfigMaps created one after the other; each one's answer comes from this store's own apply,
    so it reads its own write at once."""
    began = time.monotonic()
    deadline = began + PERIOD_DRIVEN_SECONDS / 2
    for number in range(WRITES):
        name = f"{prefix}-{number}"
        obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"},
               "data": {}}
        store.propose(Create(obj, uid=name, timestamp="2026-12-01T00:00:00Z"),
                      timeout=max(0.1, deadline - time.monotonic()))
        assert store.get("ConfigMap", "default", name) is not None
    return time.monotonic() - began


def test_the_conf_asks_pysyncobj_to_send_at_once() -> None:
    assert raft_conf(RaftTimings(), "/nowhere", None).appendEntriesUseBatch is False
    assert raft_conf(RaftTimings(prompt_send=False), "/nowhere", None).appendEntriesUseBatch is True


def test_writes_on_the_leader_do_not_wait_for_the_period(stores: list[Store]) -> None:
    leader = next(store for store in stores if store.is_leader())
    assert _writes_in_a_row(leader, "on-leader") < PERIOD_DRIVEN_SECONDS / 2


def test_writes_through_a_follower_do_not_wait_for_the_period(stores: list[Store]) -> None:
    follower = next(store for store in stores if not store.is_leader())
    assert _writes_in_a_row(follower, "via-follower") < PERIOD_DRIVEN_SECONDS / 2


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_pipelined_writes_are_sent_once(masters_timed: list[Store]) -> None:
    """Many writes at once, through every store: append entries go out one after the other before
    the first is acknowledged. Each acknowledgement must not send the later ones again (a follower
    that applied them would truncate and re-add them: PySyncObj logs it CRITICAL)."""
    records = _Records()
    logging.getLogger("pysyncobj").addHandler(records)
    errors: list[BaseException] = []

    def writer(store: Store, number: int) -> None:
        try:
            for k in range(25):
                name = f"piped-{number}-{k}"
                obj = {"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": name, "namespace": "default"}, "data": {}}
                store.propose(Create(obj, uid=name, timestamp="2026-12-01T00:00:00Z"), timeout=30)
        except BaseException as err:  # counted below
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(masters_timed[n % 3], n)) for n in range(24)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        logging.getLogger("pysyncobj").removeHandler(records)
    assert not errors and not any(thread.is_alive() for thread in threads)
    assert not [m for m in records.messages if "truncating already-applied" in m]
