"""When the leader's node check restarts a silent node's agent (master/controllers/node_check.py):
not before the node has been silent RESTART_AFTER seconds, so that an agent restarting on its own (a
rolling upgrade, systemd) comes back first, and then at most every RESTART_EVERY seconds."""

from __future__ import annotations

import pytest

from master.controllers.node_check import RESTART_AFTER, RESTART_EVERY, restart_due

SILENT = 1000.0  # when the node was first seen silent


@pytest.mark.parametrize(("now", "last_restart", "due"), [
    (SILENT, None, False),  # just gone silent: a restarting agent is given time
    (SILENT + RESTART_AFTER - 0.1, None, False),
    (SILENT + RESTART_AFTER, None, True),
    (SILENT + RESTART_AFTER + 60, None, True),
    (SILENT + RESTART_AFTER + 1, SILENT + RESTART_AFTER, False),  # restarted a second ago
    (SILENT + RESTART_AFTER + RESTART_EVERY, SILENT + RESTART_AFTER, True),  # still silent after it
])
def test_a_silent_agent_is_restarted_after_a_wait_and_then_seldom(now: float, last_restart: float | None,
                                                                  due: bool) -> None:
    assert restart_due(now, SILENT, last_restart) is due
