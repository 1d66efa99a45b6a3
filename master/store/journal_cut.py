"""The Raft journal cut where a snapshot ends, without a crash losing an entry (PySyncObj 0.3.17).

PySyncObj writes a snapshot (`raft.dump`) in a forked child, which renames it into place; the
parent notices at a later tick and only then drops the journal's entries the snapshot holds.
A master killed in between restarts with a snapshot newer than the journal's first entries, and
PySyncObj, seeing them differ, clears the journal down to the snapshot's last entry: every write
applied after the snapshot began is gone, acknowledged or not. The masters snapshot at the same
count of entries, so killing them all at once could lose a committed write on every one of them
(a rotation of Secrets vanished this way in CI). The drop itself rewrote the journal in place,
entry by entry: a kill midway left only its first entries.

So here, at load, a journal that holds the snapshot's last entry is first cut there, its later
entries kept (PySyncObj then finds it matching and keeps it); and every cut, at load or after a
snapshot, writes the kept entries to a new file renamed over the journal, so that a kill leaves
the old journal or the new one, each whole. A journal that does not hold the snapshot's last entry
is PySyncObj's to clear, as before: the snapshot holds more than it.

Durability stays PySyncObj's: the journal is an mmap, kept by the kernel when the process dies,
not synced to the disk before an entry is acknowledged (a power cut can lose what a kill cannot).

The subclass reaches PySyncObj's state through its name-mangled attributes (`_SyncObj__...`), and
refuses to start against a PySyncObj it was not written for.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from importlib import metadata
from typing import Any

from pysyncobj import SyncObj
from pysyncobj.journal import FileJournal, Journal

WRITTEN_FOR = "0.3.17"  # the attributes reached below, and in prevote.py, are this version's
CUT_SUFFIX = ".cut"  # the kept entries are written here, then renamed over the journal

Entry = tuple[Any, int, int]  # PySyncObj's journal entry: (command, index, term)


def dump_position(journal: Sequence[Entry] | Journal, dump_before_last: Entry,
                  dump_last: Entry) -> int | None:
    """Where the journal holds the snapshot's last two entries (the first of them): the journal
    is cut to start there. None when it does not hold both, by index and term."""
    if not journal:
        return None
    position = dump_before_last[1] - journal[0][1]  # a journal's indexes follow one another
    if position < 0 or position + 1 >= len(journal):
        return None
    held = journal[position], journal[position + 1]
    wanted = dump_before_last, dump_last
    return position if all(h[1:] == w[1:] for h, w in zip(held, wanted, strict=True)) else None


class JournalCutSyncObj(SyncObj):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        version = metadata.version("pysyncobj")
        if version != WRITTEN_FOR:
            raise RuntimeError(f"master/store reaches into PySyncObj {WRITTEN_FOR}, not {version}")
        super().__init__(*args, **kwargs)

    def _SyncObj__loadDumpFile(self, clearJournal: bool) -> None:
        """At start (`clearJournal` False) the journal's entries after the snapshot are kept; a
        snapshot received from the leader (True) replaces the journal, as PySyncObj does."""
        serializer = self._SyncObj__serializer
        if clearJournal:
            super()._SyncObj__loadDumpFile(clearJournal)
            return
        try:
            data = serializer.deserialize()
        except Exception:  # unreadable: PySyncObj's load fails on it too, and logs it
            super()._SyncObj__loadDumpFile(clearJournal)
            return
        position = dump_position(self._SyncObj__raftLog, data[2], data[1])  # two entries read, not copied
        if position:
            self._cut_journal(position)
        serializer.deserialize = lambda: data  # read once: PySyncObj's load below takes it from here
        try:
            super()._SyncObj__loadDumpFile(clearJournal)
        finally:
            del serializer.deserialize

    def _SyncObj__deleteEntriesTo(self, toIDx: int) -> None:
        """After a snapshot: the journal keeps the entries from `toIDx` on."""
        journal = self._SyncObj__raftLog
        if len(journal) and toIDx > journal[0][1]:
            self._cut_journal(toIDx - journal[0][1])

    def _cut_journal(self, position: int) -> None:
        """The journal from `position` on, written to a new file renamed over the old one."""
        journal = self._SyncObj__raftLog
        if not isinstance(journal, FileJournal):  # in memory: no crash to survive
            journal.deleteEntriesTo(position)
            return
        path = self._SyncObj__conf.journalFile
        fresh_path = path + CUT_SUFFIX
        if os.path.exists(fresh_path):  # left by a master killed while cutting: never renamed
            os.remove(fresh_path)
        fresh = FileJournal(fresh_path)
        for i in range(position, len(journal)):
            fresh.add(*journal[i])
        fresh._destroy()
        commit_index = journal.getRaftCommitIndex()  # may be newer than the meta file's
        os.replace(fresh_path, path)
        journal._destroy()
        reopened = FileJournal(path)
        reopened.setRaftCommitIndex(commit_index)
        self._SyncObj__raftLog = reopened
