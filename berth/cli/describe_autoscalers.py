"""`berth describe hpa`, laid out as kubectl's page for a HorizontalPodAutoscaler.

What a person reading an autoscaler asks: what it scales, each metric's current value against its
target, the bounds and the rules that pace it, how many pods it has and wants, and why it did or
did not scale (its conditions, then its events).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from berth.cli.columns import UNKNOWN, _get, _list, hpa_reference, metric_current, metric_text
from berth.cli.describe import events_lines, header, section
from berth.cli.describe_nodes import _table
from berth.objects import Obj

NONE = "<none>"
WIDTH = 22


def metric_line(hpa: Obj, metric: Any) -> str:
    """`resource cpu on pods  (as a percentage of request):  305% (61m) / 50%`, as kubectl words it."""
    name, current, target = metric_text(hpa, metric)
    kind = _get(metric, "type")
    if kind == "Resource" and _get(metric, "resource", "target", "type") == "Utilization":
        raw = metric_current(hpa, metric).get("averageValue")
        shown = current if raw is None or current == UNKNOWN else f"{current} ({raw})"
        return f"  resource {name} on pods  (as a percentage of request):  {shown} / {target}"
    if kind == "Resource":
        return f"  resource {name} on pods:  {current} / {target}"
    if kind == "Pods":
        return f'  "{name}" on pods:  {current} / {target}'
    path = _get(metric, "responseTime", "path")
    return f"  p90 response time of the ready pods{f' to {path}' if path else ''}:  {current} / {target}"


def rules_lines(label: str, rules: Any) -> list[str]:
    """One direction of `spec.behavior` (its stabilization window left out while unset: the master's
    setting applies)."""
    lines = [f"  {label}:"]
    if _get(rules, "stabilizationWindowSeconds") is not None:
        lines.append(f"    Stabilization Window: {rules['stabilizationWindowSeconds']} seconds")
    lines.append(f"    Select Policy: {_get(rules, 'selectPolicy') or 'Max'}")
    policies = [p for p in _list(_get(rules, "policies")) if isinstance(p, dict)]
    if policies:
        lines.append("    Policies:")
        lines += [f"      - Type: {p.get('type')}  Value: {p.get('value')}  Period: {p.get('periodSeconds')} "
                  "seconds" for p in policies]
    return lines


def describe_autoscaler(hpa: Obj, events: list[Obj] | None, now: datetime,
                        events_error: str | None = None) -> str:
    spec, status = hpa.get("spec") or {}, hpa.get("status") or {}
    lines = header(hpa, WIDTH)
    section(lines, "Reference", [hpa_reference(hpa, now)], WIDTH)
    metrics = [m for m in _list(spec.get("metrics")) if isinstance(m, dict)]
    section(lines, "Metrics", ["( current / target )"], WIDTH)
    lines += [metric_line(hpa, m) for m in metrics]
    section(lines, "Min replicas", [str(spec.get("minReplicas") or 1)], WIDTH)
    section(lines, "Max replicas", [str(spec.get("maxReplicas") or "")], WIDTH)
    behavior = spec.get("behavior") if isinstance(spec.get("behavior"), dict) else {}
    if behavior:
        lines.append("Behavior:")
        for key, label in (("scaleUp", "Scale Up"), ("scaleDown", "Scale Down")):
            if isinstance(behavior.get(key), dict):
                lines += rules_lines(label, behavior[key])
    kind = _get(spec, "scaleTargetRef", "kind") or "Deployment"
    section(lines, f"{kind} pods", [f"{status.get('currentReplicas', 0)} current / "
                                    f"{status.get('desiredReplicas', 0)} desired"], WIDTH)
    conditions = [c for c in _list(status.get("conditions")) if isinstance(c, dict)]
    if conditions:
        lines.append("Conditions:")
        keys = ("type", "status", "reason", "message")
        lines += _table([k.title() for k in keys], [[str(c.get(k) or "") for k in keys] for c in conditions])
    else:
        section(lines, "Conditions", [NONE], WIDTH)
    lines += events_lines(hpa, events, now, events_error)
    return "\n".join(lines) + "\n"
