"""`berth watch`: each change to objects as it happens."""

from __future__ import annotations

import json
import time

import click

from berth.cli.commands.common import (
    State,
    all_namespaces_option,
    namespace_option,
    parse_duration,
    pass_state,
    selector_option,
)
from berth.cli.output import ref
from berth.cli.watching import follow
from berth.client import kind_info
from berth.errors import ApiError, BerthError
from berth.objects import Obj


def event_line(event: Obj, with_namespace: bool) -> str:
    obj = event.get("object") or {}
    line = f"{event.get('type')} {ref(obj)} rv={event.get('revision')}"
    ns = (obj.get("metadata") or {}).get("namespace")
    if with_namespace and ns:
        line += f" namespace={ns}"
    return line


@click.command()
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


def condition_met(obj: Obj, condition: str, wanted: str) -> bool:
    for entry in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(entry, dict) and str(entry.get("type", "")).lower() == condition.lower():
            return str(entry.get("status", "")).lower() == wanted.lower()
    return False


@click.command()
@click.argument("objects", nargs=-1, required=True, metavar="KIND/NAME...")
@click.option("--for", "for_", required=True, metavar="delete|condition=NAME[=VALUE]",
              help="What to wait for: the object's deletion, or a condition (default value True).")
@click.option("--timeout", default="30s", help="How long at most (30s, 2m, 1h).")
@namespace_option
@pass_state
def wait(state: State, objects: tuple[str, ...], for_: str, timeout: str, namespace: str | None) -> None:
    """Wait until objects are deleted or meet a condition: berth wait --for=condition=Ready pod/web"""
    seconds = parse_duration(timeout)
    if for_ == "delete":
        condition = wanted = ""
    elif for_.startswith("condition="):
        condition, _, wanted = for_.removeprefix("condition=").partition("=")
        wanted = wanted or "True"
        if not condition:
            raise click.BadParameter("condition=NAME, for instance condition=Ready", param_hint="--for")
    else:
        raise click.BadParameter("use delete or condition=NAME[=VALUE]", param_hint="--for")
    targets = []
    for word in objects:
        kind, sep, name = word.partition("/")
        if not sep or not name:
            raise click.BadParameter(f"{word!r}: use KIND/NAME", param_hint="KIND/NAME")
        targets.append((kind_info(kind), name))
    deadline = time.monotonic() + seconds
    ns = state.ns(namespace)
    for info, name in targets:
        while True:  # bounded by the deadline
            try:
                obj = state.client.get(info, name, ns)
            except ApiError as err:
                if err.status != 404:
                    raise
                if not condition:
                    click.echo(f"{info.singular}/{name} deleted")
                    break
                obj = None
            if obj is not None and condition and condition_met(obj, condition, wanted):
                click.echo(f"{info.singular}/{name} condition met")
                break
            if time.monotonic() >= deadline:
                raise BerthError(f"timed out waiting for the condition on {info.plural}/{name}")
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
