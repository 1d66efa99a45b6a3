"""`berth get` and `berth top`: lists and tables of what the cluster holds and uses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from berth.cli import jsonpath
from berth.cli.columns import bytes_text, node_status
from berth.cli.commands.common import (
    BerthGroup,
    State,
    all_namespaces_option,
    fetch_named,
    namespace_option,
    no_resources,
    pass_state,
    selector_option,
    split_ref,
)
from berth.cli.output import as_list, ref, render_objects, render_table, to_json, to_yaml
from berth.cli.watching import follow
from berth.client import kind_info
from berth.errors import BerthError
from berth.kinds import KINDS, Kind
from berth.objects import Obj
from berth.quantity import cpu_millis, memory_bytes

ALL = ("Pod", "Service", "Deployment", "ReplicaSet", "HorizontalPodAutoscaler")  # `get all`, as kubectl
UNKNOWN = "<unknown>"  # kubectl top's word for a figure it does not have
OUTPUTS = ("wide", "json", "yaml", "name")
TEMPLATED = ("jsonpath=", "custom-columns=")


def _templated(output: str, items: list[Obj], payload: Any) -> str:
    """`-o jsonpath=...` over what json would show; `-o custom-columns=...` a row per object."""
    if output.startswith("jsonpath="):
        return jsonpath.render(output.removeprefix("jsonpath="), payload) + "\n"
    columns = jsonpath.column_spec(output.removeprefix("custom-columns="))
    rows = [[" ".join(jsonpath.text(v) for v in jsonpath.values(obj, path)) or "<none>"
             for _, path in columns] for obj in items]
    return render_table([header for header, _ in columns], rows)


@click.command()
@click.argument("kind")
@click.argument("names", nargs=-1)
@click.option("-o", "--output", default=None, metavar="FORMAT",
              help="wide, json, yaml, name, jsonpath=TEMPLATE or custom-columns=HEADER:.path,...")
@selector_option
@click.option("--field-selector", default=None, metavar="SELECTOR", help="e.g. spec.nodeName=h1.")
@click.option("--sort-by", default=None, metavar="PATH", help="Order by a JSONPath, e.g. .metadata.name.")
@namespace_option
@all_namespaces_option
@click.option("--consistent", is_flag=True, help="Read through the leader (no stale follower data).")
@click.option("--show-labels", is_flag=True, help="A LABELS column, as kubectl's.")
@click.option("-w", "--watch", "watch_", is_flag=True, help="After the list, a row for each change.")
@click.option("--request-timeout", type=float, default=None, metavar="SECONDS",
              help="With --watch: stop after this long (default: until Ctrl-C).")
@pass_state
def get(
    state: State,
    kind: str,
    names: tuple[str, ...],
    output: str | None,
    selector: str | None,
    field_selector: str | None,
    sort_by: str | None,
    namespace: str | None,
    all_namespaces: bool,
    consistent: bool,
    show_labels: bool,
    watch_: bool,
    request_timeout: float | None,
) -> None:
    """List objects of KIND (or KIND,KIND...), or show the named ones."""
    if output not in (None, *OUTPUTS) and not output.startswith(TEMPLATED):
        raise click.BadParameter(f"{output!r}: use {', '.join(OUTPUTS)}, jsonpath=... or custom-columns=...",
                                 param_hint="--output")
    kind, names = split_ref(kind, names)
    if names and (selector or all_namespaces):
        raise click.UsageError("NAME cannot be combined with --selector or --all-namespaces")
    wanted = [k for part in kind.split(",") for k in (ALL if part == "all" else (part,)) if k]
    kinds = list(dict.fromkeys(kind_info(k) for k in wanted))
    if not kinds:
        raise click.UsageError("KIND is empty")
    if names and len(kinds) > 1:
        raise click.UsageError("NAME needs a single KIND")
    ns = state.ns(namespace)
    if len(kinds) > 1:
        if output and output.startswith(TEMPLATED):
            raise click.UsageError("jsonpath and custom-columns take one KIND")
        _get_many(state, kinds, output, selector, ns, all_namespaces, consistent, show_labels)
        return
    info = kinds[0]
    failed = False
    if names:
        items, failed = fetch_named(state, info, names, ns, consistent)
        if not items:
            raise SystemExit(1)
        payload: Any = items[0] if len(names) == 1 else as_list(info.kind, items)
    else:
        payload = state.client.list(info, ns, all_namespaces=all_namespaces, label_selector=selector,
                                    consistent=consistent, field_selector=field_selector)
        items = payload.get("items") or []
    if sort_by:
        items = sorted(items, key=jsonpath.sort_key(sort_by))
        payload = as_list(info.kind, items) if isinstance(payload, dict) and "items" in payload else payload
    if output and output.startswith(TEMPLATED):
        click.echo(_templated(output, items, payload), nl=False)
        return
    if not items and output not in ("json", "yaml"):
        click.echo(no_resources(info, ns, all_namespaces), err=True)
        if watch_:
            _watch_rows(state, info, ns, all_namespaces, selector, names, output, payload, request_timeout,
                        show_labels)
        return
    if info.kind == "Node" and output in (None, "wide"):
        items = with_usage(state, items)
    across = all_namespaces and info.namespaced
    click.echo(
        render_objects(info.kind, items, output, namespaced_view=across, payload=payload,
                       show_labels=show_labels),
        nl=False,
    )
    if watch_:
        _watch_rows(state, info, ns, all_namespaces, selector, names, output, payload, request_timeout,
                    show_labels)
    if failed:
        raise SystemExit(1)


def _watch_rows(state: State, info: Kind, namespace: str, all_namespaces: bool, selector: str | None,
                names: tuple[str, ...], output: str | None, listed: Any, timeout: float | None,
                show_labels: bool) -> None:
    """kubectl get -w: after the table, one row for each change, from the revision the list was read at."""
    since = int((listed.get("metadata") or {}).get("resourceVersion") or 0) if isinstance(listed, dict) else 0
    across = all_namespaces and info.namespaced
    try:
        for event in follow(state.client, info, namespace, all_namespaces=all_namespaces,
                            label_selector=selector, since=since or None, timeout=timeout,
                            notice=lambda message: click.echo(f"# {message}", err=True)):
            obj = event.get("object") or {}
            if names and (obj.get("metadata") or {}).get("name") not in names:
                continue
            table = render_objects(info.kind, [obj], output if output in (None, "wide") else None,
                                   namespaced_view=across, show_labels=show_labels)
            click.echo(table.splitlines()[1] if output in (None, "wide") else ref(obj))
    except KeyboardInterrupt:
        raise SystemExit(130) from None


def with_usage(state: State, nodes: list[Obj]) -> list[Obj]:
    """Nodes with the leader's latest usage figures beside their status (display only). A node
    that is not Ready keeps only when it was last heard: its last figures are not its usage now."""
    try:
        metrics = state.client.node_metrics()
    except BerthError:
        return nodes  # the table still shows capacity and allocatable
    now = datetime.now(UTC)
    shown = []
    for node in nodes:
        usage = metrics.get(node["metadata"]["name"])
        if usage is not None and not node_status(node, now).startswith("Ready"):
            usage = {k: v for k, v in usage.items() if k == "secondsSinceHeartbeat"}
        status = {**(node.get("status") or {}), "usage": usage}
        shown.append(node if usage is None else {**node, "status": status})
    return shown


@click.group(cls=BerthGroup)
def top() -> None:
    """Resource usage, as the agents last reported it."""


@top.command("nodes")
@pass_state
def top_nodes(state: State) -> None:
    """CPU and memory in use on each node."""
    nodes = with_usage(state, state.client.list("Node").get("items") or [])
    rows = []
    for node in nodes:
        status = node.get("status") or {}
        usage = status.get("usage") or {}
        capacity = (status.get("capacity") or {}).get("memory")
        used = usage.get("memoryUsed")
        share = f"{100 * used / capacity:.0f}%" if isinstance(used, int) and capacity else UNKNOWN
        cpu = usage.get("cpuPercent")
        seen = usage.get("secondsSinceHeartbeat")
        rows.append([node["metadata"]["name"], f"{cpu:.0f}%" if cpu is not None else UNKNOWN,
                     bytes_text(used) if used is not None else UNKNOWN, share,
                     f"{seen:.1f}s ago" if seen is not None else "never"])
    click.echo(render_table(["NAME", "CPU%", "MEMORY", "MEMORY%", "HEARTBEAT"], rows), nl=False)


@top.command("pods")
@selector_option
@namespace_option
@all_namespaces_option
@click.option("--containers", is_flag=True, help="A row per container, as kubectl's.")
@pass_state
def top_pods(state: State, selector: str | None, namespace: str | None, all_namespaces: bool,
             containers: bool) -> None:
    """CPU (millicores) and memory (working set) of each pod, as its agent last measured them."""
    items = state.client.pod_metrics(None if all_namespaces else state.ns(namespace), selector)
    header = [*(["NAMESPACE"] if all_namespaces else []), *(["POD", "NAME"] if containers else ["NAME"]),
              "CPU(cores)", "MEMORY(bytes)"]
    rows = []
    for item in sorted(items, key=lambda i: (i["metadata"]["namespace"], i["metadata"]["name"])):
        where = [item["metadata"]["namespace"]] if all_namespaces else []
        usages = [(c["name"], cpu_millis(c["usage"]["cpu"]), memory_bytes(c["usage"]["memory"]))
                  for c in item.get("containers") or []]
        pod = item["metadata"]["name"]
        if containers:
            rows += [[*where, pod, name, f"{cpu}m", bytes_text(memory)] for name, cpu, memory in usages]
        else:
            rows.append([*where, pod, f"{sum(u[1] for u in usages)}m", bytes_text(sum(u[2] for u in usages))])
    if not rows:
        raise click.ClickException("no metrics yet: the agents report each pod's usage every few seconds")
    click.echo(render_table(header, rows), nl=False)


def _get_many(
    state: State,
    kinds: list[Kind],
    output: str | None,
    selector: str | None,
    ns: str,
    all_namespaces: bool,
    consistent: bool,
    show_labels: bool = False,
) -> None:
    """`get po,svc`: one table per kind, its rows named `kind/name` as kubectl's; json/yaml gather
    every object into one List."""
    everything: list[Obj] = []
    tables: list[str] = []
    for info in kinds:
        listing = state.client.list(info, ns, all_namespaces=all_namespaces,
                                    label_selector=selector, consistent=consistent)
        items = listing.get("items") or []
        everything.extend(items)
        if items and output not in ("json", "yaml"):
            across = all_namespaces and info.namespaced
            tables.append(render_objects(info.kind, items, output, namespaced_view=across,
                                         show_labels=show_labels, kind_prefix=True))
    if output in ("json", "yaml"):
        payload = {"apiVersion": "berth/v1", "kind": "List", "metadata": {}, "items": everything}
        click.echo(to_json(payload) if output == "json" else to_yaml(payload), nl=False)
    elif not tables:
        click.echo(no_resources(kinds[0], ns, all_namespaces or not kinds[0].namespaced), err=True)
    else:
        click.echo(("" if output == "name" else "\n").join(tables), nl=False)


@click.command("api-resources")
def api_resources() -> None:
    """The kinds the cluster serves, with their short names, as kubectl api-resources."""
    rows = [[info.plural, ",".join(info.short), "berth/v1", "true" if info.namespaced else "false", info.kind]
            for info in sorted(KINDS.values(), key=lambda k: k.plural)]
    click.echo(render_table(["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"], rows), nl=False)
