"""`berth drain`'s decisions, pure: which of a node's pods to evict, and kubectl's words for it.

kubectl drain's filters, for what Berth has: a pod with no controller (nothing would make it
again) stops the drain unless `--force`, which evicts it with a warning; a finished pod goes
whatever it is. Berth has no DaemonSets, mirror pods or emptyDir volumes, so their filters have
nothing to look at.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from berth.objects import Obj

UNMANAGED_FATAL = "cannot delete Pods that declare no controller (use --force to override)"
UNMANAGED_WARNING = "deleting Pods that declare no controller"


@dataclass(frozen=True)
class Selection:
    evict: list[Obj] = field(default_factory=list)
    error: str | None = None  # why the node cannot be drained as asked
    warning: str | None = None


def key(pod: Obj) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"


def has_controller(pod: Obj) -> bool:
    refs = (pod.get("metadata") or {}).get("ownerReferences") or []
    return any(isinstance(ref, dict) and ref.get("controller") for ref in refs)


def finished(pod: Obj) -> bool:
    return ((pod.get("status") or {}).get("phase")) in ("Succeeded", "Failed")


def select_pods(pods: list[Obj], force: bool) -> Selection:
    """The pods to evict from a node, or the error kubectl gives (naming the pods in its way)."""
    unmanaged = [p for p in pods if not finished(p) and not has_controller(p)]
    listed = ", ".join(key(p) for p in unmanaged)
    if unmanaged and not force:
        return Selection(error=f"{UNMANAGED_FATAL}: {listed}")
    return Selection(list(pods), warning=f"{UNMANAGED_WARNING}: {listed}" if unmanaged else None)


def go_duration(seconds: float) -> str:
    """A duration as kubectl prints one (Go's): 2m0s, 1h0m0s, 45s."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def gone(asked: dict[str, Obj], listed: list[Obj]) -> list[Obj]:
    """The evicted pods (by uid) no longer bound to the node: the same name with another uid is
    another pod."""
    present = {(p.get("metadata") or {}).get("uid") for p in listed}
    return [pod for uid, pod in asked.items() if uid not in present]


def unable(node: str, error: str, pending: list[str]) -> str:
    """kubectl's report of a node it could not drain, and of those left to drain."""
    lines = [f'error: unable to drain node "{node}" due to error: {error}, continuing command...',
             "There are pending nodes to be drained:", *(f" {name}" for name in pending), error]
    return "\n".join(lines)
