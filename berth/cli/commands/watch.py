"""`berth watch`: each change to objects as it happens (`berth wait` is in wait.py)."""

from __future__ import annotations

import json

import click

from berth.cli.commands.common import (
    State,
    all_namespaces_option,
    namespace_option,
    pass_state,
    selector_option,
)
from berth.cli.output import ref
from berth.cli.watching import follow
from berth.client import kind_info
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
