"""One autoscaler's round, pure: Kubernetes' reconcileAutoscaler over what the controller read.

In: the autoscaler's spec (as its schema stores it), its target's Scale (None: not found), the
target's pods, their metric samples, what earlier rounds remembered, the time. Out: a `Decision`:
the replicas to set and why, the conditions and current metrics for its status, the events to
tell. The controller (master/controllers/autoscaler.py) reads, writes the target's replicas when
they change, then hands the write's outcome to `rescaled` and writes `next_status`.

As Kubernetes: a target at 0 replicas is not scaled (ScalingDisabled); one outside [minReplicas,
maxReplicas] is brought back inside without looking at a metric; otherwise the metrics propose a
count (master/autoscaling/measure.py) and behavior (master/autoscaling/behavior.py) stabilizes and
limits it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from berth.objects import Obj
from master.autoscaling.behavior import (
    Behavior,
    History,
    Rules,
    first_recommendation,
    normalize,
    record_scale,
)
from master.autoscaling.measure import Note, Seen, SetCondition, from_metrics
from master.autoscaling.metrics import PodSample
from master.objects.conditions import set_condition


@dataclass(frozen=True)
class Settings:
    """The master's settings for every autoscaler (Kubernetes' controller flags)."""

    tolerance: float = 0.1
    downscale_stabilization: int = 300  # scaleDown's window where the spec leaves it unset


@dataclass(frozen=True)
class Decision:
    current: int | None  # the target's spec.replicas (None: its scale could not be read)
    desired: int
    reason: str  # why desired differs from current, for the rescale's event
    conditions: tuple[SetCondition, ...]  # in the order set: a later one of a type wins
    metrics: tuple[Obj, ...]  # status.currentMetrics
    events: tuple[Note, ...]
    history: History
    scaled: bool = False  # the target's replicas were written this round

    @property
    def rescale(self) -> bool:
        return self.current is not None and self.desired != self.current


def behavior_of(spec: Obj, settings: Settings) -> Behavior:
    directions = spec.get("behavior") or {}
    return Behavior(int(spec.get("minReplicas") or 1), int(spec["maxReplicas"]),
                    Rules.of(directions.get("scaleUp") or {}, 0),
                    Rules.of(directions.get("scaleDown") or {}, settings.downscale_stabilization))


def decide(spec: Obj, scale: Obj | None, pods: Sequence[Obj], samples: Mapping[str, PodSample],
           history: History, now: float, settings: Settings, wall: float) -> Decision:
    """`spec`: validated (metrics and behavior filled in); `now`: seconds on the history's clock;
    `wall`: Unix seconds, the clock of the pods' start and readiness times."""
    if scale is None:
        ref = spec["scaleTargetRef"]
        problem = f'{str(ref.get("kind") or "Deployment").lower()}s "{ref["name"]}" not found'
        return Decision(None, 0, "", (("AbleToScale", "False", "FailedGetScale",
                                       f"the HPA controller was unable to get the target's current scale: "
                                       f"{problem}"),), (), (Note("FailedGetScale", problem, True),), history)
    current = int(scale["spec"]["replicas"])
    behavior = behavior_of(spec, settings)
    history = first_recommendation(history, current, now)
    got: SetCondition = ("AbleToScale", "True", "SucceededGetScale",
                         "the HPA controller was able to get the target's current scale")
    if current == 0 and behavior.minimum != 0:
        return Decision(current, 0, "", (got, ("ScalingActive", "False", "ScalingDisabled",
                                               "scaling is disabled since the replica count of the target is "
                                               "zero")), (), (), history)
    if not behavior.minimum <= current <= behavior.maximum:  # brought inside, whatever the metrics say
        above = current > behavior.maximum
        why = f"Current number of replicas {'above Spec.MaxReplicas' if above else 'below Spec.MinReplicas'}"
        bound = behavior.maximum if above else behavior.minimum
        return Decision(current, bound, why, (got,), (), (), history)
    found = from_metrics(spec["metrics"], Seen(current, pods, samples, settings.tolerance, wall))
    if found.replicas is None:
        return Decision(current, current, "", (got, found.condition), found.statuses, found.events, history)
    reason = (f"{found.name} above target" if found.replicas > current
              else "All metrics below target" if found.replicas < current else "")
    normalized = normalize(current, found.replicas, behavior, history, now)
    conditions = (got, found.condition, ("AbleToScale", "True", *normalized.stabilized),
                  ("ScalingLimited", "True" if normalized.limited else "False", *normalized.limit))
    return Decision(current, normalized.replicas, reason, conditions, found.statuses, found.events,
                    normalized.history)


def rescaled(decision: Decision, spec: Obj, settings: Settings, error: str | None, now: float) -> Decision:
    """The decision once its write of the target's replicas succeeded (`error` None) or failed."""
    assert decision.current is not None
    change = f"New size: {decision.desired}; reason: {decision.reason}"
    if error is not None:
        return replace(decision, desired=decision.current, conditions=(*decision.conditions, (
            "AbleToScale", "False", "FailedUpdateScale",
            f"the HPA controller was unable to update the target scale: {error}")),
            events=(*decision.events, Note("FailedRescale", f"{change}; error: {error}", warning=True)))
    history = record_scale(decision.history, decision.current, decision.desired, behavior_of(spec, settings),
                           now)
    return replace(decision, history=history, scaled=True, conditions=(*decision.conditions, (
        "AbleToScale", "True", "SucceededRescale",
        f"the HPA controller was able to update the target scale to {decision.desired}")),
        events=(*decision.events, Note("SuccessfulRescale", change)))


def next_status(status: Obj | None, decision: Decision, generation: int | None, stamp: str) -> Obj:
    """The autoscaler's status after the round: conditions changed in place (their time moving only
    when their status does), replicas and current metrics when the target was read."""
    new: Obj = dict(status) if isinstance(status, dict) else {}
    # the last of each type: a condition set and set back within the round has not changed
    final = {kind: (state, reason, message) for kind, state, reason, message in decision.conditions}
    for kind, (state, reason, message) in final.items():
        new = set_condition(new, {"type": kind, "status": state, "reason": reason, "message": message}, stamp)
    if decision.current is not None:
        new["currentReplicas"], new["desiredReplicas"] = decision.current, decision.desired
        new["currentMetrics"] = list(decision.metrics)
        if not decision.metrics:
            del new["currentMetrics"]
    if decision.scaled:
        new["lastScaleTime"] = stamp
    if generation is not None:
        new["observedGeneration"] = generation
    return new
