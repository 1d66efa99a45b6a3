"""`berth version` and `berth cluster`: the client, and the masters as one answers."""

from __future__ import annotations

import time
from typing import Any

import click

from berth.cli.commands.common import BerthGroup, State, client_version, pass_state
from berth.cli.output import render_table, to_json, to_yaml
from berth.errors import ApiError
from berth.objects import Obj


@click.command()
def version() -> None:
    """Print the client version."""
    click.echo(f"Client Version: {client_version()}")


def _role(member: Obj, status: Obj) -> str:
    if member.get("leader"):
        return "leader"
    if member.get("self") and status.get("state") not in (None, "leader"):
        return str(status["state"])
    if not member.get("reachable"):
        return "unknown"  # the answering master cannot reach it: not known to follow
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


@click.group(cls=BerthGroup, invoke_without_command=True)
@click.pass_context
def cluster(ctx: click.Context) -> None:
    """Inspect the masters, add or remove one (without a subcommand: `cluster status`)."""
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


_HANDOVER_SECONDS = 15.0  # removing the leader: it hands over, then the new leader removes it


@cluster.command("add-master")
@click.argument("address")
@click.option("--api-url", required=True, help="The new master's API, https://HOST:PORT.")
@pass_state
def add_master(state: State, address: str, api_url: str) -> None:
    """Add a running master (its `peers` the current members) to Raft, once the change is committed.

    One change at a time; refused when the masters reachable now would not be a majority of the
    new membership."""
    answer = state.client.add_master(address, api_url)
    click.echo(f"master {address} added ({len(answer.get('members') or [])} members)")


@cluster.command("remove-master")
@click.argument("address")
@pass_state
def remove_master(state: State, address: str) -> None:
    """Remove a master from Raft (a dead one, or one to retire: stop it afterwards).

    Refused when the members left that are reachable would not be a majority; the leader itself is
    removed after it hands leadership over."""
    deadline = time.monotonic() + _HANDOVER_SECONDS
    while True:
        try:
            answer = state.client.remove_master(address)
            break
        except ApiError as err:
            if err.status != 503 or err.reason != "Unavailable" or time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    click.echo(f"master {address} removed ({len(answer.get('members') or [])} members)")
