"""`berth rollout` (status, history, undo, restart, pause, resume), `scale` and `set image`:
kubectl's commands for workloads, with its messages and exit codes.

The decisions are pure in berth.cli.rollouts; here they meet the API. Every change that depends
on what was read is sent with the resourceVersion it was read at: `undo` reports a conflict as it
is (the revision it chose may no longer be the previous one), the others read again and decide
again, a few times, since the controllers rewrite a Deployment's status all through a rollout.
"""

from __future__ import annotations

from collections.abc import Callable

import click

from berth.cli.columns import selector_text
from berth.cli.commands.common import (
    BerthGroup,
    State,
    namespace_option,
    parse_duration,
    pass_state,
    report,
)
from berth.cli.commands.update import object_and_words
from berth.cli.describe_workloads import pod_template_lines
from berth.cli.output import render_table
from berth.cli.progress import Progress
from berth.cli.rollouts import (
    CHANGE_CAUSE,
    RESTARTED_AT,
    at_revision,
    history,
    image_words,
    rollout_counts,
    rollout_status,
    undo,
    with_images,
)
from berth.cli.watching import follow
from berth.client import kind_info
from berth.clock import utc_now
from berth.errors import ApiError, BerthError
from berth.kinds import Kind
from berth.objects import Obj

PINNED_ATTEMPTS = 5  # reads and decisions again after a conflict, before giving up
SCALABLE = ("Deployment", "ReplicaSet")
WITH_IMAGES = ("Deployment", "ReplicaSet", "Pod")


def _named(kind: str, name: str | None, allowed: tuple[str, ...], what: str) -> tuple[Kind, str]:
    """`deploy/web` or `deploy web`, of a kind the command works on."""
    if "/" in kind and name is None:
        kind, name = kind.split("/", 1)
    if not name:
        raise click.UsageError("give the object: KIND NAME or KIND/NAME")
    info = kind_info(kind)
    if info.kind not in allowed:
        raise BerthError(f"{what} works on {', '.join(kind_info(k).plural for k in allowed)}, "
                         f"not {info.plural}")
    return info, name


def _replicasets(state: State, deployment: Obj) -> list[Obj]:
    """The candidates for its history, by its selector; berth.cli.rollouts keeps those it controls."""
    labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels")
    ns = (deployment.get("metadata") or {}).get("namespace")
    return state.client.list("ReplicaSet", ns, label_selector=selector_text(labels) if labels else None
                             ).get("items") or []


def patch_pinned(state: State, info: Kind, name: str, namespace: str,
                 decide: Callable[[Obj], Obj | None]) -> Obj:
    """Read, let `decide` make the patch (None: nothing to change; or refuse, raising), and send it
    pinned to what was read; on a conflict read and decide again, so nobody's change in between is
    overwritten."""
    for attempt in range(PINNED_ATTEMPTS):
        current = state.client.get(info, name, namespace)
        patch = decide(current)
        if patch is None:
            return current
        patch.setdefault("metadata", {})["resourceVersion"] = current["metadata"]["resourceVersion"]
        try:
            return state.client.patch(info, name, patch, namespace)
        except ApiError as err:
            if err.status != 409 or attempt == PINNED_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


# --- scale -------------------------------------------------------------------------------------

@click.command()
@click.argument("kind")
@click.argument("names", nargs=-1)
@click.option("--replicas", type=click.IntRange(0), required=True, help="The new number of replicas.")
@click.option("--current-replicas", type=click.IntRange(0), default=None,
              help="Scale only if it has this many now (checked and written at one resourceVersion).")
@click.option("--resource-version", type=click.IntRange(0), default=None,
              help="Scale only if the object is still at this resourceVersion.")
@namespace_option
@pass_state
def scale(state: State, kind: str, names: tuple[str, ...], replicas: int, current_replicas: int | None,
          resource_version: int | None, namespace: str | None) -> None:
    """Set the replicas of deployments or replicasets: berth scale deploy/web --replicas 5

    Objects are KIND NAME... or KIND/NAME...; each is scaled on its own, and one that fails
    (reported) does not stop the others."""
    words = (kind, *names) if "/" in kind else tuple(f"{kind}/{name}" for name in names)
    if not words:
        raise click.UsageError("give the object: KIND NAME... or KIND/NAME...")
    targets = [_named(word, None, SCALABLE, "scale") for word in words]
    ns = state.ns(namespace)
    failed = False
    for info, name in targets:
        try:
            _scale_one(state, info, name, ns, replicas, current_replicas, resource_version)
        except BerthError as err:
            report(err)
            failed = True
            continue
        click.echo(f"{info.singular}/{name} scaled")
    if failed:
        raise SystemExit(1)


