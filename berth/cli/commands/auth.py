"""`berth auth can-i` and `berth auth whoami`: kubectl's, asked of the masters' own authorizer."""

from __future__ import annotations

import click

from berth.cli.commands.common import BerthGroup, State, namespace_option, pass_state
from berth.cli.output import render_table


@click.group(cls=BerthGroup)
def auth() -> None:
    """Inspect authorization."""


@auth.command("can-i")
@click.argument("verb", required=False)
@click.argument("resource", required=False)
@click.argument("name", required=False)
@namespace_option
@click.option("-A", "--all-namespaces", "all_namespaces", is_flag=True,
              help="Ask about every namespace at once (a ClusterRoleBinding's grant).")
@click.option("--subresource", default=None, help="A subresource: log, exec, scale, status ...")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing: the exit status answers.")
@click.option("--list", "list_rules", is_flag=True, help="List the rules that hold in the namespace.")
@pass_state
def can_i(state: State, verb: str | None, resource: str | None, name: str | None, namespace: str | None,
          all_namespaces: bool, subresource: str | None, quiet: bool, list_rules: bool) -> None:
    """Print yes (exit 0) or no (exit 1): may this token VERB RESOURCE [NAME]?

    RESOURCE may carry its subresource, as kubectl's: `pods/log`; `'*' '*'` asks for everything.
    With --list: the rules that hold in the namespace (-A: the cluster-wide ones alone)."""
    if list_rules:
        status = state.client.rules_review("" if all_namespaces else state.ns(namespace))
        click.echo(render_rules(status.get("resourceRules") or []), nl=False)
        if status.get("evaluationError"):
            click.echo(status["evaluationError"], err=True)
        return
    if not verb or not resource:
        raise click.UsageError("VERB and RESOURCE are required (or --list)")
    resource, _, sub = resource.partition("/")
    status = state.client.access_review(verb, resource, subresource=subresource or sub or None,
                                        namespace="" if all_namespaces else state.ns(namespace), name=name)
    allowed = bool(status.get("allowed"))
    if not quiet:
        click.echo("yes" if allowed else "no")
        if not allowed and status.get("reason"):
            click.echo(status["reason"], err=True)
    click.get_current_context().exit(0 if allowed else 1)


def render_rules(rules: list[dict]) -> str:
    """kubectl's `can-i --list` table: a resource of another API group than Berth's is named with it."""
    rows = []
    for rule in rules:
        groups = [g for g in rule.get("apiGroups") or [] if g not in ("", "berth")]
        for resource in rule.get("resources") or []:
            named = ".".join([resource, *groups[:1]]) if groups else resource
            rows.append([named, f"[{' '.join(rule.get('resourceNames') or [])}]",
                         f"[{' '.join(rule.get('verbs') or [])}]"])
    return render_table(["RESOURCES", "RESOURCE NAMES", "VERBS"], rows)


@auth.command("whoami")
@pass_state
def whoami(state: State) -> None:
    """The token's user and groups, as the masters know them."""
    info = state.client.whoami()
    click.echo(render_table(["ATTRIBUTE", "VALUE"], [["Username", str(info.get("username", ""))],
                                                      ["Groups", ", ".join(info.get("groups") or [])]]),
               nl=False)
