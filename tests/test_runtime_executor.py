"""The executor against a fake host: every result checked, a failed sandbox stops its pod's
actions, and background work ends with the term of leadership that began it."""

from __future__ import annotations

import threading

from master.runtime.actions import FindAddress, MakeSandbox, Outcome, RemoveContainer, RunContainer, StopPod
from master.runtime.driver import DRIVERS
from master.runtime.executor import Background, Executor
from master.runtime.ssh import CommandResult, Host

HOST = Host("h1", "10.0.0.1")


def pod(uid: str = "u1") -> dict:
    return {"kind": "Pod", "metadata": {"name": "web", "namespace": "default", "uid": uid},
            "spec": {"containers": [{"name": name, "image": "busybox"} for name in ("main", "side")]}}


class FakePool:
    """Answers each command by its verb: `fail` names verbs (argv[1:3] joined) that exit 1."""

    def __init__(self, fail: tuple[str, ...] = ()) -> None:
        self.fail = fail
        self.commands: list[list[str]] = []

    def run(self, host: Host, argv: list[str], timeout: float | None = None,
            stdin: bytes | None = None) -> CommandResult:
        self.commands.append(argv)
        verb = " ".join(argv[1:3])
        failed = any(verb.startswith(f) for f in self.fail)
        return CommandResult(tuple(argv), 1 if failed else 0, b"" if failed else b"x",
                             b"refused" if failed else b"")


def executor(pool: FakePool) -> Executor:
    return Executor(pool, lambda kind, namespace, name: None,  # type: ignore[arg-type] - a fake
                    Background(2, lambda node: None))


def test_a_failed_sandbox_runs_none_of_its_pods_containers() -> None:
    pool, web = FakePool(fail=("pod create",)), pod()
    actions = [MakeSandbox(web), RunContainer(web, web["spec"]["containers"][0]),
               RunContainer(web, web["spec"]["containers"][1]), FindAddress(web)]
    outcomes = executor(pool).execute("h1", HOST, DRIVERS["podman"], actions, lambda obj, err: None)
    assert [(o.ok, o.reason) for o in outcomes[:3]] == [(False, "CreatePodSandboxError")] * 3
    assert outcomes[0].message == "refused" and not [a for a in pool.commands if a[1] == "run"]


def test_every_result_is_checked() -> None:
    pool, web = FakePool(fail=("rm", "run")), pod()
    actions = [RemoveContainer("orphan"), RunContainer(web, web["spec"]["containers"][0])]
    outcomes = executor(pool).execute("h1", HOST, DRIVERS["podman"], actions, lambda obj, err: None)
    assert [(o.ok, o.reason) for o in outcomes] == [(False, "FailedRemove"), (False, "RunContainerError")]
    assert "removing it failed too" in outcomes[1].message  # the clean-up's failure is told as well


def test_background_work_ends_with_the_term_that_began_it() -> None:
    done: list[str] = []
    background = Background(1, done.append)
    gate, began, seen = threading.Event(), threading.Event(), {}

    def slow(alive) -> Outcome:  # type: ignore[no-untyped-def] - the callback's shape
        began.set()
        gate.wait(10)
        seen["alive"] = alive()
        return Outcome(StopPod(pod()))

    def never(alive) -> Outcome:  # type: ignore[no-untyped-def]
        seen["never"] = True
        return Outcome(StopPod(pod("u2")))

    background.submit(("u1", ""), "h1", slow)
    assert began.wait(10)
    background.submit(("u2", ""), "h1", never)  # queued behind the first (one worker)
    background.submit(("u1", ""), "h1", never)  # the same key while it runs: not twice
    assert background.busy() == {("u1", ""), ("u2", "")}
    background.cancel()  # leadership lost
    assert background.busy() == {("u1", "")}  # the queued one never starts
    gate.set()
    for _ in range(100):  # bounded: the running one notices and leaves
        if not background.busy():
            break
        threading.Event().wait(0.05)
    assert seen == {"alive": False} and background.drain() == [] and done == []
    background.shutdown()