def _scale_one(state: State, info: Kind, name: str, ns: str, replicas: int, current: int | None,
               resource_version: int | None) -> None:
    """With --current-replicas the Scale is read, checked, and written pinned to the version read:
    a change in between (the controllers write the status all the time) is a conflict, and the
    check is made again on a fresh read, never a scale from a number nobody saw. A
    --resource-version the user gave is theirs: its conflict is the answer."""
    if current is None:
        state.client.set_scale(info, name, replicas, ns, resource_version=resource_version)
        return
    for attempt in range(PINNED_ATTEMPTS):
        read = state.client.get_scale(info, name, ns)
        now = int((read.get("spec") or {}).get("replicas") or 0)
        if now != current:
            raise BerthError(f"Expected replicas to be {current}, was {now}")
        pinned = resource_version if resource_version is not None else \
            (read.get("metadata") or {}).get("resourceVersion")
        try:
            state.client.set_scale(info, name, replicas, ns, resource_version=pinned)
            return
        except ApiError as err:
            if err.status != 409 or resource_version is not None or attempt == PINNED_ATTEMPTS - 1:
                raise


# --- rollout -----------------------------------------------------------------------------------

@click.group(cls=BerthGroup)
def rollout() -> None:
    """Follow, undo and steer the rollouts of deployments."""


def _deployment_args(func: Callable[..., None]) -> Callable[..., None]:
    func = click.argument("name", required=False)(func)
    return click.argument("kind", metavar="deployment[/NAME]")(func)


class _WatchFlag(click.Command):
    """kubectl's `-w`/`--watch` is a flag that also takes `--watch=false`: said so, it becomes
    --no-watch before click reads it (a plain value option would swallow the object after -w)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        def word(arg: str) -> str:
            flag, sep, value = arg.partition("=")
            if sep and flag in ("-w", "--watch"):
                try:
                    return "--watch" if click.BOOL.convert(value, None, ctx) else "--no-watch"
                except click.BadParameter:
                    raise click.BadParameter(f"{value!r} is not true or false",
                                             param_hint="--watch") from None
            return arg

        return super().parse_args(ctx, [word(arg) for arg in args])


@rollout.command("status", cls=_WatchFlag)
@_deployment_args
@click.option("--timeout", default="0s", help="Give up after this long (30s, 5m; 0: wait for ever).")
@click.option("-w", "--watch/--no-watch", "watch_", default=True,
              help="Follow until done (the default); --watch=false prints the status once.")
@click.option("--revision", type=click.IntRange(0), default=0, help="Check the rollout of this revision.")
@namespace_option
@pass_state
def status(state: State, kind: str, name: str | None, timeout: str, watch_: bool, revision: int,
           namespace: str | None) -> None:
    """Follow a rollout until it is done: exit 0 when it is, 1 when it exceeded its progress deadline
    or --timeout passed first."""
    info, name = _named(kind, name, ("Deployment",), "rollout status")
    seconds = parse_duration(timeout)
    ns = state.ns(namespace)
    deployment = state.client.get(info, name, ns)
    line, done = rollout_status(deployment, revision)
    with Progress() as shown:
        if done or not watch_:
            shown.say(line)
            return
        shown.status(line, *rollout_counts(deployment))
        since = int(deployment["metadata"].get("resourceVersion") or 0)
        try:
            for event in follow(state.client, info, ns, since=since, timeout=seconds or None,
                                notice=lambda message: shown.say(f"# {message}", err=True)):
                obj = event.get("object") or {}
                if (obj.get("metadata") or {}).get("name") != name:
                    continue
                if event.get("type") == "DELETED":
                    raise BerthError(f'deployment "{name}" was deleted')
                line, done = rollout_status(obj, revision)
                if done:
                    shown.say(line)
                    return
                # a plain line at each change of words: kubectl repeats it at each event
                shown.status(line, *rollout_counts(obj))
        except KeyboardInterrupt:
            raise SystemExit(130) from None
        raise BerthError(f'timed out after {timeout} waiting for deployment "{name}" rollout to finish')


@rollout.command("history")
@_deployment_args
@click.option("--revision", type=click.IntRange(1), default=None, help="Show this revision's pod template.")
@namespace_option
@pass_state
def history_(state: State, kind: str, name: str | None, revision: int | None, namespace: str | None) -> None:
    """The revisions of a deployment and their change causes (kubernetes.io/change-cause)."""
    info, name = _named(kind, name, ("Deployment",), "rollout history")
    deployment = state.client.get(info, name, state.ns(namespace))
    replicasets = _replicasets(state, deployment)
    if revision is not None:
        click.echo(revision_text(deployment, replicasets, revision), nl=False)
        return
    rows = history(deployment, replicasets)
    click.echo(f"{info.singular}/{name}")
    if not rows:
        click.echo("No rollout history found.")
        return
    click.echo(render_table(["REVISION", "CHANGE-CAUSE"], [[str(n), cause] for n, cause in rows]), nl=False)


def revision_text(deployment: Obj, replicasets: list[Obj], revision: int) -> str:
    """`deployment/web with revision #2` and that revision's pod template, its change cause among
    the template's annotations, as kubectl shows it."""
    rs = at_revision(deployment, replicasets, revision)
    template = dict((rs.get("spec") or {}).get("template") or {})
    cause = ((rs.get("metadata") or {}).get("annotations") or {}).get(CHANGE_CAUSE)
    if cause:
        meta = dict(template.get("metadata") or {})
        meta["annotations"] = {**(meta.get("annotations") or {}), CHANGE_CAUSE: cause}
        template["metadata"] = meta
    name = (deployment.get("metadata") or {}).get("name")
    return "\n".join([f"deployment/{name} with revision #{revision}", *pod_template_lines(template)]) + "\n"


