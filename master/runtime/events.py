"""The events a pod's status change tells, as a kubelet would record them: pure."""

from __future__ import annotations

from berth.objects import Obj
from master.runtime.pulls import ERR_IMAGE_NEVER_PULL, ERR_IMAGE_PULL, IMAGE_PULL_BACKOFF
from master.runtime.volumes import FAILED_MOUNT

FAILURES = ("RunContainerError", "CreateContainerConfigError", "CreatePodSandboxError")


NOT_STARTED = ("ContainerCreating", "PodInitializing")  # waiting reasons of a container never started


def _by_name(status: Obj | None) -> dict[str, Obj]:
    """Init and app containers' statuses by name (names are unique across both)."""
    status = status or {}
    return {c["name"]: c for c in [*(status.get("initContainerStatuses") or []),
                                   *(status.get("containerStatuses") or [])]}


def status_events(old: Obj | None, new: Obj) -> list[tuple[str, str, bool]]:
    """(reason, message, warning) for what changed between two statuses of one pod."""
    events = []
    before = _by_name(old)
    mount_told = False  # one FailedMount for the pod, not one per container waiting on it
    for name, now in _by_name(new).items():
        was = before.get(name, {})
        waiting = (now.get("state") or {}).get("waiting") or {}
        was_waiting = (was.get("state") or {}).get("waiting") or {}
        restarts, had = int(now.get("restartCount") or 0), int(was.get("restartCount") or 0)
        if restarts > had:
            last = (now.get("lastState") or {}).get("terminated") or {}
            if last.get("reason") == "ImageChanged":
                events.append(("Killing", f"Container {name} definition changed ({last.get('message', '')}); "
                               "it will be restarted", False))
            events.append(("Started", f"Restarted container {name} (restart {restarts})", False))
        elif was_waiting.get("reason") in NOT_STARTED and (
                "running" in (now.get("state") or {}) or "terminated" in (now.get("state") or {})):
            # terminated too: an init container (or any short one) may be done by the next look
            events.append(("Started", f"Started container {name}", False))
        if waiting.get("reason") == "CrashLoopBackOff" and was_waiting.get("reason") != "CrashLoopBackOff":
            events.append(("BackOff", f"Back-off restarting failed container {name}", True))
        message = str(waiting.get("message") or "")
        if (message.startswith(f"{FAILED_MOUNT}: ") and message != was_waiting.get("message")
                and not mount_told):
            events.append((FAILED_MOUNT, message.removeprefix(f"{FAILED_MOUNT}: ")[:1000], True))
            mount_told = True
        if waiting.get("reason") in FAILURES and was_waiting.get("reason") != waiting.get("reason"):
            events.append(("Failed", f"{waiting['reason']}: {waiting.get('message', '')}"[:1000], True))
        if waiting.get("reason") != was_waiting.get("reason"):
            events.extend(_image_events(now.get("image", ""), waiting))
    return events


def _image_events(image: str, waiting: Obj) -> list[tuple[str, str, bool]]:
    """What a kubelet's image manager records as a container starts to wait for its image: each
    failed pull (Failed), each back-off after one (BackOff, Normal as kubelet has it), and an
    image missing under pull policy Never."""
    reason, message = waiting.get("reason"), str(waiting.get("message", ""))
    if reason == ERR_IMAGE_PULL:
        return [("Failed", f'Failed to pull image "{image}": {message}'[:1000], True)]
    if reason == IMAGE_PULL_BACKOFF:
        return [("BackOff", f'Back-off pulling image "{image}"', False)]
    if reason == ERR_IMAGE_NEVER_PULL:
        return [(ERR_IMAGE_NEVER_PULL, message[:1000], True)]
    return []
