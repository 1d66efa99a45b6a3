"""The agent's probe bookkeeping: delays, thresholds, a restarted container probed afresh."""

from __future__ import annotations

from typing import Any

import pytest

from agent import probes
from agent.probes import ProbeRunner

Probe = dict[str, Any]


def pod(started: str, liveness: Probe | None = None, readiness: Probe | None = None) -> dict:
    container: dict[str, Any] = {"name": "main", "image": "busybox"}
    if liveness:
        container["livenessProbe"] = liveness
    if readiness:
        container["readinessProbe"] = readiness
    return {"metadata": {"name": "p", "namespace": "default", "uid": "u1"},
            "spec": {"containers": [container]},
            "status": {"podIP": "10.88.0.2", "containerStatuses": [
                {"name": "main", "state": {"running": {"startedAt": started}}}]}}


def test_thresholds_initial_delay_and_a_new_start(monkeypatch: pytest.MonkeyPatch) -> None:
    outcomes: list[bool] = []
    monkeypatch.setattr(probes, "run_probe", lambda *_: (outcomes.pop(0), "exec exited 1"))
    runner = ProbeRunner(masters=None, node="h1", runtime="podman")  # type: ignore[arg-type]
    live = {"exec": {"command": ["true"]}, "initialDelaySeconds": 5, "periodSeconds": 1,
            "failureThreshold": 2}
    ready = {"tcpSocket": {"port": 80}, "periodSeconds": 1, "successThreshold": 2}
    assert runner.sync([pod("100", live, ready)], now=0.0)
    state = runner._states
    assert state[("u1", "main", "liveness")].healthy and not state[("u1", "main", "readiness")].healthy
    outcomes[:] = [True]  # only readiness is due before the initial delay
    assert not runner.run_due(0.0)
    outcomes[:] = [True]
    assert runner.run_due(1.0) and state[("u1", "main", "readiness")].healthy  # 2 successes
    outcomes[:] = [False, True, False, True]
    runner.run_due(5.0)
    assert state[("u1", "main", "liveness")].healthy  # one failure: not yet
    assert runner.run_due(6.0) and not state[("u1", "main", "liveness")].healthy
    assert "liveness probe failed" in state[("u1", "main", "liveness")].message
    assert runner.sync([pod("200", live, ready)], now=7.0)  # restarted: probed afresh
    assert state[("u1", "main", "liveness")].healthy and state[("u1", "main", "liveness")].started_at == "200"
    assert runner.sync([], now=8.0) and runner._states == {}


class _CountingMasters:
    def __init__(self) -> None:
        self.lists = 0

    def call(self, method: str, path: str, body: Any = None) -> Any:
        if method == "GET":
            self.lists += 1
        return {"items": []}


def test_pods_are_listed_at_start_and_again_only_when_a_heartbeat_says_they_changed() -> None:
    from tests.harness import wait_until

    masters = _CountingMasters()
    runner = ProbeRunner(masters, node="h1", runtime="podman")  # type: ignore[arg-type]
    runner.start()
    try:
        wait_until(lambda: masters.lists == 1, 10, what="the first listing")
        runner.pods_changed(7)
        wait_until(lambda: masters.lists == 2, 10, what="a listing for revision 7")
        for _ in range(5):  # the same revision, heartbeat after heartbeat: no listing
            runner.pods_changed(7)
            runner._stop.wait(0.3)
        assert masters.lists == 2
        runner.pods_changed(9)
        wait_until(lambda: masters.lists == 3, 10, what="a listing for revision 9")
    finally:
        runner.stop()