@rollout.command("undo")
@_deployment_args
@click.option("--to-revision", type=click.IntRange(0), default=0,
              help="The revision to go back to (default: the one before the current).")
@namespace_option
@pass_state
def undo_(state: State, kind: str, name: str | None, to_revision: int, namespace: str | None) -> None:
    """Go back to an earlier revision's pod template; it becomes the newest revision."""
    info, name = _named(kind, name, ("Deployment",), "rollout undo")
    ns = state.ns(namespace)
    deployment = state.client.get(info, name, ns)
    plan = undo(deployment, _replicasets(state, deployment), to_revision)
    if plan.patch is None:
        click.echo(f"{info.singular}/{name} skipped rollback (current template already matches revision "
                   f"{plan.revision})")
        return
    try:
        state.client.patch(info, name, plan.patch, ns)
    except ApiError as err:
        if err.status != 409:
            raise
        raise BerthError(f'deployment "{name}" changed while it was being rolled back, and was left as it '
                         f"is: look at its history again and retry ({err.message})") from None
    click.echo(f"{info.singular}/{name} rolled back")


@rollout.command("restart")
@_deployment_args
@namespace_option
@pass_state
def restart(state: State, kind: str, name: str | None, namespace: str | None) -> None:
    """Replace every pod, by a new rollout of the same template (a restartedAt annotation on it)."""
    info, name = _named(kind, name, ("Deployment",), "rollout restart")

    def decide(current: Obj) -> Obj:
        if (current.get("spec") or {}).get("paused"):
            raise BerthError(f"can't restart paused deployment (run 'berth rollout resume "
                             f"deployment/{name}' first)")
        return {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: utc_now()}}}}}

    patch_pinned(state, info, name, state.ns(namespace), decide)
    click.echo(f"{info.singular}/{name} restarted")


def _pause_command(verb: str, paused: bool) -> click.Command:
    """`pause` and `resume`: spec.paused to `paused`; it being so already is an error, as in kubectl."""

    @rollout.command(verb, help=f"{'Stop' if paused else 'Go on with'} rolling out a deployment's "
                     f"template changes{' (scaling still happens)' if paused else ''}.")
    @_deployment_args
    @namespace_option
    @pass_state
    def command(state: State, kind: str, name: str | None, namespace: str | None) -> None:
        info, name = _named(kind, name, ("Deployment",), f"rollout {verb}")

        def decide(current: Obj) -> Obj:
            if bool((current.get("spec") or {}).get("paused")) == paused:
                raise BerthError(f'deployment "{name}" is {"already paused" if paused else "not paused"}')
            return {"spec": {"paused": paused}}

        patch_pinned(state, info, name, state.ns(namespace), decide)
        click.echo(f"{info.singular}/{name} {verb}d")

    return command


pause = _pause_command("pause", True)
resume = _pause_command("resume", False)


# --- set image ---------------------------------------------------------------------------------

@click.group("set", cls=BerthGroup)
def set_() -> None:
    """Change one part of an object, as kubectl set does."""


@set_.command("image")
@click.argument("kind")
@click.argument("words", nargs=-1, required=True, metavar="[NAME] CONTAINER=IMAGE...")
@namespace_option
@pass_state
def set_image(state: State, kind: str, words: tuple[str, ...], namespace: str | None) -> None:
    """Change containers' images: berth set image deploy/web main=nginx:1.27 (or *=IMAGE for all).

    Works on deployments and replicasets (their pod template) and pods (their containers)."""
    kind, name, pairs = object_and_words(kind, words)
    info, name = _named(kind, name, WITH_IMAGES, "set image")
    wanted = image_words(pairs)
    changed = False

    def decide(current: Obj) -> Obj | None:
        nonlocal changed
        spec = current.get("spec") or {}
        pod_spec = spec if info.kind == "Pod" else (spec.get("template") or {}).get("spec") or {}
        lists = with_images(pod_spec, wanted)
        changed = bool(lists)
        if not changed:
            return None
        return {"spec": lists} if info.kind == "Pod" else {"spec": {"template": {"spec": lists}}}

    patch_pinned(state, info, name, state.ns(namespace), decide)
    click.echo(f"{info.singular}/{name} image {'updated' if changed else 'unchanged'}")
