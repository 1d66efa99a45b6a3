"""`berth auth can-i` and `berth auth whoami`: kubectl's, asked of the masters' own authorizer."""

from __future__ import annotations

import click

from berth.cli.commands.common import BerthGroup, State, namespace_option, pass_state
from berth.cli.output import render_table


@click.group(cls=BerthGroup)
def auth() -> None:
    """Inspect authorization."""


@auth.command("can-i")
@click.argument("verb")
@click.argument("resource")
@click.argument("name", required=False)
@namespace_option
@click.option("-A", "--all-namespaces", "all_namespaces", is_flag=True,
              help="Ask about every namespace at once (a ClusterRoleBinding's grant).")
@click.option("--subresource", default=None, help="A subresource: log, exec, scale, status ...")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing: the exit status answers.")
@pass_state
def can_i(state: State, verb: str, resource: str, name: str | None, namespace: str | None,
          all_namespaces: bool, subresource: str | None, quiet: bool) -> None:
    """Print yes (exit 0) or no (exit 1): may this token VERB RESOURCE [NAME]?

    RESOURCE may carry its subresource, as kubectl's: `pods/log`."""
    resource, _, sub = resource.partition("/")
    status = state.client.access_review(verb, resource, subresource=subresource or sub or None,
                                        namespace="" if all_namespaces else state.ns(namespace), name=name)
    allowed = bool(status.get("allowed"))
    if not quiet:
        click.echo("yes" if allowed else "no")
        if not allowed and status.get("reason"):
            click.echo(status["reason"], err=True)
    click.get_current_context().exit(0 if allowed else 1)


@auth.command("whoami")
@pass_state
def whoami(state: State) -> None:
    """The token's user and groups, as the masters know them."""
    info = state.client.whoami()
    click.echo(render_table(["ATTRIBUTE", "VALUE"], [["Username", str(info.get("username", ""))],
                                                      ["Groups", ", ".join(info.get("groups") or [])]]),
               nl=False)
