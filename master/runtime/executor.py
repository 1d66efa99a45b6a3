"""Runs the planner's actions on a host, through its driver and SSH, and says how each went.

Every command's result is checked: a failure becomes the action's Outcome (the pod's
status shows it, status.py) or, for what no status shows (an orphan that will not go, a
stop that failed), an event (outcome_events). An SshError is not an outcome: the host went
away mid-round, and the next look sees what is left to do.

A container is made as a kubelet makes one: its image first (present on the host, or
pulled as its imagePullPolicy allows: ErrImagePull, ErrImageNeverPull), then the run,
which never pulls. A failed pull is told apart from a failed run by the step, not by
reading the engines' messages, which differ between podman and docker and their versions.

Graceful stops and liveness restarts wait up to a pod's grace, so they run in the
background (Background), one at a time per pod or container. When this master stops
leading, queued work is cancelled and running work runs no further command; what it
finished is dropped rather than reported to a later term.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from berth.containers import container_name
from berth.objects import Obj
from master.runtime.actions import (
    Action,
    FindAddress,
    ForgetPod,
    MakeSandbox,
    MountVolumes,
    Outcome,
    RemoveContainer,
    RemoveSandbox,
    ReplaceContainer,
    RestartContainer,
    RestartUnhealthy,
    RunContainer,
    StopPod,
    SweepVolumes,
    pod_uid,
)
from master.runtime.driver import Driver
from master.runtime.env import EnvError, Lookup, resolve_env
from master.runtime.files import write_files
from master.runtime.port_forward import python_argv
from master.runtime.pulls import ERR_IMAGE_NEVER_PULL, ERR_IMAGE_PULL, never_pull_message
from master.runtime.ssh import CommandResult, Host, SshError, SshPool
from master.runtime.volumes import FAILED_MOUNT, VolumeError, files, has_volumes, host_plan
from master.store.encryption import SealError

VOLUME_HOST_SOURCE = (Path(__file__).with_name("volume_host.py")).read_text()

log = logging.getLogger(__name__)
BusyKey = tuple[str, str]  # (pod uid, container name), or (pod uid, "") for the whole pod
Timed = Callable[[str, float], None]  # (an action's type, the seconds its host commands took)
LISTING = "ListContainers"  # the verb of a round's look at a host (controller.py), beside the actions'


def verb(action: Action) -> str:
    """An action's type, the `verb` of `berth_runtime_ssh_command_duration_seconds`: one of a fixed
    set (actions.Action), never anything of the command it runs."""
    return type(action).__name__


def grace_left(pod: Obj) -> int:
    """Seconds of a graceful delete's grace period still to run (0 when it is over)."""
    meta = pod["metadata"]
    try:
        since = datetime.fromisoformat(meta["deletionTimestamp"])
    except (KeyError, ValueError):
        return 0
    elapsed = (datetime.now(UTC) - since).total_seconds()
    return max(0, math.ceil(int(meta.get("deletionGracePeriodSeconds") or 0) - elapsed))


def _stderr(result: CommandResult) -> str:
    return result.stderr.decode(errors="replace").strip()[:500]


ERROR_PREFIXES = ("Error response from daemon: ", "Error: ")


def pull_error(stderr: bytes) -> str:
    """The engine's own error, short: a pull's last line (podman logs each retry before it) without
    the engine's prefix."""
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    last = lines[-1] if lines else "the pull failed and the engine said nothing"
    for prefix in ERROR_PREFIXES:
        last = last.removeprefix(prefix)
    return last[:300]


class Background:
    """Work that outlasts a round. One at a time per key; `cancel()` ends a term of leadership:
    queued work never starts, running work asks `alive()` before each command and stops."""

    def __init__(self, workers: int, on_done: Callable[[str], None]) -> None:
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="runtime-background")
        self._on_done = on_done  # the node to look at again once the work ended
        self._lock = threading.Lock()
        self._term = 0
        self._running: dict[BusyKey, Future[None]] = {}
        self._finished: list[Outcome] = []

    def busy(self) -> frozenset[BusyKey]:
        with self._lock:
            return frozenset(self._running)

    def submit(self, key: BusyKey, node: str, work: Callable[[Callable[[], bool]], Outcome]) -> None:
        with self._lock:
            if key in self._running:
                return
            term = self._term

            def alive() -> bool:
                return self._term == term

            def run() -> None:
                try:
                    outcome = work(alive) if alive() else None
                except Exception:  # a bug, not the host: the work tells the host's failures as outcomes
                    log.exception("node %s: background work failed", node)
                    outcome = None
                with self._lock:
                    self._running.pop(key, None)
                    if outcome is not None and alive():
                        self._finished.append(outcome)
                if alive():
                    self._on_done(node)

            self._running[key] = self._pool.submit(run)

    def drain(self) -> list[Outcome]:
        """What background work finished since the last drain, in this term."""
        with self._lock:
            finished, self._finished = self._finished, []
        return finished

    def cancel(self) -> None:
        with self._lock:
            self._term += 1
            self._finished.clear()
            for key, future in list(self._running.items()):
                if future.cancel():  # never started; a started one leaves when it returns
                    del self._running[key]

    def shutdown(self) -> None:
        self.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)


