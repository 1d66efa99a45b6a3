"""`berth`: the command line of a Berth cluster, shaped like kubectl so habits carry over.

Commands only parse arguments, call the Client and print; the rendering lives in
berth.cli.output / berth.cli.describe and the HTTP work in berth.cli.client. Every BerthError
(server refusals, unreachable masters, bad manifests) ends as one line on
stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from typing import Any, TypeVar

import click
import requests

from berth.cli import manifests
from berth.cli.client import Client, kind_info
from berth.cli.columns import bytes_text
from berth.cli.config import Config, resolve
from berth.cli.describe import describe as describe_text
from berth.cli.errors import ApiError, BerthError
from berth.cli.output import as_list, ref, render_objects, render_table, to_json, to_yaml
from berth.cli.watching import follow
from berth.kinds import Kind
from berth.lab.cli import lab_group
from berth.objects import Obj

F = TypeVar("F", bound=Callable[..., Any])
ALL = ("Pod", "Service", "Deployment", "HorizontalPodAutoscaler")  # `get all`, as kubectl


def client_version() -> str:
    try:
        return metadata.version("berth")
    except metadata.PackageNotFoundError:
        return "0.1.0"


@dataclass
class State:
    """Global options, resolved into a Config and a Client only when a command needs them,
    so `berth version` and `--help` work without any config."""

    config_file: str | None = None
    servers: tuple[str, ...] = ()
    token: str | None = None
    namespace: str | None = None
    _config: Config | None = field(default=None, repr=False)
    _client: Client | None = field(default=None, repr=False)

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = resolve(
                servers=self.servers,
                token=self.token,
                namespace=self.namespace,
                config_file=self.config_file,
            )
        return self._config

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client.from_config(self.config)
        return self._client

    def ns(self, explicit: str | None) -> str:
        return explicit or self.config.namespace

    def explicit_ns(self, explicit: str | None) -> str | None:
        """Only a namespace the user typed here may override one written in a manifest."""
        return explicit or self.namespace


class BerthGroup(click.Group):
    """Turns errors into kubectl-style messages here, so CliRunner sees them as a user would."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (BerthError, requests.RequestException) as err:
            report(err)
        ctx.exit(1)


def namespace_option(func: F) -> F:
    return click.option(
        "-n", "--namespace", "namespace", default=None, metavar="NS",
        help="Namespace (default: from --namespace before the command, BERTH_NAMESPACE, config).",
    )(func)


def selector_option(func: F) -> F:
    return click.option(
        "-l", "--selector", "selector", default=None, metavar="SELECTOR",
        help="Label selector, e.g. app=web,tier!=db.",
    )(func)


def all_namespaces_option(func: F) -> F:
    return click.option(
        "-A", "--all-namespaces", "all_namespaces", is_flag=True,
        help="List across all namespaces.",
    )(func)


def filename_option(required: bool) -> Callable[[F], F]:
    return click.option(
        "-f", "--filename", "filenames", multiple=True, required=required, metavar="FILE",
        help="Manifest file, directory of manifests, or - for stdin (repeatable).",
    )


