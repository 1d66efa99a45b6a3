"""A write goes out as soon as it is proposed, not at the next tick (RaftTimings.prompt_send).

Three real Stores on loopback, ticking slowly on purpose: every 0.5 s, with append entries
every 1 s. Were a write sent at the next append-entries period, as PySyncObj batches by default,
each of 20 writes in a row would wait for one, and they would need 20 s at the least; sent at
once, they need a few milliseconds each. So 20 writes in a row, on the leader and through a
follower (which forwards to the leader), done within 10 s, can only be done by prompt sending.
The bound is half of what period-driven sending needs, never a latency figure (bench/versus_etcd.py
measures those).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from berth.lab.masters import free_ports
from master.store.commands import Create
from master.store.replicated import RaftTimings, Store, raft_conf
from tests.harness import wait_until

SLOW = RaftTimings(auto_tick_period=0.5, append_entries_period=1.0, raft_min_timeout=3.5,
                   raft_max_timeout=4.0, leader_fallback_timeout=5.0, connection_timeout=4.0)
WRITES = 20
PERIOD_DRIVEN_SECONDS = WRITES * SLOW.append_entries_period


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Store]]:
    root: Path = tmp_path_factory.mktemp("prompt-send")
    addresses = [f"127.0.0.1:{port}" for port in free_ports(3)]
    made = [Store(address, [a for a in addresses if a != address], str(root / str(i)), "a-raft-password",
                  SLOW) for i, address in enumerate(addresses)]
    try:
        wait_until(lambda: all(store.is_ready() for store in made), 40, what="a leader, every store ready")
        yield made
    finally:
        for store in made:
            store.close()


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
