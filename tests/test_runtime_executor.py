"""The executor against a fake host: every result checked, a failed sandbox stops its pod's
actions, and background work ends with the term of leadership that began it."""

from __future__ import annotations

import threading

from master.runtime.actions import (
    FindAddress,
    MakeSandbox,
    Outcome,
    RemoveContainer,
    ReplaceContainer,
    RunContainer,
    StopPod,
)
from master.runtime.controller import RuntimeController
from master.runtime.driver import DRIVERS
from master.runtime.executor import Background, Executor, pull_error
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


REFUSED = 'Get "https://localhost/v2/": dial tcp 127.0.0.1:443: connect: connection refused'
PODMAN_PULL = ('Trying to pull localhost/berth-missing:nope...\n'
               'time="2026-11-30T08:05:52Z" level=warning msg="Failed, retrying in 1s ... (1/3). Error: '
               'initializing source docker://localhost/berth-missing:nope: ..."\n'
               'Error: initializing source docker://localhost/berth-missing:nope: pinging container '
               f'registry localhost: {REFUSED}\n').encode()
DOCKER_PULL = f"Error response from daemon: {REFUSED}\n".encode()


class ImageHost(FakePool):
    """A host that has the images in `present` and whose registry answers no pull (`pull_error`)."""

    def __init__(self, present: tuple[str, ...] = (), pull_error: bytes | None = PODMAN_PULL) -> None:
        super().__init__()
        self.present, self.pull_error = present, pull_error

    def run(self, host: Host, argv: list[str], timeout: float | None = None,
            stdin: bytes | None = None) -> CommandResult:
        self.commands.append(argv)
        if argv[1:3] == ["image", "inspect"]:
            return CommandResult(tuple(argv), 0 if argv[-1] in self.present else 125, b"", b"image not known")
        if argv[1] == "pull" and self.pull_error is not None:
            return CommandResult(tuple(argv), 125, b"", self.pull_error)
        return CommandResult(tuple(argv), 0, b"[]" if argv[1] == "ps" else b"x", b"")

    def verbs(self) -> list[str]:
        return [" ".join(argv[1:3]) if argv[1] == "image" else argv[1] for argv in self.commands]


def make(policy: str | None, host: ImageHost, image: str = "busybox", replace: bool = False) -> Outcome:
    web = pod()
    container = {**web["spec"]["containers"][0], "image": image, "imagePullPolicy": policy}
    action = ReplaceContainer(web, container, "busybox:old") if replace else RunContainer(web, container)
    [outcome] = executor(host).execute("h1", HOST, DRIVERS["podman"], [action], lambda obj, err: None)
    return outcome


def test_a_container_gets_its_image_first_as_its_pull_policy_says() -> None:
    """(policy, image on the host, pull works) -> the commands run and how the make ended."""
    cases = [
        (None, True, False, ["image inspect", "run"], ""),
        ("IfNotPresent", False, True, ["image inspect", "pull", "run"], ""),
        (None, False, False, ["image inspect", "pull"], "ErrImagePull"),
        ("Never", False, True, ["image inspect"], "ErrImageNeverPull"),
        ("Never", True, False, ["image inspect", "run"], ""),
        ("Always", True, True, ["pull", "run"], ""),  # pulled every time, present or not
        ("Always", True, False, ["pull"], "ErrImagePull"),
    ]
    for policy, present, pulls, verbs, reason in cases:
        host = ImageHost(("busybox",) if present else (), None if pulls else PODMAN_PULL)
        outcome = make(policy, host)
        assert (host.verbs(), outcome.reason) == (verbs, reason), (policy, present, pulls)
    refused = make(None, ImageHost())
    # the last line, without the engine's prefix
    assert refused.message == ("initializing source docker://localhost/berth-missing:nope: pinging container "
                               f"registry localhost: {REFUSED}")
    assert pull_error(DOCKER_PULL) == REFUSED
    assert pull_error(b"") and len(pull_error(b"Error: " + b"x" * 1000)) == 300
    never = make("Never", ImageHost(), image="localhost/berth-missing:nope")
    assert never.message == ('Container image "localhost/berth-missing:nope" is not present with pull policy '
                             "of Never")
    # a new image for a running container: the old one goes first (as a kubelet kills it), then the image
    host = ImageHost()
    assert make(None, host, replace=True).reason == "ErrImagePull" and host.verbs() == ["rm", "image inspect",
                                                                                          "pull"]


def test_the_leader_remembers_a_failed_pull_for_its_back_off_and_forgets_it_with_the_pod() -> None:
    """The runtime's rounds on a host lacking the image: ErrImagePull, then ImagePullBackOff with no
    attempt (the restart back-off, 10 s, has not passed), each told by an event; a new term, or the
    pod gone, forgets the failure."""
    from tests.test_isolation import NOW, FakeStore, node
    from tests.test_isolation import pod as bound_pod

    store = FakeStore(node("h1"), bound_pod("web", "h1"))
    host = ImageHost()
    controller = RuntimeController(store, host, lambda: NOW, lambda: "u")  # type: ignore[arg-type]

    def waiting() -> dict:
        return store.get("Pod", "default", "web")["status"]["containerStatuses"][0]["state"]["waiting"]

    try:
        controller.started_leading()
        controller.reconcile()
        assert waiting()["reason"] == "ErrImagePull" and "connection refused" in waiting()["message"]
        assert host.verbs().count("pull") == 1
        controller.attention.mark(["h1"])
        controller.reconcile()
        assert waiting()["reason"] == "ImagePullBackOff" and host.verbs().count("pull") == 1
        events = {e["reason"]: e for e in store.state.list("Event")}
        assert events["Failed"]["message"].startswith('Failed to pull image "localhost/busybox:lab": ')
        assert (events["BackOff"]["type"], events["BackOff"]["message"]) == (
            "Normal", 'Back-off pulling image "localhost/busybox:lab"')
        assert store.get("Pod", "default", "web")["status"]["containerStatuses"][0]["restartCount"] == 0
        assert list(controller.pulls.snapshot()) == [(store.get("Pod", "default", "web")["metadata"]["uid"],
                                                      "main")]
        controller.stopped_leading()  # another leader tries at once
        assert controller.pulls.snapshot() == {}
        controller.reconcile()
        assert host.verbs().count("pull") == 2 and controller.pulls.snapshot()
        del store.state.objects["Pod"][("default", "web")]
        controller.reconcile()
        assert controller.pulls.snapshot() == {}  # the pod is gone, and so is its record
    finally:
        controller.stop()
