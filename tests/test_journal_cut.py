"""The Raft journal across a snapshot and a crash (master/store/journal_cut.py), on real PySyncObj.

A master killed after its snapshot was renamed into place but before its journal was cut restarts
with every write it had: the state is built on disk exactly as such a kill leaves it (the journal's
entries from before the snapshot, then those after it). And a cut stopped before its rename leaves
the old journal whole.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from pysyncobj import SyncObjConf
from pysyncobj.journal import FileJournal

from berth.lab.masters import free_ports
from master.store import journal_cut
from master.store.commands import Create
from master.store.journal_cut import CUT_SUFFIX, JournalCutSyncObj, dump_position
from master.store.replicated import DUMP_FILE, JOURNAL_FILE, RaftTimings, Store
from tests.harness import wait_until


def entry(index: int, term: int = 1) -> tuple[bytes, int, int]:
    return f"command {index}".encode(), index, term


@pytest.mark.parametrize("journal, dump, expected", [
    ([entry(i) for i in range(1, 40)], (entry(19), entry(20)), 18),  # killed before the cut: cut there
    ([entry(i) for i in range(19, 40)], (entry(19), entry(20)), 0),  # cut already: nothing to do
    ([entry(i) for i in range(1, 20)], (entry(19), entry(20)), None),  # holds less than the snapshot
    ([entry(i) for i in range(1, 16)], (entry(19), entry(20)), None),
    ([entry(i) for i in range(25, 40)], (entry(19), entry(20)), None),  # starts after it
    ([entry(i) for i in range(1, 40)], (entry(19, 2), entry(20, 2)), None),  # another term's entries
    ([], (entry(19), entry(20)), None),
])
def test_where_the_journal_holds_the_snapshots_last_entries(journal: list, dump: tuple,
                                                            expected: int | None) -> None:
    assert dump_position(journal, *dump) == expected


def config_map(n: int) -> Create:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{n}", "namespace": "default"},
           "data": {}}
    return Create(obj, uid=f"c{n}", timestamp="2026-12-01T00:00:00Z")


def entries(path: Path) -> list[tuple[bytes, int, int]]:
    journal = FileJournal(str(path))
    try:
        return [journal[i] for i in range(len(journal))]
    finally:
        journal._destroy()


def names(store: Store) -> set[str]:
    found, _ = store.read(lambda state: {o["metadata"]["name"] for o in state.list("ConfigMap")})
    return found


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "master"
    shutil.rmtree(tmp_path / "master", ignore_errors=True)


def test_a_master_killed_between_its_snapshot_and_the_cut_keeps_every_write(data_dir: Path,
                                                                             tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_ports(1)[0]}"
    journal_path, dump_path = data_dir / JOURNAL_FILE, data_dir / DUMP_FILE
    store = Store(address, [], str(data_dir), "a-raft-password", RaftTimings())
    try:
        wait_until(store.is_ready, 20, what="a single master ready")
        for n in range(20):
            store.propose(config_map(n))
        before_snapshot = tmp_path / "before-snapshot.journal"
        shutil.copy(journal_path, before_snapshot)  # what the journal was when the snapshot began
        store.raft.forceLogCompaction()
        wait_until(lambda: dump_path.exists() and entries(journal_path)[0][1] > 1, 20,
                   what="a snapshot, and the journal cut after it")
        for n in range(20, 30):
            store.propose(config_map(n))
    finally:
        store.close()
    after = entries(journal_path)
    older = [e for e in entries(before_snapshot) if e[1] < after[0][1]]
    assert older and after[-1][1] > after[1][1]  # entries before the snapshot, and after it
    os.remove(journal_path)
    crashed = FileJournal(str(journal_path))  # the snapshot renamed into place, the journal not cut
    for one in older + after:
        crashed.add(*one)
    crashed._destroy()

    store = Store(address, [], str(data_dir), "a-raft-password", RaftTimings())
    try:
        wait_until(store.is_ready, 20, what="the master ready again")
        assert names(store) == {f"c{n}" for n in range(30)}
        assert entries(journal_path)[:2] == after[:2]  # cut where the snapshot ends, as after a clean cut
    finally:
        store.close()


def test_a_cut_stopped_before_its_rename_leaves_the_old_journal_whole(
        data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir.mkdir()
    journal_path = data_dir / JOURNAL_FILE
    conf = SyncObjConf(autoTick=False, journalFile=str(journal_path), fullDumpFile=str(data_dir / DUMP_FILE))
    node = JournalCutSyncObj(f"127.0.0.1:{free_ports(1)[0]}", [], conf)
    try:
        journal = node._SyncObj__raftLog
        for index in range(2, 30):
            journal.add(*entry(index))
        journal.setRaftCommitIndex(29)
        whole = entries(journal_path)

        def killed(*_: object) -> None:
            raise OSError("killed before the rename")

        monkeypatch.setattr(journal_cut.os, "replace", killed)
        with pytest.raises(OSError):
            node._cut_journal(10)
        assert entries(journal_path) == whole
        assert (data_dir / f"{JOURNAL_FILE}{CUT_SUFFIX}").exists()  # the new file, never renamed
        monkeypatch.undo()

        node._cut_journal(10)
        assert entries(journal_path) == whole[10:]
        assert not (data_dir / f"{JOURNAL_FILE}{CUT_SUFFIX}").exists()
        live = node._SyncObj__raftLog
        assert [live[i] for i in range(len(live))] == whole[10:]
        assert live.getRaftCommitIndex() == 29  # kept, though the meta file had not been saved yet
    finally:
        node.destroy()
