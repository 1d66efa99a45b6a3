"""Disruption budgets: how many of a PodDisruptionBudget's pods may go now, and whether one eviction may.

Kubernetes' disruption controller and eviction subresource, pure. A budget's status counts:

- `expectedPods`: for `minAvailable` as a count, the pods its selector matches; otherwise the scale
  of their controllers (a Deployment's `spec.replicas` for the pods of its ReplicaSets, a lone
  ReplicaSet's own), each controller once, and 1 for each pod without one (Kubernetes refuses a
  percentage over bare pods; here each counts as its own scale of 1).
- `desiredHealthy`: `minAvailable`, or `expectedPods - maxUnavailable`; percentages of
  `expectedPods` are rounded up, as Kubernetes rounds both.
- `currentHealthy`: the matching pods that are Ready, not terminating, and not recorded in
  `disruptedPods` as evicted (an eviction's record is trusted for `DELETION_TIMEOUT`, and dropped
  once its pod is terminating or gone).
- `disruptionsAllowed`: `currentHealthy - desiredHealthy`, never below 0, and 0 while no pod is
  expected (a budget whose first pods appear before its first count stays safe).

An eviction (`eviction_verdict`) of a pod the budget covers takes one allowed disruption and records
the pod, in the same Raft command as the pod's deletion (master/eviction.py), so two evictions can
never spend one allowance: the second one's write finds the budget changed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from berth.objects import Obj
from master.errors import ApiError
from master.objects.conditions import condition, transition_time, with_condition
from master.objects.kinds import MAX_DISRUPTED_PODS
from master.workloads.owners import matches
from master.workloads.replicas import moment, ready_since

KIND = "PodDisruptionBudget"
DELETION_TIMEOUT = 120.0  # seconds an eviction's record holds its pod out of the healthy count
ALLOWED = "DisruptionAllowed"
TOO_MANY = "Cannot evict pod as it would violate the pod's disruption budget."


@dataclass(frozen=True)
class Scale:
    """The controller whose replicas a pod counts towards: each is counted once however many pods."""

    owner: str  # its uid
    replicas: int


# --- the budget's status ---------------------------------------------------------------------------

def covers(pdb: Obj, pod: Obj) -> bool:
    """The budget's selector matches the pod, in its namespace."""
    same = (pdb["metadata"].get("namespace") or "") == (pod["metadata"].get("namespace") or "")
    return same and matches((pdb.get("spec") or {}).get("selector") or {}, pod["metadata"].get("labels"))


def scaled(value: int | str, total: int) -> int:
    """A count, or a percentage of `total` rounded up."""
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(int(value[:-1]) * total / 100)
    return int(value)


def expected_pods(pods: list[Obj], scales: Mapping[str, Scale | None]) -> int:
    """The controllers' replicas, each controller once; 1 for a pod without one (`scales` by pod uid)."""
    owners: dict[str, int] = {}
    bare = 0
    for pod in pods:
        scale = scales.get(pod["metadata"].get("uid") or "")
        if scale is None:
            bare += 1
        else:
            owners[scale.owner] = scale.replicas
    return bare + sum(owners.values())


def terminating(pod: Obj) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def pending_disruptions(recorded: Mapping[str, str] | None, pods: list[Obj], now: float) -> dict[str, str]:
    """The evictions still awaited: their pod is here, not yet terminating, and was evicted less than
    DELETION_TIMEOUT ago (Kubernetes then takes it that the deletion never came)."""
    present = {p["metadata"]["name"] for p in pods if not terminating(p)}
    kept = {}
    for name, stamp in (recorded or {}).items():
        when = moment(stamp)
        if name in present and when is not None and when + DELETION_TIMEOUT > now:
            kept[name] = stamp
    return kept


def healthy(pods: list[Obj], pending: Mapping[str, str]) -> int:
    return sum(1 for p in pods if not terminating(p) and p["metadata"]["name"] not in pending
               and ready_since(p) is not None)


def desired_healthy(spec: Obj, pods: list[Obj], scales: Mapping[str, Scale | None]) -> tuple[int, int]:
    """(desiredHealthy, expectedPods) as Kubernetes' getExpectedPodCount makes them."""
    least, most = spec.get("minAvailable"), spec.get("maxUnavailable")
    if least is not None and not isinstance(least, str):
        return int(least), len(pods)
    expected = expected_pods(pods, scales)
    if least is not None:
        return scaled(least, expected), expected
    return max(0, expected - scaled(most if most is not None else 0, expected)), expected


def allowed_condition(pdb: Obj, allowed: int, stamp: str) -> Obj:
    """DisruptionAllowed True (SufficientPods) or False (InsufficientPods); its time moves only when
    the verdict does."""
    status = "True" if allowed > 0 else "False"
    reason = "SufficientPods" if allowed > 0 else "InsufficientPods"
    return {"type": ALLOWED, "status": status, "reason": reason, "message": "",
            "lastTransitionTime": transition_time(condition(pdb, ALLOWED), status, stamp)}


