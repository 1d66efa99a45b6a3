"""`berth describe` for Nodes and PodDisruptionBudgets, laid out as kubectl's pages for them.

A node's page is what an operator reads before and after a drain: its taints and whether it is
cordoned at the top, its conditions as a table, what it has and offers, and the pods bound to it
with what they request (kubectl's "Non-terminated Pods"). A budget's page says what it asks and
what its controller last counted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from berth.cli.columns import (  # the tables' readers of stored objects
    _get,
    _int,
    bytes_text,
    cpu_text,
    selector_text,
)
from berth.cli.describe import events_lines, header, section, time_text
from berth.cli.output import render_table
from berth.cli.timefmt import age
from berth.objects import Obj
from berth.quantity import cpu_millis, memory_bytes

NONE = "<none>"
WIDTH = 22


def taint_text(taint: Any) -> str:
    if not isinstance(taint, dict):
        return str(taint)
    key = f"{taint.get('key')}={taint['value']}" if taint.get("value") else str(taint.get("key"))
    return f"{key}:{taint.get('effect')}"


def _table(headers: list[str], body: list[list[str]]) -> list[str]:
    underline = ["-" * len(h) for h in headers]
    return ["  " + line for line in render_table(headers, [underline, *body]).splitlines()]


def _requested(pod: Obj, resource: str) -> int:
    """What the pod's app containers request of `resource`, in millicores or bytes."""
    parse = cpu_millis if resource == "cpu" else memory_bytes
    total = 0
    for container in _get(pod, "spec", "containers") or []:
        value = _get(container, "resources", "requests", resource)
        if value is not None:
            try:
                total += parse(value)
            except ValueError:
                continue
    return total


def _amounts(values: Any) -> list[str]:
    if not isinstance(values, dict) or not values:
        return [NONE]
    return [f"cpu:     {cpu_text(values.get('cpu'))}", f"memory:  {bytes_text(values.get('memory'))}"]


def describe_node(node: Obj, pods: list[Obj], events: list[Obj] | None, now: datetime,
                  events_error: str | None = None) -> str:
    """`pods`: those bound to the node (terminated ones are left out, as kubectl does)."""
    spec, status = node.get("spec") or {}, node.get("status") or {}
    lines = header(node, WIDTH)
    section(lines, "Taints", [taint_text(t) for t in spec.get("taints") or []] or [NONE], WIDTH)
    section(lines, "Unschedulable", ["true" if spec.get("unschedulable") else "false"], WIDTH)
    conditions = [c for c in status.get("conditions") or [] if isinstance(c, dict)]
    if conditions:
        lines.append("Conditions:")
        lines += _table(["Type", "Status", "LastTransitionTime", "Reason", "Message"],
                        [[str(c.get("type") or ""), str(c.get("status") or ""),
                          str(time_text(c.get("lastTransitionTime")) or ""), str(c.get("reason") or ""),
                          str(c.get("message") or "")] for c in conditions])
    else:
        section(lines, "Conditions", [NONE], WIDTH)
    lines.append("Addresses:")
    lines.append(f"  InternalIP:  {spec.get('address') or NONE}")
    ssh = f"{spec.get('sshUser') or 'root'}@{spec.get('address')}:{spec.get('sshPort') or 22}"
    lines.append(f"  SSH:         {ssh}")
    section(lines, "Runtime", [str(spec.get("runtime") or "podman")], WIDTH)
    section(lines, "PodCIDR", [str(spec.get("podCIDR") or NONE)], WIDTH)
    for key, label in (("capacity", "Capacity"), ("allocatable", "Allocatable")):
        lines.append(f"{label}:")
        lines += ["  " + line for line in _amounts(status.get(key))]
    running = [p for p in pods if _get(p, "status", "phase") not in ("Succeeded", "Failed")]
    lines.append(f"Non-terminated Pods:  ({len(running)} in total)")
    if running:
        lines += _table(["Namespace", "Name", "CPU Requests", "Memory Requests", "Age"],
                        [[str(_get(p, "metadata", "namespace") or ""), str(_get(p, "metadata", "name") or ""),
                          cpu_text(_requested(p, "cpu")), bytes_text(_requested(p, "memory")),
                          age(_get(p, "metadata", "creationTimestamp"), now)] for p in running])
    lines += events_lines(node, events, now, events_error)
    return "\n".join(lines) + "\n"


def describe_budget(pdb: Obj, events: list[Obj] | None, now: datetime,
                    events_error: str | None = None) -> str:
    spec, status = pdb.get("spec") or {}, pdb.get("status") or {}
    lines = header(pdb, WIDTH)
    for key, label in (("minAvailable", "Min available"), ("maxUnavailable", "Max unavailable")):
        if spec.get(key) is not None:
            section(lines, label, [str(spec[key])], WIDTH)
    section(lines, "Selector", [selector_text(_get(spec, "selector", "matchLabels"))], WIDTH)
    lines.append("Status:")
    for key, label in (("disruptionsAllowed", "Allowed disruptions"), ("currentHealthy", "Current"),
                       ("desiredHealthy", "Desired"), ("expectedPods", "Total")):
        lines.append(f"    {label + ':':<22}{_int(status.get(key))}")
    disrupted = status.get("disruptedPods")
    if isinstance(disrupted, dict) and disrupted:
        lines.append("    Disrupted pods:")
        lines += [f"      {name}  {time_text(when)}" for name, when in disrupted.items()]
    conditions = [c for c in status.get("conditions") or [] if isinstance(c, dict)]
    if conditions:
        lines.append("Conditions:")
        lines += _table(["Type", "Status", "Reason"], [[str(c.get("type") or ""), str(c.get("status") or ""),
                                                        str(c.get("reason") or "")] for c in conditions])
    lines += events_lines(pdb, events, now, events_error)
    return "\n".join(lines) + "\n"