class Executor:
    def __init__(self, pool: SshPool, lookup: Lookup, background: Background,
                 timed: Timed = lambda verb, seconds: None) -> None:
        """`timed`: told how long each action's commands took (graceful stops and liveness restarts
        when their background work ends), for the master's metrics."""
        self.pool = pool
        self.lookup = lookup  # ConfigMaps and Secrets, for containers' env
        self.background = background
        self.timed = timed

    def execute(self, node: str, host: Host, driver: Driver, actions: list[Action],
                broken: Callable[[Obj, Exception], object]) -> list[Outcome]:
        """Run `actions` in order. A pod whose sandbox could not be made gets no more of its
        actions run (they fail with the sandbox's reason). An action that raises (not SSH) fails
        with RunContainerError and goes to `broken`; the others go on."""
        outcomes: list[Outcome] = []
        no_sandbox: dict[str, Outcome] = {}
        for action in actions:
            uid = pod_uid(action)
            if uid in no_sandbox and not isinstance(action, FindAddress):
                failed = no_sandbox[uid]
                outcomes.append(Outcome.failed(action, failed.reason, failed.message))
                continue
            started = time.monotonic()
            try:
                outcome = self._run(node, host, driver, action)
                if not outcome.background:
                    self.timed(verb(action), time.monotonic() - started)
            except EnvError as err:
                outcome = Outcome.failed(action, "CreateContainerConfigError", str(err))
            except VolumeError as err:
                outcome = Outcome.failed(action, FAILED_MOUNT, str(err))
            except SealError as err:  # a Secret's value under a key this master lacks: said, as a bad ref
                reason = FAILED_MOUNT if isinstance(action, MountVolumes) else "CreateContainerConfigError"
                outcome = Outcome.failed(action, reason, err.message)
            except SshError:
                raise
            except Exception as err:
                if getattr(action, "pod", None) is not None:
                    broken(action.pod, err)  # type: ignore[union-attr] - checked
                reason = "CreatePodSandboxError" if isinstance(action, MakeSandbox) else "RunContainerError"
                outcome = Outcome.failed(action, reason, f"{err}")
            if isinstance(action, MakeSandbox | MountVolumes) and not outcome.ok and uid is not None:
                no_sandbox[uid] = outcome
            outcomes.append(outcome)
        return outcomes

    def _run(self, node: str, host: Host, driver: Driver, action: Action) -> Outcome:
        run = self.pool.run
        match action:
            case RemoveContainer(target=target) | RemoveSandbox(target=target):
                log.info("%s: removing %s (no pod bound here owns it)", host, target)
                remove = driver.remove if isinstance(action, RemoveContainer) else driver.remove_sandbox
                result = run(host, remove(target))
                if result.ok and isinstance(action, RemoveSandbox) and action.uid:
                    result = self._unmount(host, action.uid)
                if result.ok:
                    return Outcome(action)
                return Outcome.failed(action, "FailedRemove", _stderr(result))
            case ForgetPod(pod=pod):
                if has_volumes(pod):  # no container left, but its volumes may be
                    unmounted = self._unmount(host, pod["metadata"]["uid"])
                    if not unmounted.ok:
                        return Outcome.failed(action, "FailedKillPod", _stderr(unmounted))
                return Outcome(action)  # nothing on the host: the round deletes the object
            case MountVolumes(pod=pod):
                return self._mount_volumes(host, action, pod)
            case SweepVolumes(keep=keep):
                swept = run(host, python_argv(VOLUME_HOST_SOURCE, ["sweep", *sorted(keep)]))
                return Outcome(action) if swept.ok else Outcome.failed(action, "FailedRemove", _stderr(swept))
            case MakeSandbox(pod=pod):
                for argv in (driver.remove_sandbox(pod),  # a half-made one from an interrupted round
                             driver.create_sandbox(pod), driver.start_sandbox(pod)):
                    result = run(host, argv)
                    if not result.ok:
                        return Outcome.failed(action, "CreatePodSandboxError", _stderr(result))
                return Outcome(action)
            case ReplaceContainer(pod=pod, container=container):
                removed = run(host, driver.remove(container_name(pod, container["name"])))
                if not removed.ok:
                    return Outcome.failed(action, "RunContainerError", f"removing the old container: "
                                          f"{_stderr(removed)}")
                log.info("%s: %s of %s: image %s -> %s", host, container["name"], pod["metadata"]["name"],
                         action.old_image, container["image"])
                return self._run_container(host, driver, action, pod, container)
            case RunContainer(pod=pod, container=container):
                return self._run_container(host, driver, action, pod, container)
            case RestartContainer(pod=pod, container=container):
                result = run(host, driver.start(container_name(pod, container["name"])))
                if result.ok:
                    log.info("%s: restarted %s of %s", host, container["name"], pod["metadata"]["name"])
                    return Outcome(action)
                return Outcome.failed(action, "RunContainerError", _stderr(result))
            case RestartUnhealthy(pod=pod, container=container):
                self.background.submit((pod["metadata"]["uid"], container["name"]), node,
                                       lambda alive: self._timing(action, lambda: self._restart_unhealthy(
                                           host, driver, action, alive)))
                return Outcome(action, background=True)
            case StopPod(pod=pod):
                self.background.submit((pod["metadata"]["uid"], ""), node,
                                       lambda alive: self._timing(action, lambda: self._stop_pod(
                                           host, driver, action, alive)))
                return Outcome(action, background=True)
            case FindAddress(pod=pod):
                return Outcome(action, value=self._address(host, driver, pod))
        raise TypeError(f"no way to run {action!r}")

    def _timing(self, action: Action, work: Callable[[], Outcome]) -> Outcome:
        started = time.monotonic()
        try:
            return work()
        finally:
            self.timed(verb(action), time.monotonic() - started)

    def _mount_volumes(self, host: Host, action: MountVolumes, pod: Obj) -> Outcome:
        """Directories, tmpfs mounts and subPath binds by volume_host.py (the plan on its standard
        input), then the configMap and secret files over SFTP (files.py)."""
        written = files(pod, self.lookup)  # first: a missing ConfigMap or key changes nothing on the host
        result = self.pool.run(host, python_argv(VOLUME_HOST_SOURCE, ["setup"]),
                               stdin=host_plan(pod, self.lookup).to_json())
        if not result.ok:
            return Outcome.failed(action, FAILED_MOUNT, f"setting up volumes: {_stderr(result)}")
        if written:
            with self.pool.sftp(host) as sftp:
                for file_set in written:
                    if write_files(sftp, file_set):
                        log.info("%s: wrote volume %s of %s", host, file_set.volume, pod["metadata"]["name"])
        return Outcome(action)

    def _unmount(self, host: Host, uid: str) -> CommandResult:
        """A gone pod's volume mounts taken off and its directory removed (volume_host.py)."""
        return self.pool.run(host, python_argv(VOLUME_HOST_SOURCE, ["teardown", uid]))

    def _run_container(self, host: Host, driver: Driver, action: Action, pod: Obj, container: Obj) -> Outcome:
        missing = self._ensure_image(host, driver, action, container)
        if missing is not None:
            return missing
        env = resolve_env(container, pod["metadata"]["namespace"], self.lookup)
        result = self.pool.run(host, driver.run_container(pod, container, env),
                               stdin=env.env_file())  # Secret values: on stdin, never in argv
        if result.ok:
            # the pod's Started event says it; at INFO, 10,000 pods' lines cost the leader ~5% of its CPU
            log.debug("%s: started %s of %s", host, container["name"], pod["metadata"]["name"])
            return Outcome(action)
        message = _stderr(result)
        cleanup = self.pool.run(host, driver.remove(container_name(pod, container["name"])))
        if not cleanup.ok:  # created but not started: the next round tries afresh
            message += f"; removing it failed too: {_stderr(cleanup)}"
        return Outcome.failed(action, "RunContainerError", message)

    def _ensure_image(self, host: Host, driver: Driver, action: Action, container: Obj) -> Outcome | None:
        """Kubelet's step before making a container: the image on the host, or why not (None: there).
        Always pulls every time; IfNotPresent (and unset: Berth does not default `:latest` to Always,
        the lab reaches no registry) pulls when missing; Never only looks."""
        image, policy = container["image"], container.get("imagePullPolicy") or "IfNotPresent"
        if policy != "Always" and self.pool.run(host, driver.image_present(image)).ok:
            return None
        if policy == "Never":
            return Outcome.failed(action, ERR_IMAGE_NEVER_PULL, never_pull_message(image))
        pulled = self.pool.run(host, driver.pull(image))
        if not pulled.ok:
            return Outcome.failed(action, ERR_IMAGE_PULL, pull_error(pulled.stderr))
        log.info("%s: pulled image %s", host, image)
        return None

    def _restart_unhealthy(self, host: Host, driver: Driver, action: RestartUnhealthy,
                           alive: Callable[[], bool]) -> Outcome:
        grace = int(action.pod["spec"].get("terminationGracePeriodSeconds", 30))
        target = container_name(action.pod, action.container["name"])
        try:
            result = self.pool.run(host, driver.restart(target, grace), timeout=grace + 60)
        except SshError as err:
            return Outcome.failed(action, "Failed", f"restarting container {action.container['name']}: {err}")
        if result.ok:
            log.info("%s: restarted %s of %s (liveness probe failed)", host, action.container["name"],
                     action.pod["metadata"]["name"])
            return Outcome(action)
        return Outcome.failed(action, "Failed", f"restarting container {action.container['name']}: "
                              f"{_stderr(result)}")

    def _stop_pod(self, host: Host, driver: Driver, action: StopPod, alive: Callable[[], bool]) -> Outcome:
        """Stop the pod's containers within what is left of its grace, then remove them; the next
        look at the host finds nothing of it and forgets it."""
        pod = action.pod
        grace = grace_left(pod)
        log.info("%s: stopping pod %s/%s (grace %ds left)", host, pod["metadata"]["namespace"],
                 pod["metadata"]["name"], grace)
        try:
            stopped = self.pool.run(host, driver.stop_sandbox(pod, grace), timeout=grace + 60)
            if not alive():
                return Outcome(action)  # dropped: this term is over
            removed = self.pool.run(host, driver.remove_sandbox(pod))
            if removed.ok and has_volumes(pod):
                removed = self._unmount(host, pod["metadata"]["uid"])
        except SshError as err:  # the next look stops what is left
            return Outcome.failed(action, "FailedKillPod", f"{err}")
        if removed.ok:
            return Outcome(action)
        why = _stderr(removed) + ("" if stopped.ok else f" (stopping it failed first: {_stderr(stopped)})")
        return Outcome.failed(action, "FailedKillPod", why)

    def _address(self, host: Host, driver: Driver, pod: Obj) -> str:
        """The pod's address inside its host ("" while it has none: the next round asks again)."""
        try:
            infra = self.pool.run(host, driver.sandbox_ip(pod), timeout=15)
            if not infra.ok or not infra.text().strip():
                return ""
            address = self.pool.run(host, driver.container_ip(infra.text().strip()), timeout=15)
        except SshError:
            return ""
        return next(iter(address.text().split()), "") if address.ok else ""


def outcome_events(outcome: Outcome) -> list[tuple[str, str, bool]]:
    """(reason, message, warning) of what an outcome tells that no pod status shows: a liveness
    restart begun (Killing), failed background work, removals of what no pod owns (on the node)."""
    if isinstance(outcome.action, RestartUnhealthy) and outcome.background:
        why = outcome.action.message or "liveness probe failed"
        return [("Killing", f"Container {outcome.action.container['name']}: {why}; it will be restarted",
                 False)]
    # in the status
    shown = MountVolumes | MakeSandbox | RunContainer | ReplaceContainer | RestartContainer | FindAddress
    if outcome.ok or isinstance(outcome.action, shown):
        return []
    if isinstance(outcome.action, RemoveContainer | RemoveSandbox):
        return [("FailedRemove", f"removing {outcome.action.target}: {outcome.message}", True)]
    if isinstance(outcome.action, SweepVolumes):
        return [("FailedRemove", f"removing volumes of pods no longer here: {outcome.message}", True)]
    return [(outcome.reason, outcome.message, True)]
