"""Self-fencing: a host cut off from every master stops its own Berth containers.

While no master accepts this agent's heartbeats, the leader cannot know whether the host is down
or only cut off, and after `fence_after_seconds` (a little longer than a lost node's pods take to
be moved, master setting `default_eviction_seconds`) it has made their replacements elsewhere.
Stopping the copies here then keeps two copies of a pod from running for longer than that: the
fence time bounds how long a partition can double a workload. The price: if every master is down
(not merely one, and not an election: any accepted heartbeat resets the clock) for that long,
every host stops its pods, and the runtime starts them again once the masters are back. A pod
annotated `berth.io/self-fence: "false"` is never stopped here (for what must run through a
control-plane outage); `fence_after_seconds: 0` turns fencing off for the host.

Containers are found by Berth's label and stopped with the engine's own stop (SIGTERM, SIGKILL
after the grace), each argument its own list element. What was done is kept until a master
answers again, then reported as the Node's `SelfFenced` condition (master/controllers/node_check.py
turns it into an event).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.engine import Running, running

log = logging.getLogger(__name__)
OPT_OUT = "berth.io/self-fence"
STOP_GRACE_SECONDS = 10


@dataclass(frozen=True)
class Fenced:
    at: str
    stopped: int
    silent_seconds: float


def to_stop(containers: list[Running], opted_out: set[str]) -> list[str]:
    return [c.id for c in containers if c.pod_uid not in opted_out]


def opted_out(pods: list[dict[str, Any]]) -> set[str]:
    return {p["metadata"]["uid"] for p in pods
            if ((p["metadata"].get("annotations") or {}).get(OPT_OUT) or "").lower() == "false"}


def _run(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True).stdout


class SelfFence:
    def __init__(self, runtime: str, after: float, run: Callable[[list[str]], str] = _run,
                 clock: Callable[[], float] = time.monotonic, record: Path | None = None) -> None:
        """`record`: a file that keeps a fence not yet reported across a restart of the agent (the
        leader restarts an agent that answers SSH but not heartbeats, as one just healed may)."""
        self.runtime = runtime
        self.after = after
        self.run = run
        self.clock = clock
        self.record = record
        self.last_contact = clock()
        self.failures = 0  # attempts in a row that no master answered
        self.opted_out: set[str] = set()  # pod uids, from the agent's latest listing of its pods
        self.fenced: Fenced | None = self._recorded()  # done while cut off, not yet reported

    def _recorded(self) -> Fenced | None:
        if self.record is None or not self.record.exists():
            return None
        try:
            return Fenced(**json.loads(self.record.read_text()))
        except (OSError, ValueError, TypeError) as err:
            log.warning("self-fence: unreadable record %s (%s): not reported", self.record, err)
            return None

    def _keep(self, fenced: Fenced) -> None:
        if self.record is None:
            return
        try:
            scratch = self.record.with_suffix(".tmp")
            scratch.write_text(json.dumps(asdict(fenced)))
            os.replace(scratch, self.record)
        except OSError as err:
            log.warning("self-fence: could not keep its record in %s: %s", self.record, err)

    def contact(self) -> Fenced | None:
        """A master accepted a heartbeat: the clock starts again. What was fenced is returned until
        `reported()` (a report refused in the turmoil of a heal is tried again at the next beat)."""
        self.last_contact = self.clock()
        self.failures = 0
        return self.fenced

    def reported(self) -> None:
        self.fenced = None
        if self.record is not None:
            self.record.unlink(missing_ok=True)

    def pods(self, pods: list[dict[str, Any]]) -> None:
        self.opted_out = opted_out(pods)

    def no_answer(self) -> Fenced | None:
        """A heartbeat got no master's answer: stops the containers once, when the silence passes
        the fence time and this was not the first attempt in a row to fail (a fence already done
        waits for contact).

        Called after an attempt, never before one: an agent that was paused (SIGSTOP, a frozen VM)
        wakes with a long silence on its clock that says nothing about the masters, and its first
        act must be to ask them. Two failures in a row, not one, because a request under way when
        the pause began fails on waking (its socket timeout ran out meanwhile)."""
        self.failures += 1
        silent = self.clock() - self.last_contact
        if self.after <= 0 or silent < self.after or self.failures < 2 or self.fenced is not None:
            return None  # not yet, or off, or done already (and not yet reported)
        try:
            ids = to_stop(running(self.runtime, self.run), self.opted_out)
            if ids:
                self.run([self.runtime, "stop", f"--time={STOP_GRACE_SECONDS}", "--", *ids])
        except (subprocess.SubprocessError, OSError, ValueError, KeyError) as err:
            log.error("self-fence: could not stop this host's containers: %s", err)
            return None  # tried again at the next beat
        self.fenced = Fenced(datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), len(ids), round(silent, 1))
        self._keep(self.fenced)
        log.warning("self-fence: no master for %.0f s: stopped %d container(s)", silent, len(ids))
        return self.fenced
