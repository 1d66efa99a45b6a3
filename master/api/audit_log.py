"""`audit.log`: the audit records as JSON lines, written by a thread of their own, rotated by size.

A request hands its record over and goes on: it never waits for the disk, and nothing here raises
into it. The queue is bounded (a disk that stalls must not grow the master's memory without end):
when it is full a record is dropped and counted, the master's log says so (at the 1st, 2nd, 4th,
8th ... drop: a flood writes a few lines), and the audit log itself gets a `RecordsDropped` line
with the count once it is written again, so a reader of the file knows records are missing and
where. A write that fails (disk full, permissions) is logged once, not per record, its records
counted the same way, and the file is tried again with the next ones.

Rotation is kube-apiserver's --audit-log-maxsize and --audit-log-maxbackup: a line that would take
the file past `max_bytes` starts a new one; `audit.log` becomes `audit.log.1`, `.1` becomes `.2`
... and what would go past `.{backups}` is deleted (with 0 backups the full file is deleted). Files
are 0600: they name every user and object. Lines are not fsynced one by one (a crash of the machine
may lose the last ones): an fsync per request would put the disk's latency back on the API.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
from pathlib import Path
from typing import Any

from berth.clock import utc_now
from master.json_codec import compact

log = logging.getLogger(__name__)
QUEUE_RECORDS = 10_000  # about 4 MB of records waiting for a stalled disk
BATCH = 512  # records written with one write()
_STOP = object()


class AuditLog:
    def __init__(self, path: str | Path, max_bytes: int, backups: int, queue_records: int = QUEUE_RECORDS):
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_records)
        self._lock = threading.Lock()
        self._drops_total = 0  # by a full queue, since the start
        self._missing = 0  # records lost (queue full, write failed) not yet told in the file
        self._failing = False
        self._fd: int | None = None
        self._size = 0
        self._thread = threading.Thread(target=self._run, name="audit-log", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def write(self, record: dict[str, Any]) -> None:
        """Never blocks, never raises: a full queue drops the record, and counts it."""
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            with self._lock:
                self._missing += 1
                self._drops_total += 1
                total = self._drops_total
            if total & (total - 1) == 0:
                log.warning("audit log: %d record(s) dropped so far, the writer is behind (queue of %d full)",
                            total, self._queue.maxsize)

    def close(self, timeout: float = 5.0) -> None:
        """Writes what is queued (within `timeout`), then closes the file."""
        if self._thread.is_alive():
            try:
                self._queue.put(_STOP, timeout=timeout)
            except queue.Full:
                log.warning("audit log: the writer did not catch up; queued records are lost")
            self._thread.join(timeout)
        if self._fd is not None and not self._thread.is_alive():
            os.close(self._fd)
            self._fd = None

    # --- the writer thread ------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            records = [r for r in batch if r is not _STOP]
            try:
                self._write(records)
            except Exception:  # a record that does not encode is a bug: said, and the writer goes on
                log.exception("audit log: records could not be written")
            if len(records) < len(batch):
                return

    def _write(self, records: list[dict[str, Any]]) -> None:
        with self._lock:
            missing, self._missing = self._missing, 0
        lines = [compact(r) + b"\n" for r in records]
        if missing:
            lines.append(compact({"time": utc_now(), "stage": "RecordsDropped", "count": missing}) + b"\n")
        try:
            self._append(lines)
        except OSError as err:
            self._close_file()
            with self._lock:
                self._missing += len(records) + missing
            if not self._failing:
                self._failing = True
                log.error("audit log %s cannot be written (%s): records are lost until it can", self.path,
                          err)
            return
        if self._failing:
            self._failing = False
            log.warning("audit log %s is written again", self.path)

    def _append(self, lines: list[bytes]) -> None:
        chunk = bytearray()
        for line in lines:
            if self._fd is None:
                self._open()
            if self._size + len(chunk) > 0 and self._size + len(chunk) + len(line) > self.max_bytes:
                self._flush(chunk)
                chunk.clear()
                self._rotate()
            chunk += line
        self._flush(chunk)

    def _flush(self, chunk: bytearray) -> None:
        view = memoryview(chunk)
        while view:
            assert self._fd is not None
            written = os.write(self._fd, view)
            self._size += written
            view = view[written:]

    def _open(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.fchmod(fd, 0o600)  # a file made by other hands keeps no wider mode
            self._size = os.fstat(fd).st_size
        except OSError:
            os.close(fd)
            raise
        self._fd = fd

    def _rotate(self) -> None:
        self._close_file()
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
        for number in range(self.backups, 0, -1):
            older = self.path if number == 1 else self.path.with_name(f"{self.path.name}.{number - 1}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{number}"))
        self._open()

    def _close_file(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.close(fd)
        self._size = 0
