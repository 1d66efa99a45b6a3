"""The agent's report of what changes among Berth's containers on its host, as it happens.

The leader lists a host over SSH only when something may have changed there (a pod
bound to it changed, a container of it is still settling, or a resync period passed),
so that an idle cluster of many hosts is not listed every second. What it cannot see
from the store, a container dying or removed by hand, the host's runtime announces:
the agent follows `podman events` (or `docker events`), filtered to Berth's labels,
and passes each batch of changes to the masters at once. The leader then looks at the
host in its next round (master/runtime/attention.py). A stream that ends (the runtime
restarted) is started again, and every (re)start is reported too: changes may have
happened while nobody was listening.
"""

from __future__ import annotations

import logging
import queue
import shutil
import subprocess
import threading
from typing import Any

from agent.masters import ApiError, Masters, MasterUnavailable
from berth.containers import EVENT_STREAMS, RuntimeEvent

log = logging.getLogger(__name__)
MAX_EVENTS_PER_REPORT = 200


def event_json(event: RuntimeEvent) -> dict[str, Any]:
    return {"container": event.container, "action": event.action,
            **({"exitCode": event.exit_code} if event.exit_code is not None else {})}


def _dies_with_its_parent(argv: list[str]) -> list[str]:
    """The stream ends when the agent does, even killed (SIGKILL): else every agent restart would
    leave one more `podman events` behind. setpriv (util-linux, on every Debian) sets the parent-
    death signal, then runs the command."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--", *argv] if setpriv else argv


class RuntimeEventWatch:
    def __init__(self, masters: Masters, node: str, runtime: str, gather_seconds: float = 0.2,
                 restart_seconds: float = 5.0) -> None:
        self.masters = masters
        self.node = node
        self.events = EVENT_STREAMS[runtime]
        self.gather_seconds = gather_seconds
        self.restart_seconds = restart_seconds
        self._queue: queue.Queue[RuntimeEvent | None] = queue.Queue()
        self._stop = threading.Event()
        self._process: subprocess.Popen[str] | None = None
        self._reader = threading.Thread(target=self._follow, name="runtime-events", daemon=True)
        self._sender = threading.Thread(target=self._send, name="runtime-reports", daemon=True)

    def start(self) -> None:
        self._reader.start()
        self._sender.start()

    def stop(self) -> None:
        self._stop.set()
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
        self._queue.put(None)
        self._reader.join(timeout=10)
        self._sender.join(timeout=10)

    def _follow(self) -> None:
        """Read the runtime's event stream; start it again whenever it ends."""
        while not self._stop.is_set():
            try:
                self._process = subprocess.Popen(_dies_with_its_parent(self.events.command()),
                                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            except OSError as err:
                log.warning("cannot follow %s events: %s", self.events.binary, err)
                self._stop.wait(self.restart_seconds)
                continue
            self._queue.put(RuntimeEvent("", "listening"))  # what happened while nobody listened
            assert self._process.stdout is not None
            for line in self._process.stdout:
                event = self.events.parse(line)
                if event is not None:
                    self._queue.put(event)
            self._process.wait()
            if not self._stop.is_set():
                log.warning("%s events ended (exit %s); starting it again", self.events.binary,
                            self._process.returncode)
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
