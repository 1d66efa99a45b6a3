"""How far and how fast a recommendation may move the replicas: Kubernetes' HPA behavior, pure.

Two steps, as Kubernetes' controller takes them. Stabilization: every round's recommendation is
kept with its time; a scale-down goes only to the highest recommendation of the scaleDown window
(300 s by default), a scale-up only to the lowest of the scaleUp window (0 s), so a metric that
flaps does not flap the replicas. Rate: each policy allows a change over its period, from the
replicas the target had when the period began (the scale events of the period, kept with their
times, undone); `selectPolicy` Max takes the policy allowing the most change, Min the least,
Disabled none; then minReplicas and maxReplicas bound it. Each step says why, with Kubernetes'
condition reasons (ScaleUpStabilized, ScaleDownStabilized, ReadyForNewScale; ScaleUpLimit,
ScaleDownLimit, TooManyReplicas, TooFewReplicas, DesiredWithinRange).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

Reason = tuple[str, str]  # a condition's reason and message


@dataclass(frozen=True)
class Policy:
    type: str  # "Pods" | "Percent"
    value: int
    period: int  # seconds


@dataclass(frozen=True)
class Rules:
    """One direction's rules (scaleUp or scaleDown)."""

    window: int  # stabilization, seconds
    select: str  # "Max" | "Min" | "Disabled"
    policies: tuple[Policy, ...]

    @classmethod
    def of(cls, rules: dict[str, Any], default_window: int) -> Rules:
        """From a stored spec's direction (defaults filled in by the schema; the window may be unset)."""
        window = rules.get("stabilizationWindowSeconds")
        return cls(default_window if window is None else int(window), str(rules.get("selectPolicy") or "Max"),
                   tuple(Policy(p["type"], int(p["value"]), int(p["periodSeconds"]))
                         for p in rules.get("policies") or ()))


@dataclass(frozen=True)
class Behavior:
    """An autoscaler's bounds and both directions' rules."""

    minimum: int
    maximum: int
    up: Rules
    down: Rules


@dataclass(frozen=True)
class Stamped:
    at: float  # seconds, on the controller's clock
    replicas: int  # a recommendation, or how many replicas a scale event added or removed


@dataclass(frozen=True)
class History:
    """What one autoscaler's rounds remember: Kubernetes keeps it in the controller's memory, and so
    does Berth's (a new leader starts afresh, with the current replicas as the first recommendation)."""

    recommendations: tuple[Stamped, ...] = ()
    ups: tuple[Stamped, ...] = ()
    downs: tuple[Stamped, ...] = ()


@dataclass(frozen=True)
class Normalized:
    replicas: int
    stabilized: Reason  # AbleToScale's reason
    limited: bool  # ScalingLimited's status
    limit: Reason  # ScalingLimited's reason
    history: History


def stabilize(current: int, desired: int, behavior: Behavior, history: History,
              now: float) -> tuple[int, Reason, History]:
    """The recommendation within the windows, why, and the history with `desired` recorded."""
    up_cutoff, down_cutoff = now - behavior.up.window, now - behavior.down.window
    lowest = highest = desired
    for recommendation in history.recommendations:
        if recommendation.at > up_cutoff:
            lowest = min(lowest, recommendation.replicas)
        if recommendation.at > down_cutoff:
            highest = max(highest, recommendation.replicas)
    stabilized = min(max(current, lowest), highest)
    kept = tuple(r for r in history.recommendations if r.at >= min(up_cutoff, down_cutoff))
    recorded = History((*kept, Stamped(now, desired)), history.ups, history.downs)
    if desired >= current:
        why = ("ScaleUpStabilized", "recent recommendations were lower than current one, applying the "
                                    "lowest recent recommendation")
    else:
        why = ("ScaleDownStabilized", "recent recommendations were higher than current one, applying the "
                                      "highest recent recommendation")
    return stabilized, why, recorded


def _changed(period: int, events: Sequence[Stamped], now: float) -> int:
    return sum(event.replicas for event in events if event.at > now - period)


def _period_start(current: int, period: int, history: History, now: float) -> int:
    """The replicas the target had when a policy's period began: this period's scale events undone."""
    return current - _changed(period, history.ups, now) + _changed(period, history.downs, now)


def policy_limit(current: int, rules: Rules, history: History, now: float, upward: bool) -> int:
    """The most (upward) or the fewest replicas the policies allow now: each from the replicas the
    target had when its period began; Max takes the policy allowing the most change, Min the least."""
    if rules.select == "Disabled" or not rules.policies:
        return current
    proposals = []
    for policy in rules.policies:
        start = _period_start(current, policy.period, history, now)
        if policy.type == "Pods":
            proposals.append(start + policy.value if upward else start - policy.value)
        elif upward:
            proposals.append(math.ceil(start * (1 + policy.value / 100)))  # up: rounded up, or 1 would stay 1
        else:
            proposals.append(int(start * (1 - policy.value / 100)))
    most, least = (max, min) if upward else (min, max)
    return (least if rules.select == "Min" else most)(proposals)


def limit_rate(current: int, desired: int, behavior: Behavior, history: History,
               now: float) -> tuple[int, Reason]:
    """`desired` within what the policies allow now and within [minReplicas, maxReplicas]."""
    if desired > current:
        limit = max(policy_limit(current, behavior.up, history, now, upward=True), current)
        if behavior.maximum > limit:
            bound, why = limit, ("ScaleUpLimit", "the desired replica count is increasing faster than the "
                                                 "maximum scale rate")
        else:
            bound, why = behavior.maximum, ("TooManyReplicas", "the desired replica count is more than the "
                                                               "maximum replica count")
        if desired > bound:
            return bound, why
    elif desired < current:
        limit = min(policy_limit(current, behavior.down, history, now, upward=False), current)
        if behavior.minimum < limit:
            bound, why = limit, ("ScaleDownLimit", "the desired replica count is decreasing faster than the "
                                                   "maximum scale rate")
        else:
            bound, why = behavior.minimum, ("TooFewReplicas", "the desired replica count is less than the "
                                                              "minimum replica count")
        if desired < bound:
            return bound, why
    return desired, ("DesiredWithinRange", "the desired count is within the acceptable range")


def normalize(current: int, desired: int, behavior: Behavior, history: History, now: float) -> Normalized:
    """Stabilized, then limited: the replicas to set, and why (Kubernetes'
    normalizeDesiredReplicasWithBehaviors)."""
    stabilized, why, history = stabilize(current, desired, behavior, history, now)
    if stabilized == desired:
        why = ("ReadyForNewScale", "recommended size matches current size")
    replicas, limit = limit_rate(current, stabilized, behavior, history, now)
    return Normalized(replicas, why, replicas != stabilized, limit, history)


def record_scale(history: History, previous: int, new: int, behavior: Behavior, now: float) -> History:
    """The history with a scale event from `previous` to `new` replicas; events older than every
    policy's period are forgotten (none counts any more)."""
    longest = max((p.period for p in (*behavior.up.policies, *behavior.down.policies)), default=0)
    ups = tuple(e for e in history.ups if e.at > now - longest)
    downs = tuple(e for e in history.downs if e.at > now - longest)
    if new > previous:
        ups += (Stamped(now, new - previous),)
    elif new < previous:
        downs += (Stamped(now, previous - new),)
    return History(history.recommendations, ups, downs)


def first_recommendation(history: History, current: int, now: float) -> History:
    """An autoscaler seen for the first time (or by a new leader) starts with the current replicas as a
    recommendation, as Kubernetes' does: no scale-down before its window has passed."""
    if history.recommendations:
        return history
    return History((Stamped(now, current),), history.ups, history.downs)
