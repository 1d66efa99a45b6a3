"""`berth describe` for Deployments and ReplicaSets, laid out as kubectl's pages for them.

A generic page (berth.cli.describe) would show their specs field by field; a person reading a
workload wants its counts on one line, its strategy, its pod template as containers, its
conditions as a table and, for a Deployment, which ReplicaSets are old and which is new, which
needs the ReplicaSets beside it (a ReplicaSet's page needs its pods). The pod template's text is
also what `berth rollout history --revision N` prints.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from berth.cli.columns import _get, _int, selector_text  # the tables' readers of stored objects
from berth.cli.describe import events_lines, header, pairs, render_value, section, shown
from berth.cli.output import render_table
from berth.cli.rollouts import controlled_by, same_template
from berth.objects import Obj

NONE = "<none>"
WIDTH = 24  # past "RollingUpdateStrategy:", kubectl's longest label here
TEMPLATE_WIDTH = 19  # past "  Node-Selectors:"


# --- the pod template --------------------------------------------------------------------------

def _ports(container: Obj) -> str:
    ports = [p for p in container.get("ports") or [] if isinstance(p, dict)]
    return ", ".join(f"{p.get('containerPort')}/{p.get('protocol') or 'TCP'}" for p in ports) or NONE


def _probe(probe: Any) -> str:
    """One line, as kubectl shows a probe: its action, then its timing."""
    if not isinstance(probe, dict):
        return NONE
    if isinstance(probe.get("exec"), dict):
        action = "exec [" + " ".join(str(w) for w in probe["exec"].get("command") or []) + "]"
    elif isinstance(probe.get("httpGet"), dict):
        get = probe["httpGet"]
        action = f"http-get http://:{get.get('port')}{get.get('path') or '/'}"
    elif isinstance(probe.get("tcpSocket"), dict):
        action = f"tcp-socket :{probe['tcpSocket'].get('port')}"
    else:
        action = "unknown"
    timing = (f"delay={_int(probe.get('initialDelaySeconds'))}s timeout={probe.get('timeoutSeconds', 1)}s "
              f"period={probe.get('periodSeconds', 10)}s #success={probe.get('successThreshold', 1)} "
              f"#failure={probe.get('failureThreshold', 3)}")
    return f"{action} {timing}"


def _env(container: Obj) -> list[str]:
    """Values as written; one taken from a ConfigMap or Secret says where from, never its value."""
    lines = []
    for var in container.get("env") or []:
        if not isinstance(var, dict):
            continue
        source = var.get("valueFrom") or {}
        if "value" in var:
            value = str(var["value"])
        elif isinstance(source, dict) and source:
            kind, ref = next(iter(source.items()))
            what = "config map" if kind == "configMapKeyRef" else "secret"
            value = f"<set to the key '{_get(ref, 'key')}' in {what} '{_get(ref, 'name')}'>"
        else:
            value = ""
        lines.append(f"{var.get('name')}:  {value}")
    return lines


def _container_lines(container: Obj) -> list[str]:
    lines = [f"   {container.get('name')}:"]
    width = 15  # past "    Environment:"
    pad = " " * 6
    section(lines, "    Image", [str(container.get("image") or NONE)], width + 3)
    section(lines, "    Port" + ("s" if len(container.get("ports") or []) > 1 else ""), [_ports(container)],
            width + 3)
    for key, label in (("command", "Command"), ("args", "Args")):
        if container.get(key):
            lines.append(f"    {label}:")
            lines.extend(pad + str(word) for word in container[key])
    for key, label in (("limits", "Limits"), ("requests", "Requests")):
        amounts = _get(container, "resources", key)
        if isinstance(amounts, dict) and amounts:
            lines.append(f"    {label}:")
            lines.extend(f"{pad}{name}:  {shown(name, value)}" for name, value in amounts.items())
    for key, label in (("livenessProbe", "Liveness"), ("readinessProbe", "Readiness")):
        if container.get(key):
            section(lines, f"    {label}", [_probe(container[key])], width + 3)
    env = _env(container)
    if env:
        lines.append("    Environment:")
        lines.extend(pad + line for line in env)
    else:
        section(lines, "    Environment", [NONE], width + 3)
    return lines


def pod_template_lines(template: Any) -> list[str]:
    """`Pod Template:` and what a pod made from it would be: labels, annotations, each container."""
    meta, spec = _get(template, "metadata") or {}, _get(template, "spec") or {}
    lines = ["Pod Template:"]
    section(lines, "  Labels", pairs(meta.get("labels")), TEMPLATE_WIDTH)
    if meta.get("annotations"):
        section(lines, "  Annotations", pairs(meta.get("annotations")), TEMPLATE_WIDTH)
    for key, label in (("initContainers", "Init Containers"), ("containers", "Containers")):
        containers = [c for c in spec.get(key) or [] if isinstance(c, dict)]
        if containers or key == "containers":
            lines.append(f"  {label}:" if containers else f"  {label}:  {NONE}")
            for container in containers:
                lines.extend(_container_lines(container))
    section(lines, "  Node-Selectors", pairs(spec.get("nodeSelector")), TEMPLATE_WIDTH)
    tolerations = spec.get("tolerations") or []
    if tolerations:
        lines.append("  Tolerations:")
        lines.extend(render_value(tolerations, 4))
    else:
        section(lines, "  Tolerations", [NONE], TEMPLATE_WIDTH)
    return lines


# --- conditions and ReplicaSets ----------------------------------------------------------------

def conditions_lines(obj: Obj) -> list[str]:
    conditions = [c for c in _get(obj, "status", "conditions") or [] if isinstance(c, dict)]
    if not conditions:
        return ["Conditions:  " + NONE]
    headers = ["Type", "Status", "Reason"]
    body = [["-" * len(h) for h in headers],
            *([str(c.get("type") or ""), str(c.get("status") or ""), str(c.get("reason") or "")]
              for c in conditions)]
    return ["Conditions:", *("  " + line for line in render_table(headers, body).splitlines())]


def _replicasets_text(replicasets: list[Obj]) -> str:
    """`web-abc (3/3 replicas created)`: pods made of those it should have."""
    return ", ".join(f"{_get(rs, 'metadata', 'name')} ({_int(_get(rs, 'status', 'replicas'))}/"
                     f"{_int(_get(rs, 'spec', 'replicas'))} replicas created)" for rs in replicasets) or NONE


def new_and_old(deployment: Obj, replicasets: list[Obj]) -> tuple[Obj | None, list[Obj]]:
    """The ReplicaSet of the Deployment's template (the oldest, if by hand there are two), and the
    old ones that still have or should have pods, as kubectl's describe lists them."""
    owned = controlled_by(deployment, replicasets)
    template = _get(deployment, "spec", "template") or {}
    same = [rs for rs in owned if same_template(_get(rs, "spec", "template") or {}, template)]
    new = min(same, key=lambda rs: (str(_get(rs, "metadata", "creationTimestamp") or ""),
                                    str(_get(rs, "metadata", "name")))) if same else None
    old = [rs for rs in owned if rs is not new
           and (_int(_get(rs, "spec", "replicas")) or _int(_get(rs, "status", "replicas")))]
    return new, old