def pass_state(func: F) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        # ensure_object: a subcommand invoked on its own (CliRunner) still gets defaults.
        return func(click.get_current_context().ensure_object(State), *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def report(err: Exception) -> None:
    click.echo(err.describe() if isinstance(err, ApiError) else f"Error: {err}", err=True)


def split_ref(kind: str, names: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """`get pod/web` as kubectl allows, besides `get pod web`."""
    if "/" in kind and not names:
        kind, name = kind.split("/", 1)
        return kind, (name,)
    return kind, names


# --- the group -------------------------------------------------------------------------

@click.group(cls=BerthGroup, name="berth", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_file", default=None, metavar="PATH",
              help="Config file (default $BERTH_CONFIG or $XDG_CONFIG_HOME/berth/config.yaml).")
@click.option("--server", "-s", "servers", multiple=True, metavar="URL",
              help="Master URL; repeat or comma-separate for failover (env BERTH_SERVER).")
@click.option("--token", default=None, help="Bearer token (env BERTH_TOKEN).")
@click.option("-n", "--namespace", "namespace", default=None, metavar="NS",
              help="Default namespace for every command (env BERTH_NAMESPACE).")
@click.version_option(client_version(), "--version", prog_name="berth")
@click.pass_context
def main(
    ctx: click.Context,
    config_file: str | None,
    servers: tuple[str, ...],
    token: str | None,
    namespace: str | None,
) -> None:
    """Operate a Berth cluster."""
    ctx.obj = State(config_file, servers, token, namespace)


berth = main  # the group under its own name, for `from berth.cli.main import berth`


@main.command()
def version() -> None:
    """Print the client version."""
    click.echo(f"Client Version: {client_version()}")


# --- get -------------------------------------------------------------------------------

def _fetch_named(
    state: State,
    info: Kind,
    names: tuple[str, ...],
    namespace: str | None,
    consistent: bool = False,
) -> tuple[list[Obj], bool]:
    """Each name separately, as kubectl does: one missing object does not hide the others."""
    found: list[Obj] = []
    failed = False
    for name in names:
        try:
            found.append(state.client.get(info, name, namespace, consistent=consistent))
        except ApiError as err:
            report(err)
            failed = True
    return found, failed


def _no_resources(info: Kind, namespace: str, all_namespaces: bool) -> str:
    if info.namespaced and not all_namespaces:
        return f"No resources found in {namespace} namespace."
    return "No resources found"


@main.command()
@click.argument("kind")
@click.argument("names", nargs=-1)
@click.option("-o", "--output", type=click.Choice(["wide", "json", "yaml", "name"]), default=None)
@selector_option
@namespace_option
@all_namespaces_option
@click.option("--consistent", is_flag=True, help="Read through the leader (no stale follower data).")
@pass_state
def get(
    state: State,
    kind: str,
    names: tuple[str, ...],
    output: str | None,
    selector: str | None,
    namespace: str | None,
    all_namespaces: bool,
    consistent: bool,
) -> None:
    """List objects of KIND (or KIND,KIND...), or show the named ones."""
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
        _get_many(state, kinds, output, selector, ns, all_namespaces, consistent)
        return
    info = kinds[0]
    failed = False
    if names:
        items, failed = _fetch_named(state, info, names, ns, consistent)
        if not items:
            raise SystemExit(1)
        payload: Any = items[0] if len(names) == 1 else as_list(info.kind, items)
    else:
        payload = state.client.list(info, ns, all_namespaces=all_namespaces,
                                    label_selector=selector, consistent=consistent)
        items = payload.get("items") or []
    if not items and output not in ("json", "yaml"):
        click.echo(_no_resources(info, ns, all_namespaces), err=True)
        return
    if info.kind == "Node" and output in (None, "wide"):
        items = with_usage(state, items)
    across = all_namespaces and info.namespaced
    click.echo(
        render_objects(info.kind, items, output, namespaced_view=across, payload=payload),
        nl=False,
    )
    if failed:
        raise SystemExit(1)


def with_usage(state: State, nodes: list[Obj]) -> list[Obj]:
    """Nodes with the leader's latest usage figures beside their status (display only)."""
    try:
        metrics = state.client.node_metrics()
    except BerthError:
        return nodes  # the table still shows capacity and allocatable
    return [{**n, "status": {**(n.get("status") or {}), "usage": metrics[n["metadata"]["name"]]}}
            if n["metadata"]["name"] in metrics else n for n in nodes]


@main.group(cls=BerthGroup)
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
        share = f"{100 * used / capacity:.0f}%" if isinstance(used, int) and capacity else "?"
        cpu = usage.get("cpuPercent")
        seen = usage.get("secondsSinceHeartbeat")
        rows.append([node["metadata"]["name"], f"{cpu:.0f}%" if cpu is not None else "?",
                     bytes_text(used), share, f"{seen:.1f}s ago" if seen is not None else "never"])
    click.echo(render_table(["NAME", "CPU%", "MEMORY", "MEMORY%", "HEARTBEAT"], rows), nl=False)


def _get_many(
    state: State,
    kinds: list[Kind],
    output: str | None,
    selector: str | None,
    ns: str,
    all_namespaces: bool,
    consistent: bool,
) -> None:
    """`get po,svc`: one table per kind; json/yaml gather every object into one List."""
    everything: list[Obj] = []
    tables: list[str] = []
    for info in kinds:
        listing = state.client.list(info, ns, all_namespaces=all_namespaces,
                                    label_selector=selector, consistent=consistent)
        items = listing.get("items") or []
        everything.extend(items)
        if items and output not in ("json", "yaml"):
            across = all_namespaces and info.namespaced
            tables.append(render_objects(info.kind, items, output, namespaced_view=across))
    if output in ("json", "yaml"):
        payload = {"apiVersion": "berth/v1", "kind": "List", "metadata": {}, "items": everything}
        click.echo(to_json(payload) if output == "json" else to_yaml(payload), nl=False)
    elif not tables:
        click.echo(_no_resources(kinds[0], ns, all_namespaces or not kinds[0].namespaced), err=True)
    else:
        click.echo(("" if output == "name" else "\n").join(tables), nl=False)


# --- describe --------------------------------------------------------------------------

def _events_for(state: State, obj: Obj) -> tuple[list[Obj] | None, str | None]:
    """Events are fetched per namespace and filtered here; their absence is not an error."""
    ns = (obj.get("metadata") or {}).get("namespace")
    try:
        listing = state.client.list("Event", ns, all_namespaces=ns is None)
    except BerthError as err:
        message = err.message if isinstance(err, ApiError) else str(err)
        return None, f"unable to list events: {message}"
    return listing.get("items") or [], None


@main.command()
@click.argument("kind")
@click.argument("names", nargs=-1)
@selector_option
@namespace_option
@pass_state
def describe(
    state: State, kind: str, names: tuple[str, ...], selector: str | None, namespace: str | None
) -> None:
    """Show one object in detail, with the events about it."""
    kind, names = split_ref(kind, names)
    info = kind_info(kind)
    ns = state.ns(namespace)
    if names:
        objects, failed = _fetch_named(state, info, names, ns)
    else:
        objects = state.client.list(info, ns, label_selector=selector).get("items") or []
        failed = False
        if not objects:
            click.echo(_no_resources(info, ns, False), err=True)
    now = datetime.now(UTC)
    texts = []
    for obj in objects:
        events, problem = _events_for(state, obj)
        texts.append(describe_text(obj, events, now, problem))
    if texts:
        click.echo("\n\n".join(t.rstrip("\n") for t in texts))
    if failed:
        raise SystemExit(1)


# --- run / logs / exec -------------------------------------------------------------------

def _port(text: str) -> dict[str, int]:
    """HOSTPORT:CONTAINERPORT, or CONTAINERPORT alone."""
    parts = text.split(":")
    if len(parts) > 2 or not all(p.isdigit() for p in parts):
        raise click.BadParameter(f"{text!r}: use HOSTPORT:CONTAINERPORT or CONTAINERPORT",
                                 param_hint="--port")
    numbers = [int(p) for p in parts]
    return {"containerPort": numbers[-1], **({"hostPort": numbers[0]} if len(numbers) == 2 else {})}


def _env(text: str) -> dict[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise click.BadParameter(f"{text!r}: use NAME=VALUE", param_hint="--env")
    return {"name": name, "value": value}


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("name")
@click.option("--image", required=True, help="The container image.")
@click.option("--cpu", help="CPU request, e.g. 250m.")
@click.option("--memory", help="Memory request, e.g. 64Mi.")
@click.option("--port", "ports", multiple=True, metavar="[HOST:]PORT", help="A container port (repeatable).")
@click.option("--env", "env", multiple=True, metavar="NAME=VALUE", help="An env variable (repeatable).")
@click.option("--restart", type=click.Choice(["Always", "OnFailure", "Never"]), default="Always")
@namespace_option
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@pass_state
def run(state: State, name: str, image: str, cpu: str | None, memory: str | None, ports: tuple[str, ...],
        env: tuple[str, ...], restart: str, namespace: str | None, command: tuple[str, ...]) -> None:
    """Run one pod: berth run NAME --image IMG [--cpu 250m --memory 64Mi] [--port 8080:80] -- CMD..."""
    requests_ = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    container: dict[str, Any] = {"name": name, "image": image, "ports": [_port(p) for p in ports],
                                 "env": [_env(e) for e in env], "resources": {"requests": requests_}}
    if command:
        container["command"] = list(command)
    manifest = {"apiVersion": "berth/v1", "kind": "Pod", "metadata": {"name": name, "labels": {"run": name}},
                "spec": {"containers": [container], "restartPolicy": restart}}
    created = state.client.create(manifest, namespace=state.explicit_ns(namespace))
    click.echo(f"{ref(created)} created")


@main.command()
@click.argument("pod")
@click.option("-c", "--container", help="The container (needed when the pod has several).")
@click.option("-f", "--follow", is_flag=True, help="Keep printing what the container writes.")
@click.option("--tail", type=click.IntRange(0, 100_000), help="Only the last N lines.")
@namespace_option
@pass_state
def logs(state: State, pod: str, container: str | None, follow: bool, tail: int | None,
         namespace: str | None) -> None:
    """Print a container's output, fetched from its host."""
    out = sys.stdout.buffer
    chunks = state.client.pod_log(pod, state.ns(namespace), container=container, follow=follow, tail=tail)
    for chunk in chunks:
        out.write(chunk)
        out.flush()


@main.command(name="exec", context_settings={"ignore_unknown_options": True})
@click.argument("pod")
@click.option("-c", "--container", help="The container (needed when the pod has several).")
@click.option("-i", "--stdin", "send_stdin", is_flag=True, help="Pass this command's standard input.")
@namespace_option
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@pass_state
def exec_(state: State, pod: str, container: str | None, send_stdin: bool, namespace: str | None,
          command: tuple[str, ...]) -> None:
    """Run a command in a container: berth exec POD [-c C] -- CMD...; exits with its status."""
    stdin = sys.stdin.read() if send_stdin else None
    result = state.client.pod_exec(pod, list(command), state.ns(namespace), container=container, stdin=stdin)
    sys.stdout.write(result.get("stdout", ""))
    sys.stderr.write(result.get("stderr", ""))
    sys.stdout.flush()
    raise SystemExit(int(result.get("exitCode", 1)))


# --- apply / create / delete -----------------------------------------------------------

@main.command()
@filename_option(required=True)
@namespace_option
@click.option("-o", "--output", type=click.Choice(["json", "yaml", "name"]), default=None)
@pass_state
def apply(state: State, filenames: tuple[str, ...], namespace: str | None, output: str | None) -> None:
    """Create or update the objects of the manifests, all in one atomic request."""
    objects = manifests.load(filenames, sys.stdin)
    result = state.client.apply(objects, namespace=state.ns(namespace))
    items = result.get("items") or []
    if output == "json":
        click.echo(to_json(result), nl=False)
        return
    if output == "yaml":
        click.echo(to_yaml(result), nl=False)
        return
    actions = result.get("actions") or []
    for index, obj in enumerate(items):
        if output == "name":
            click.echo(ref(obj))
        else:
            action = actions[index] if index < len(actions) else "configured"
            click.echo(f"{ref(obj)} {action}")


@main.command()
@filename_option(required=True)
@namespace_option
@pass_state
def create(state: State, filenames: tuple[str, ...], namespace: str | None) -> None:
    """Create the objects of the manifests; an object that exists already is an error."""
    objects = manifests.load(filenames, sys.stdin)
    failed = False
    for obj in objects:
        try:
            created = state.client.create(obj, namespace=state.explicit_ns(namespace))
        except ApiError as err:
            report(err)
            failed = True
            continue
        click.echo(f"{ref(created)} created")
    if failed:
        raise SystemExit(1)


def _delete_one(
    state: State, info: Kind, name: str, namespace: str | None, ignore_not_found: bool,
    grace_period: int | None = None,
) -> bool:
    try:
        state.client.delete(info, name, namespace, grace_period=grace_period)
    except ApiError as err:
        if err.status == 404 and ignore_not_found:
            return True
        report(err)
        return False
    click.echo(f'{info.singular} "{name}" deleted')
    return True


@main.command()
@click.argument("kind", required=False)
@click.argument("names", nargs=-1)
@filename_option(required=False)
@selector_option
@click.option("--all", "delete_all", is_flag=True, help="Delete every object of KIND in the namespace.")
@click.option("--ignore-not-found", is_flag=True, help="Treat a missing object as deleted.")
@click.option("--grace-period", type=click.IntRange(0, 3600), default=None,
              help="Seconds a running pod gets to stop (default: its terminationGracePeriodSeconds).")
@click.option("--now", "now_", is_flag=True, help="Same as --grace-period 0.")
@namespace_option
@pass_state
def delete(
    state: State,
    kind: str | None,
    names: tuple[str, ...],
    filenames: tuple[str, ...],
    selector: str | None,
    delete_all: bool,
    ignore_not_found: bool,
    grace_period: int | None,
    now_: bool,
    namespace: str | None,
) -> None:
    """Delete objects by KIND and NAME, by selector, or as listed in manifests.

    A pod running on a host is stopped gracefully first and shows Terminating meanwhile."""
    targets: list[tuple[Kind, str, str | None]] = []
    if filenames:
        if kind or names:
            raise click.UsageError("give either -f FILE or KIND NAME..., not both")
        for obj in manifests.load(filenames, sys.stdin):
            info = kind_info(str(obj.get("kind")))
            meta = obj.get("metadata") or {}
            ns = meta.get("namespace") or state.ns(namespace)
            targets.append((info, str(meta.get("name") or ""), ns))
    else:
        if not kind:
            raise click.UsageError("give KIND NAME..., KIND -l SELECTOR, KIND --all, or -f FILE")
        kind, names = split_ref(kind, names)
        info = kind_info(kind)
        ns = state.ns(namespace)
        if names:
            targets.extend((info, name, ns) for name in names)
        elif selector or delete_all:
            listing = state.client.list(info, ns, label_selector=selector)
            for obj in listing.get("items") or []:
                meta = obj.get("metadata") or {}
                targets.append((info, str(meta.get("name")), meta.get("namespace") or ns))
            if not targets:
                click.echo(_no_resources(info, ns, False), err=True)
        else:
            raise click.UsageError("give NAME..., -l SELECTOR or --all")
    ok = True
    for info, name, ns in targets:
        ok = _delete_one(state, info, name, ns, ignore_not_found, 0 if now_ else grace_period) and ok
    if not ok:
        raise SystemExit(1)


# --- cluster ---------------------------------------------------------------------------

def _role(member: Obj, status: Obj) -> str:
    if member.get("leader"):
        return "leader"
    if member.get("self") and status.get("state") not in (None, "leader"):
        return str(status["state"])
    return "follower"


def render_cluster(status: Obj) -> str:
    def yes(value: Any) -> str:
        return "yes" if value else "no"

    summary = [
        ("Answered by", f"{status.get('self', '?')} ({status.get('state', '?')})"),
        ("Leader", status.get("leader") or "<none>"),
        ("Term", status.get("term", "?")),
        ("Commit index", status.get("commitIndex", "?")),
        ("Last applied", status.get("lastApplied", "?")),
        ("Revision", status.get("revision", "?")),
        ("Ready", yes(status.get("ready"))),
    ]
    width = max(len(label) for label, _ in summary) + 3
    head = "".join(f"{(label + ':').ljust(width)}{value}\n" for label, value in summary)
    members = status.get("members") or []
    rows = [
        [
            str(m.get("address", "")) + (" (self)" if m.get("self") else ""),
            _role(m, status),
            yes(m.get("reachable")),
        ]
        for m in members
    ]
    return head + "\n" + render_table(["ADDRESS", "ROLE", "REACHABLE"], rows)


@main.group(cls=BerthGroup, invoke_without_command=True)
@click.pass_context
def cluster(ctx: click.Context) -> None:
    """Inspect the masters (without a subcommand: `cluster status`)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(cluster_status)


@cluster.command("status")
@click.option("-o", "--output", type=click.Choice(["json", "yaml"]), default=None)
@pass_state
def cluster_status(state: State, output: str | None = None) -> None:
    """Members, roles and Raft progress, as the answering master sees them."""
    status = state.client.cluster()
    if output == "json":
        click.echo(to_json(status), nl=False)
    elif output == "yaml":
        click.echo(to_yaml(status), nl=False)
    else:
        click.echo(render_cluster(status), nl=False)


# --- watch -----------------------------------------------------------------------------

def event_line(event: Obj, with_namespace: bool) -> str:
    obj = event.get("object") or {}
    line = f"{event.get('type')} {ref(obj)} rv={event.get('revision')}"
    ns = (obj.get("metadata") or {}).get("namespace")
    if with_namespace and ns:
        line += f" namespace={ns}"
    return line


@main.command()
@click.argument("kind")
@click.argument("name", required=False)
@namespace_option
@all_namespaces_option
@selector_option
@click.option("--since", type=int, default=None, metavar="REV",
              help="Replay events after this revision (default: from now).")
@click.option("--timeout", type=float, default=None, metavar="SECONDS",
              help="Stop after this long (default: until Ctrl-C).")
@click.option("-o", "--output", type=click.Choice(["json"]), default=None,
              help="json: one event object per line.")
@pass_state
def watch(
    state: State,
    kind: str,
    name: str | None,
    namespace: str | None,
    all_namespaces: bool,
    selector: str | None,
    since: int | None,
    timeout: float | None,
    output: str | None,
) -> None:
    """Print each change to objects of KIND (optionally only NAME) as it happens."""
    info = kind_info(kind)
    across = all_namespaces and info.namespaced
    events = follow(
        state.client,
        info,
        state.ns(namespace),
        all_namespaces=all_namespaces,
        label_selector=selector,
        since=since,
        timeout=timeout,
        notice=lambda message: click.echo(f"# {message}", err=True),
    )
    try:
        for event in events:
            if name and ((event.get("object") or {}).get("metadata") or {}).get("name") != name:
                continue
            if output == "json":
                click.echo(json.dumps(event, separators=(",", ":"), ensure_ascii=False))
            else:
                click.echo(event_line(event, across))
    except KeyboardInterrupt:
        raise SystemExit(130) from None



main.add_command(lab_group)

if __name__ == "__main__":
    main(prog_name="berth")
