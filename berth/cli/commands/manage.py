"""`berth apply`, `create` and `delete`: changing objects from manifests or by name."""

from __future__ import annotations

import sys

import click

from berth.cli import manifests
from berth.cli.commands.common import (
    DRY_SUFFIX,
    State,
    dry_run_option,
    filename_option,
    namespace_option,
    no_resources,
    pass_state,
    report,
    selector_option,
    split_ref,
)
from berth.cli.output import ref, to_json, to_yaml
from berth.client import kind_info
from berth.errors import ApiError, BerthError
from berth.kinds import Kind, lookup_kind
from berth.objects import Obj


def _same_namespace(objects: list[Obj], typed: str | None) -> None:
    """kubectl's rule: a namespace typed on the command line must agree with the manifest's."""
    for obj in objects:
        written = (obj.get("metadata") or {}).get("namespace") if isinstance(obj, dict) else None
        if typed and written and written != typed:
            raise BerthError(f'the namespace from the provided object "{written}" does not match the '
                             f'namespace "{typed}". You must pass \'--namespace={written}\' to perform '
                             "this operation.")


def _client_side_apply(state: State, objects: list[Obj], namespace: str) -> Obj:
    """--dry-run=client: the objects as sent, and whether each exists (a read, nothing written)."""
    actions = []
    for obj in objects:
        info = kind_info(str(obj.get("kind")))
        meta = obj.get("metadata") or {}
        try:
            state.client.get(info, str(meta.get("name")), meta.get("namespace") or namespace)
            actions.append("configured")
        except ApiError as err:
            if err.status != 404:
                raise
            actions.append("created")
    return {"apiVersion": "berth/v1", "kind": "List", "items": objects, "actions": actions}


@click.command()
@filename_option(required=True)
@namespace_option
@click.option("-o", "--output", type=click.Choice(["json", "yaml", "name"]), default=None)
@dry_run_option
@pass_state
def apply(state: State, filenames: tuple[str, ...], namespace: str | None, output: str | None,
          dry_run: str) -> None:
    """Create or update the objects of the manifests, all in one atomic request."""
    objects = manifests.load(filenames, sys.stdin)
    _same_namespace(objects, state.explicit_ns(namespace))
    if dry_run == "client":
        result = _client_side_apply(state, objects, state.ns(namespace))
    else:
        result = state.client.apply(objects, namespace=state.ns(namespace), dry_run=dry_run == "server")
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
            click.echo(f"{ref(obj)} {action}{DRY_SUFFIX[dry_run]}")


class _KindCommands(click.Group):
    """`create ns NAME`, `create namespaces NAME`: a kind by any name kubectl users type."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        info = lookup_kind(cmd_name)
        return super().get_command(ctx, info.singular if info is not None else cmd_name)


@click.group(cls=_KindCommands, invoke_without_command=True, subcommand_metavar="[namespace NAME]")
@filename_option(required=False)
@namespace_option
@dry_run_option
@pass_state
def create(state: State, filenames: tuple[str, ...], namespace: str | None, dry_run: str) -> None:
    """Create the objects of the manifests (-f), or one named object (`create namespace NAME`);
    an object that exists already is an error."""
    if click.get_current_context().invoked_subcommand is not None:
        if filenames:
            raise click.UsageError("give either -f FILE or a kind to create, not both")
        return
    if not filenames:
        raise click.UsageError("give -f FILE, or what to create: namespace NAME")
    objects = manifests.load(filenames, sys.stdin)
    _same_namespace(objects, state.explicit_ns(namespace))
    failed = False
    for obj in objects:
        try:
            created = obj if dry_run == "client" else state.client.create(
                obj, namespace=state.explicit_ns(namespace), dry_run=dry_run == "server")
        except ApiError as err:
            report(err)
            failed = True
            continue
        click.echo(f"{ref(created)} created{DRY_SUFFIX[dry_run]}")
    if failed:
        raise SystemExit(1)


@create.command("namespace")
@click.argument("name")
@click.option("-o", "--output", type=click.Choice(["json", "yaml", "name"]), default=None)
@dry_run_option
@pass_state
def create_namespace(state: State, name: str, output: str | None, dry_run: str) -> None:
    """Create a namespace (also `create ns NAME`)."""
    obj: Obj = {"apiVersion": "berth/v1", "kind": "Namespace", "metadata": {"name": name}}
    created = obj if dry_run == "client" else state.client.create(obj, dry_run=dry_run == "server")
    if output == "json":
        click.echo(to_json(created), nl=False)
    elif output == "yaml":
        click.echo(to_yaml(created), nl=False)
    elif output == "name":
        click.echo(ref(created))
    else:
        click.echo(f"{ref(created)} created{DRY_SUFFIX[dry_run]}")



# kubectl's --cascade words (true and false are its older ones) as the API's propagationPolicy
CASCADE = {"background": "Background", "true": "Background", "orphan": "Orphan", "false": "Orphan",
           "foreground": "Foreground"}


def _delete_one(
    state: State, info: Kind, name: str, namespace: str | None, ignore_not_found: bool,
    grace_period: int | None = None, dry_run: str = "none", propagation: str | None = None,
) -> bool:
    try:
        if dry_run == "client":
            state.client.get(info, name, namespace)  # only whether it is there
        else:
            state.client.delete(info, name, namespace, grace_period=grace_period, dry_run=dry_run == "server",
                                propagation_policy=propagation)
    except ApiError as err:
        if err.status == 404 and ignore_not_found:
            return True
        report(err)
        return False
    click.echo(f'{info.singular} "{name}" deleted{DRY_SUFFIX[dry_run]}')
    return True


@click.command()
@click.argument("kind", required=False)
@click.argument("names", nargs=-1)
@filename_option(required=False)
@selector_option
@click.option("--all", "delete_all", is_flag=True, help="Delete every object of KIND in the namespace.")
@click.option("--ignore-not-found", is_flag=True, help="Treat a missing object as deleted.")
@click.option("--grace-period", type=click.IntRange(0, 3600), default=None,
              help="Seconds a running pod gets to stop (default: its terminationGracePeriodSeconds).")
@click.option("--now", "now_", is_flag=True, help="Same as --grace-period 0.")
@click.option("--cascade", type=click.Choice(sorted(CASCADE), case_sensitive=False), default=None,
              help="background (default): the dependents (a deployment's replicasets, their pods) "
                   "are deleted after it; orphan: they stay; foreground is not supported yet.")
@namespace_option
@dry_run_option
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
    cascade: str | None,
    namespace: str | None,
    dry_run: str,
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
                click.echo(no_resources(info, ns, False), err=True)
        else:
            raise click.UsageError("give NAME..., -l SELECTOR or --all")
    ok = True
    propagation = CASCADE[cascade.lower()] if cascade else None  # the server's refusals pass through
    for info, name, ns in targets:
        ok = _delete_one(state, info, name, ns, ignore_not_found, 0 if now_ else grace_period, dry_run,
                         propagation) and ok
    if not ok:
        raise SystemExit(1)
