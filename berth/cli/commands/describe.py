"""`berth describe`: one object in detail, with the events about it."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from berth.cli.commands.common import (
    State,
    fetch_named,
    namespace_option,
    no_resources,
    pass_state,
    selector_option,
    split_ref,
)
from berth.cli.describe import describe as describe_text
from berth.client import kind_info
from berth.errors import ApiError, BerthError
from berth.objects import Obj


def _events_for(state: State, obj: Obj) -> tuple[list[Obj] | None, str | None]:
    """Events are fetched per namespace and filtered here; their absence is not an error."""
    ns = (obj.get("metadata") or {}).get("namespace")
    try:
        listing = state.client.list("Event", ns, all_namespaces=ns is None)
    except BerthError as err:
        message = err.message if isinstance(err, ApiError) else str(err)
        return None, f"unable to list events: {message}"
    return listing.get("items") or [], None


@click.command()
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
        objects, failed = fetch_named(state, info, names, ns)
    else:
        objects = state.client.list(info, ns, label_selector=selector).get("items") or []
        failed = False
        if not objects:
            click.echo(no_resources(info, ns, False), err=True)
    now = datetime.now(UTC)
    texts = []
    for obj in objects:
        events, problem = _events_for(state, obj)
        texts.append(describe_text(obj, events, now, problem))
    if texts:
        click.echo("\n\n".join(t.rstrip("\n") for t in texts))
    if failed:
        raise SystemExit(1)