# --- the pages ---------------------------------------------------------------------------------

def _strategy_lines(deployment: Obj) -> list[str]:
    spec = deployment.get("spec") or {}
    strategy = spec.get("strategy") or {}
    kind = str(strategy.get("type") or "RollingUpdate")
    lines: list[str] = []
    section(lines, "StrategyType", [kind], WIDTH)
    section(lines, "MinReadySeconds", [str(_int(spec.get("minReadySeconds")))], WIDTH)
    if kind == "RollingUpdate":
        rolling = strategy.get("rollingUpdate") or {}
        text = (f"{rolling.get('maxUnavailable', '25%')} max unavailable, "
                f"{rolling.get('maxSurge', '25%')} max surge")
        section(lines, "RollingUpdateStrategy", [text], WIDTH)
    return lines


def describe_deployment(deployment: Obj, replicasets: list[Obj], events: list[Obj] | None, now: datetime,
                        events_error: str | None = None) -> str:
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    lines = header(deployment, WIDTH)
    section(lines, "Selector", [selector_text(_get(spec, "selector", "matchLabels"))], WIDTH)
    counts = (f"{_int(spec.get('replicas'))} desired | {_int(status.get('updatedReplicas'))} updated | "
              f"{_int(status.get('replicas'))} total | {_int(status.get('availableReplicas'))} available | "
              f"{_int(status.get('unavailableReplicas'))} unavailable")
    section(lines, "Replicas", [counts], WIDTH)
    lines += _strategy_lines(deployment)
    if spec.get("paused"):
        section(lines, "Paused", ["true"], WIDTH)
    lines += pod_template_lines(spec.get("template"))
    lines += conditions_lines(deployment)
    new, old = new_and_old(deployment, replicasets)
    section(lines, "OldReplicaSets", [_replicasets_text(old)], WIDTH)
    section(lines, "NewReplicaSet", [_replicasets_text([new] if new else [])], WIDTH)
    lines += events_lines(deployment, events, now, events_error)
    return "\n".join(lines) + "\n"


def _controller(obj: Obj) -> str:
    for ref in _get(obj, "metadata", "ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller"):
            return f"{ref.get('kind')}/{ref.get('name')}"
    return NONE


def pods_status(pods: list[Obj]) -> str:
    """kubectl's count of a ReplicaSet's pods by phase (Pending counts as Waiting)."""
    phases = [str(_get(p, "status", "phase") or "Pending") for p in pods]
    return (f"{phases.count('Running')} Running / {phases.count('Pending')} Waiting / "
            f"{phases.count('Succeeded')} Succeeded / {phases.count('Failed')} Failed")


def describe_replicaset(rs: Obj, pods: list[Obj], events: list[Obj] | None, now: datetime,
                        events_error: str | None = None) -> str:
    """`pods`: those the ReplicaSet controls (by uid), whatever their labels say now."""
    spec, status = rs.get("spec") or {}, rs.get("status") or {}
    lines = header(rs, WIDTH)
    section(lines, "Selector", [selector_text(_get(spec, "selector", "matchLabels"))], WIDTH)
    section(lines, "Controlled By", [_controller(rs)], WIDTH)
    section(lines, "Replicas", [f"{_int(status.get('replicas'))} current / {_int(spec.get('replicas'))} "
                                "desired"], WIDTH)
    section(lines, "Pods Status", [pods_status(controlled_by(rs, pods))], WIDTH)
    lines += pod_template_lines(spec.get("template"))
    lines += conditions_lines(rs) if _get(rs, "status", "conditions") else []
    lines += events_lines(rs, events, now, events_error)
    return "\n".join(lines) + "\n"
