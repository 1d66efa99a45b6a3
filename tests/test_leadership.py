"""Leader loops run rounds only between lead() and follow(), and only while the store agrees;
losing leadership stops their background work at once (master/server.py drives them)."""

from __future__ import annotations

import threading

from master.controllers.leader_loop import LeaderLoop
from master.runtime.actions import Outcome, StopPod
from master.runtime.controller import RuntimeController
from tests.harness import wait_until


class Store:
    def __init__(self) -> None:
        self.leading = True

    def is_leader(self) -> bool:
        return self.leading

    def add_listener(self, listener: object) -> None:
        pass

    def get(self, kind: str, namespace: str, name: str) -> None:
        return None


class Recorder(LeaderLoop):
    name = "recorder"

    def __init__(self, store: Store) -> None:
        super().__init__(store, period=0.02)  # type: ignore[arg-type] - a fake
        self.calls: list[str] = []
        self.rounds = 0

    def started_leading(self) -> None:
        self.calls.append("started")

    def stopped_leading(self) -> None:
        self.calls.append("stopped")

    def reconcile(self) -> None:
        self.rounds += 1


def test_a_loop_runs_rounds_only_while_it_leads() -> None:
    store = Store()
    loop, control = Recorder(store), Recorder(Store())  # the control leads throughout: the clock
    loop.start()
    control.start()
    control.lead()

    def control_ran(more: int) -> None:
        target = control.rounds + more
        wait_until(lambda: control.rounds >= target, 10, what="the control loop's rounds")

    try:
        control_ran(3)  # the loop had as many chances, and was never told to lead
        assert loop.rounds == 0 and loop.calls == []
        loop.lead()
        wait_until(lambda: loop.rounds >= 2, 10, what="rounds once leading")
        assert loop.calls == ["started"]  # once per term, before its first round
        loop.follow()
        assert loop.calls == ["started", "stopped"]  # at once, in the caller's thread
        after = loop.rounds
        control_ran(3)
        assert loop.rounds == after
        store.leading = False  # told to lead, but the store no longer agrees: no round
        loop.lead()
        control_ran(3)
        assert loop.rounds == after
        store.leading = True
        wait_until(lambda: loop.rounds > after, 10, what="rounds when the store agrees again")
        assert loop.calls == ["started", "stopped", "started"]  # a new term
    finally:
        loop.stop()
        control.stop()
    assert loop.calls[-1] == "stopped"  # stopping while leading ends the term too


def test_losing_leadership_cancels_the_runtimes_background_work() -> None:
    runtime = RuntimeController(Store(), pool=None, now=lambda: "t", uid=lambda: "u")  # type: ignore[arg-type]
    gate, began, seen = threading.Event(), threading.Event(), {}

    def stop(alive) -> Outcome:  # type: ignore[no-untyped-def] - the callback's shape
        began.set()
        gate.wait(10)
        seen["alive"] = alive()
        return Outcome(StopPod({"metadata": {"uid": "u1"}}))

    try:
        runtime.lead()
        runtime.background.submit(("u1", ""), "h1", stop)
        assert began.wait(10)
        runtime.follow()  # another master leads now
        gate.set()
        wait_until(lambda: "alive" in seen, 10, what="the stop to notice")
        assert seen == {"alive": False} and runtime.background.drain() == []
    finally:
        gate.set()
        runtime.stop()