def budget_status(pdb: Obj, pods: list[Obj], scales: Mapping[str, Scale | None], now: float,
                  stamp: str) -> Obj:
    """The status the disruption controller writes for `pdb`, given every pod its selector matches
    (`scales`: each pod's controller by pod uid, None for a pod without one)."""
    current = pdb.get("status") or {}
    pending = pending_disruptions(current.get("disruptedPods"), pods, now)
    desired, expected = desired_healthy(pdb.get("spec") or {}, pods, scales)
    count = healthy(pods, pending)
    allowed = max(0, count - desired) if expected > 0 else 0
    status: Obj = {"observedGeneration": int(pdb["metadata"].get("generation") or 0),
                   "disruptionsAllowed": allowed, "currentHealthy": count, "desiredHealthy": desired,
                   "expectedPods": expected}
    if pending:
        status["disruptedPods"] = pending
    return with_condition(status, allowed_condition(pdb, allowed, stamp))


# --- one eviction --------------------------------------------------------------------------------

@dataclass(frozen=True)
class AlreadyGoing:
    """The pod is terminating already: nothing to write, and the eviction succeeds."""


@dataclass(frozen=True)
class Evict:
    """Delete the pod; with `budget`, write `status` to it at the resourceVersion read, in the same
    command. `pinned`: delete only if the pod is still at the resourceVersion read (it went without
    charging a budget because it was not Ready or not running, and must not go if it became so)."""

    budget: Obj | None = None
    status: Obj | None = None
    pinned: bool = False


@dataclass(frozen=True)
class Refuse:
    error: ApiError


Verdict = AlreadyGoing | Evict | Refuse


def too_many_requests(cause: str) -> ApiError:
    return ApiError(429, "TooManyRequests", TOO_MANY, "status.disruptionsAllowed",
                    [{"field": "status.disruptionsAllowed", "error": cause, "reason": "DisruptionBudget"}])


def charged(pdb: Obj, pod_name: str, stamp: str) -> Obj | ApiError:
    """The budget's status with one disruption taken for this pod (Kubernetes' checkAndDecrement),
    or why it cannot be taken."""
    status = pdb.get("status") or {}
    name = pdb["metadata"]["name"]
    if int(status.get("observedGeneration") or 0) < int(pdb["metadata"].get("generation") or 0):
        return too_many_requests(f"The disruption budget {name} is still being processed by the server.")
    recorded = dict(status.get("disruptedPods") or {})
    if len(recorded) >= MAX_DISRUPTED_PODS:
        return ApiError(403, "Forbidden", f"poddisruptionbudget {name}: DisruptedPods map too big - too "
                        "many evictions not confirmed by the disruption controller", "status.disruptedPods")
    allowed = int(status.get("disruptionsAllowed") or 0)
    if allowed < 1:
        desired, current = int(status.get("desiredHealthy") or 0), int(status.get("currentHealthy") or 0)
        return too_many_requests(f"The disruption budget {name} needs {desired} healthy pods and has "
                                 f"{current} currently")
    new = {**status, "disruptionsAllowed": allowed - 1, "disruptedPods": {**recorded, pod_name: stamp}}
    if allowed - 1 == 0:
        new = with_condition(new, allowed_condition(pdb, 0, stamp))
    return new


def eviction_verdict(pod: Obj, budgets: list[Obj], stamp: str) -> Verdict:
    """Whether `pod` may be evicted now, and what that writes (`budgets`: those of its namespace).

    As Kubernetes' eviction subresource: a terminating pod is going already; a pod not running yet
    or finished (Pending, Succeeded, Failed) goes without a budget's say; more than one budget over a
    pod is refused (Kubernetes answers 500; here a 422 that says so); a pod that is not Ready goes
    without charging its budget while the budget holds its healthy count; any other takes one of
    its budget's allowed disruptions, or is refused with 429."""
    if terminating(pod):
        return AlreadyGoing()
    phase = (pod.get("status") or {}).get("phase") or "Pending"
    if phase in ("Succeeded", "Failed"):
        return Evict()
    if phase == "Pending":
        return Evict(pinned=True)
    over = sorted((b for b in budgets if covers(b, pod)), key=lambda b: b["metadata"]["name"])
    if len(over) > 1:
        names = ", ".join(b["metadata"]["name"] for b in over)
        return Refuse(ApiError(422, "MultipleDisruptionBudgets", f"This pod has more than one "
                               f"PodDisruptionBudget ({names}), which the eviction subresource does not "
                               "support.", "metadata.labels"))
    if not over:
        return Evict()
    budget = over[0]
    status = budget.get("status") or {}
    desired = int(status.get("desiredHealthy") or 0)
    if ready_since(pod) is None and int(status.get("currentHealthy") or 0) >= desired > 0:
        return Evict(pinned=True)
    new = charged(budget, pod["metadata"]["name"], stamp)
    if isinstance(new, ApiError):
        return Refuse(new)
    return Evict(budget, new)
