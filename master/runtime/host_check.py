"""What SSH says about a host whose agent went silent: pure, table-tested.

The host answers and its runtime lists every active pod's containers running: the host is fine
and its agent is what failed, so the pods stay (and the agent is restarted). The runtime answers
but some pod is not running: those pods are not confirmed alive; the others are held. The
runtime does not answer: nothing is confirmed. SSH fails: the host is gone, and its pods may go
at once rather than wait out their tolerations.
"""

from __future__ import annotations

from berth.objects import Obj
from master.reports.host_checks import AGENT_NOT_HEARTBEATING, HOST_UNREACHABLE, RUNTIME_FAILING, HostVerdict
from master.runtime.planner import Listing


def _active(pod: Obj) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return not pod["metadata"].get("deletionTimestamp") and phase not in ("Succeeded", "Failed")


def running(pod: Obj, listing: Listing) -> bool:
    """Every app container of the pod is listed running on the host."""
    listed = listing.of_pod(pod["metadata"]["uid"])
    return all(getattr(listed.get(c["name"]), "state", None) == "running" for c in pod["spec"]["containers"])


def judge(pods: list[Obj], listing: Listing | None, error: str | None, reachable: bool) -> HostVerdict:
    """`listing` None with `error`: SSH or the engine failed (`reachable`: the host answered)."""
    if not reachable:
        return HostVerdict(HOST_UNREACHABLE, f"the host does not answer over SSH: {error}")
    if listing is None:
        return HostVerdict(RUNTIME_FAILING, f"the host answers, its container engine does not: {error}")
    active = [p for p in pods if _active(p)]
    alive = frozenset(p["metadata"]["uid"] for p in active if running(p, listing))
    return HostVerdict(AGENT_NOT_HEARTBEATING,
                       f"the host answers over SSH and {len(alive)} of its {len(active)} pod(s) run: "
                       "its agent stopped heartbeating", alive)


def evict_now(verdict: HostVerdict | None, when_unreachable: bool) -> bool:
    """The host is gone: a pod with a bounded toleration need not wait it out."""
    return when_unreachable and verdict is not None and verdict.kind == HOST_UNREACHABLE


def held(verdict: HostVerdict | None, pod: Obj) -> bool:
    """The pod is confirmed running on a host whose agent alone failed: it stays."""
    return (verdict is not None and verdict.kind == AGENT_NOT_HEARTBEATING
            and pod["metadata"]["uid"] in verdict.alive)
