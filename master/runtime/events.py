"""The events a pod's status change tells, as a kubelet would record them: pure."""

from __future__ import annotations

from berth.objects import Obj

FAILURES = ("RunContainerError", "CreateContainerConfigError", "CreatePodSandboxError")


def _by_name(status: Obj | None) -> dict[str, Obj]:
    return {c["name"]: c for c in (status or {}).get("containerStatuses") or []}


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
        elif "running" in (now.get("state") or {}) and was_waiting.get("reason") == "ContainerCreating":
            events.append(("Started", f"Started container {name}", False))
        if waiting.get("reason") == "CrashLoopBackOff" and was_waiting.get("reason") != "CrashLoopBackOff":
            events.append(("BackOff", f"Back-off restarting failed container {name}", True))
        if waiting.get("reason") in FAILURES and was_waiting.get("reason") != waiting.get("reason"):
            events.append(("Failed", f"{waiting['reason']}: {waiting.get('message', '')}"[:1000], True))
    return events
