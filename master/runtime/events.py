"""The events a pod's status change tells, as a kubelet would record them: pure."""

from __future__ import annotations

from berth.objects import Obj

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
        if waiting.get("reason") in FAILURES and was_waiting.get("reason") != waiting.get("reason"):
            events.append(("Failed", f"{waiting['reason']}: {waiting.get('message', '')}"[:1000], True))
    return events
