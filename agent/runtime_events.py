"""The agent's report of what changes among Berth's containers on its host, as it happens.

The leader lists a host over SSH only when something may have changed there (a pod
bound to it changed, a container of it is still settling, or a resync period passed),
so that an idle cluster of many hosts is not listed every second. What it cannot see
from the store, a container dying or removed by hand, the host's runtime announces, and
the agent passes each batch of changes to the masters at once; the leader then looks at the
host in its next round (master/runtime/attention.py).

The events are read without a child process (a `podman events` child cost 32 MB, as much as
the agent itself): podman's from the events file it writes (`events_logger = "file"`,
followed as `tail -F` would: a rotated or truncated file is opened again from its start),
docker's from its API socket (`GET /events`, a stream of JSON lines). A stream that ends is
started again, and every (re)start is reported too: changes may have happened while nobody
was listening.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import queue
import socket
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from agent.masters import ApiError, Masters, MasterUnavailable
from berth.containers import EVENT_STREAMS, MANAGED, RuntimeEvent

log = logging.getLogger(__name__)
MAX_EVENTS_PER_REPORT = 200
PODMAN_EVENTS_FILE = "/run/libpod/events/events.log"  # with containers.conf's tmp_dir = "/run/libpod"


def event_json(event: RuntimeEvent) -> dict[str, Any]:
    return {"container": event.container, "action": event.action,
            **({"exitCode": event.exit_code} if event.exit_code is not None else {})}


class FileTail:
    """The lines appended to a file from now on, as `tail -F`: waits for the file to exist, and
    opens it again from its start when it was replaced or truncated (rotation)."""

    def __init__(self, path: Path, poll_seconds: float = 0.2) -> None:
        self.path = path
        self.poll_seconds = poll_seconds
        self.opened = threading.Event()  # set once the file is open (what comes after is read)

    def lines(self, stop: threading.Event) -> Iterator[str]:
        handle, inode, pending, from_start = None, None, "", False  # at first, only what comes from now on
        try:
            while not stop.is_set():
                if handle is None:
                    try:
                        handle = self.path.open("r", encoding="utf-8", errors="replace")
                    except OSError:
                        from_start = True  # made after we began to wait: all of it is news
                        stop.wait(self.poll_seconds)
                        continue
                    inode = os.fstat(handle.fileno()).st_ino
                    if not from_start:
                        handle.seek(0, os.SEEK_END)
                    self.opened.set()
                chunk = handle.read()
                if chunk:
                    pending += chunk
                    *complete, pending = pending.split("\n")
                    yield from (line for line in complete if line.strip())
                    continue
                try:
                    now = os.stat(self.path)
                    replaced = now.st_ino != inode or now.st_size < handle.tell()
                except OSError:
                    replaced = True
                if replaced:
                    handle.close()
                    handle, pending, from_start = None, "", True  # the new file is read from its start
                    continue
                stop.wait(self.poll_seconds)
        finally:
            if handle is not None:
                handle.close()


class DockerSocket:
    """docker's event stream from its API socket, filtered to Berth's containers by the engine."""

    def __init__(self, path: Path = Path("/var/run/docker.sock"), timeout: float = 3600.0) -> None:
        self.path = path
        self.timeout = timeout

    def lines(self, stop: threading.Event) -> Iterator[str]:
        filters = json.dumps({"type": ["container"], "label": [f"{MANAGED}=true"]})
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as unix:
            unix.settimeout(self.timeout)
            unix.connect(str(self.path))
            connection = http.client.HTTPConnection("docker")
            connection.sock = unix
            connection.request("GET", "/events?filters=" + urllib.parse.quote(filters))
            response = connection.getresponse()
            if response.status != 200:
                raise OSError(f"docker events: HTTP {response.status}")
            while not stop.is_set():
                line = response.readline()
                if not line:
                    return
                if line.strip():
                    yield line.decode(errors="replace")


def event_source(runtime: str, podman_events_file: Path) -> FileTail | DockerSocket:
    return FileTail(podman_events_file) if runtime == "podman" else DockerSocket()


class RuntimeEventWatch:
    def __init__(self, masters: Masters, node: str, runtime: str, source: FileTail | DockerSocket,
                 gather_seconds: float = 0.2, restart_seconds: float = 5.0,
                 changed: Callable[[], None] = lambda: None) -> None:
        """`changed`: told of every batch (the usage readings list the containers again)."""
        self.masters = masters
        self.node = node
        self.changed = changed
        self.events = EVENT_STREAMS[runtime]
        self.source = source
        self.gather_seconds = gather_seconds
        self.restart_seconds = restart_seconds
        self._queue: queue.Queue[RuntimeEvent | None] = queue.Queue()
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._follow, name="runtime-events", daemon=True)
        self._sender = threading.Thread(target=self._send, name="runtime-reports", daemon=True)

    def start(self) -> None:
        self._reader.start()
        self._sender.start()

    def stop(self) -> None:
        self._stop.set()
        self._queue.put(None)
        self._reader.join(timeout=10)
        self._sender.join(timeout=10)

    def _follow(self) -> None:
        """Read the runtime's events; follow them again whenever the stream ends."""
        while not self._stop.is_set():
            self._queue.put(RuntimeEvent("", "listening"))  # what happened while nobody listened
            try:
                for line in self.source.lines(self._stop):
                    event = self.events.parse(line)
                    if event is not None:
                        self._queue.put(event)
            except (OSError, http.client.HTTPException) as err:
                log.warning("following %s events: %s", self.events.binary, err)
            if not self._stop.is_set():
                log.warning("%s events ended; following them again", self.events.binary)
                self._stop.wait(self.restart_seconds)

    def _send(self) -> None:
        """One report per burst: the first event, then whatever follows within gather_seconds."""
        while not self._stop.is_set():
            first = self._queue.get()
            if first is None:
                return
            self._stop.wait(self.gather_seconds)
            batch = [first]
            while len(batch) < MAX_EVENTS_PER_REPORT:
                try:
                    event = self._queue.get_nowait()
                except queue.Empty:
                    break
                if event is None:
                    return
                batch.append(event)
            self.changed()
            try:
                self.report(batch)
            except Exception:  # a bad report must not end the loop (the resync covers its loss)
                log.exception("runtime events report failed")

    def report(self, events: list[RuntimeEvent]) -> None:
        body = {"events": [event_json(e) for e in events]}
        try:
            self.masters.call("POST", f"/api/v1/nodes/{self.node}/runtime-events", body)
        except MasterUnavailable as err:
            log.warning("runtime events: %s", err)
        except ApiError as err:
            log.warning("runtime events refused: %s", err)
