"""Which of a container's lines `logs` shows: its current run, or with `previous` the one before.

Berth restarts a container in place (`podman start` of the same container), so the runtime's
log holds every run; Kubernetes makes a new container per run and shows the current one, or
the last terminated one with `--previous`. The runs' bounds are in the pod's status (whole
seconds), so the window is cut there: a run's lines are those from its start to the next
run's start. Lines written in the very second of a restart may fall on the other side of the
cut; a back-off of a second or more (any crash restart) keeps the runs apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from berth.objects import Obj


class NoPreviousRun(LookupError):
    """The container has not ended a run this container still holds the output of."""


@dataclass(frozen=True)
class LogWindow:
    since: str | None = None  # what the runtimes' `logs --since` takes: unix seconds, or "Ns" ago
    until: str | None = None


def _seconds(value: object) -> int | None:
    text = str(value or "")
    return int(text) if text.isdigit() and int(text) > 0 else None


def log_window(entry: Obj, previous: bool, since_seconds: int | None, now: float) -> LogWindow:
    """`entry`: the container's stored status. `since_seconds`: the user's `--since`, which
    narrows the current run's window (refused with `previous` before this is called)."""
    state = entry.get("state") or {}
    current = state.get("running") or state.get("terminated")
    current_start = _seconds((current or {}).get("startedAt"))
    last = (entry.get("lastState") or {}).get("terminated") or {}
    last_start = _seconds(last.get("startedAt"))
    if previous:
        # none yet, or an image change made a new container and the old one's output went with it
        if last_start is None or last.get("reason") == "ImageChanged":
            raise NoPreviousRun
        if current is None:  # waiting to run again: the last run is the one that ended
            finished = _seconds(last.get("finishedAt"))
            end = None if finished is None else finished + 1
        else:
            end = current_start
        return LogWindow(since=str(last_start), until=None if end is None else str(end))
    start = None
    if int(entry.get("restartCount") or 0) > 0:  # earlier runs' lines are the container's too
        start = current_start if current is not None else last_start
    if since_seconds is None:
        return LogWindow(since=None if start is None else str(start))
    if start is None:
        return LogWindow(since=f"{since_seconds}s")
    return LogWindow(since=str(max(start, int(now) - since_seconds)))
