"""Which lines `logs` and `logs --previous` show, from the container's stored status."""

from __future__ import annotations

import pytest

from master.api.log_window import LogWindow, NoPreviousRun, log_window

NOW = 1_800_000_000


def running(started: int, restarts: int = 0, last: dict | None = None) -> dict:
    entry = {"state": {"running": {"startedAt": str(started)}}, "restartCount": restarts}
    return {**entry, "lastState": {"terminated": last}} if last else entry


CRASHED = {"exitCode": 1, "reason": "Error", "startedAt": "1000", "finishedAt": "1005"}
LOOPING = {"state": {"waiting": {"reason": "CrashLoopBackOff"}}, "restartCount": 2,
           "lastState": {"terminated": CRASHED}}


@pytest.mark.parametrize(("what", "entry", "previous", "since", "window"), [
    ("never restarted: everything", running(1000), False, None, LogWindow()),
    ("never restarted, --since: relative, as the runtime reads it", running(1000), False, 60,
     LogWindow(since="60s")),
    ("restarted: from the current run's start", running(1010, 1, CRASHED), False, None,
     LogWindow(since="1010")),
    ("restarted, --since later than the start", running(NOW - 3600, 1, CRASHED), False, 60,
     LogWindow(since=str(NOW - 60))),
    ("restarted, --since earlier than the start: the start", running(NOW - 30, 1, CRASHED), False, 600,
     LogWindow(since=str(NOW - 30))),
    ("previous: the last run, up to the current one's start", running(1010, 1, CRASHED), True, None,
     LogWindow(since="1000", until="1010")),
    ("crash loop, waiting: the current is the run that crashed",
     LOOPING, False, None, LogWindow(since="1000")),
    ("crash loop, previous: the run that crashed, to a second after it ended",
     LOOPING, True, None, LogWindow(since="1000", until="1006")),
    ("OnFailure that then succeeded: previous is the failed run",
     {"state": {"terminated": {"exitCode": 0, "startedAt": "1010", "finishedAt": "1011"}}, "restartCount": 1,
      "lastState": {"terminated": CRASHED}}, True, None, LogWindow(since="1000", until="1010")),
    ("liveness restart under way (start not known yet): previous runs to now",
     {"state": {"running": {"startedAt": ""}}, "restartCount": 1,
      "lastState": {"terminated": {"reason": "Unhealthy", "startedAt": "1000"}}}, True, None,
     LogWindow(since="1000")),
])
def test_log_windows(what: str, entry: dict, previous: bool, since: int | None, window: LogWindow) -> None:
    assert log_window(entry, previous, since, NOW) == window, what


@pytest.mark.parametrize("entry", [
    running(1000),  # never ended a run
    {},  # no status yet
    running(1010, 1, {"reason": "ImageChanged", "startedAt": "1000"}),  # a new container: old output gone
])
def test_no_previous_run(entry: dict) -> None:
    with pytest.raises(NoPreviousRun):
        log_window(entry, True, None, NOW)
