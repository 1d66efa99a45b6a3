"""`berth describe` for Services, laid out as kubectl's page for them.

A person reading a Service wants where it listens and where that goes: each port with its
target and node port, then the ready pods' addresses on that port, from the Service's Endpoints
(read beside it), as kubectl lists them.
"""

from __future__ import annotations

from datetime import datetime

from berth.cli.columns import _get, endpoints_text, selector_text  # the tables' readers of stored objects
from berth.cli.describe import events_lines, header, section
from berth.objects import Obj

NONE = "<none>"
UNSET = "<unset>"  # kubectl's word for a port without a name
WIDTH = 22


def describe_service(service: Obj, endpoints: Obj | None, events: list[Obj] | None, now: datetime,
                     events_error: str | None = None) -> str:
    """`endpoints`: the Service's Endpoints (None: there are none yet, or it has no selector)."""
    spec = service.get("spec") or {}
    lines = header(service, WIDTH)
    section(lines, "Selector", [selector_text(spec.get("selector"))], WIDTH)
    section(lines, "Type", [str(spec.get("type") or "ClusterIP")], WIDTH)
    section(lines, "IP", [str(spec.get("clusterIP") or NONE)], WIDTH)
    for port in [p for p in _get(spec, "ports") or [] if isinstance(p, dict)]:
        name, protocol = port.get("name") or UNSET, port.get("protocol") or "TCP"
        target = port.get("targetPort") if port.get("targetPort") is not None else port.get("port")
        section(lines, "Port", [f"{name}  {port.get('port')}/{protocol}"], WIDTH)
        section(lines, "TargetPort", [f"{target}/{protocol}"], WIDTH)
        if port.get("nodePort"):
            section(lines, "NodePort", [f"{name}  {port['nodePort']}/{protocol}"], WIDTH)
        section(lines, "Endpoints", [endpoints_text(endpoints, {port.get("name") or ""})], WIDTH)
    affinity = str(spec.get("sessionAffinity") or "None")
    timeout = _get(spec, "sessionAffinityConfig", "clientIP", "timeoutSeconds")
    section(lines, "Session Affinity", [f"{affinity} (timeout {timeout}s)" if timeout else affinity], WIDTH)
    lines += events_lines(service, events, now, events_error)
    return "\n".join(lines) + "\n"
