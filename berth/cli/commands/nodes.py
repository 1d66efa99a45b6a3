"""`berth cordon`, `uncordon`, `drain` and `rebalance`: taking nodes out and putting pods back, as kubectl.

Cordoning sets the Node's `spec.unschedulable` (at the resourceVersion read); draining cordons,
then evicts each pod bound to the node through the eviction API, so disruption budgets hold: a pod
whose budget allows no disruption now (429) is asked again every second until the budget allows it
or `--timeout` passes; the drain ends when no pod is bound to the node. The decisions are pure in
berth.cli.drain. `rebalance` asks the masters for the rebalancer's plan, or to carry a round out.
"""

from __future__ import annotations

import time

import click

from berth.cli.commands.common import State, parse_duration, pass_state
from berth.cli.commands.rollout import patch_pinned
from berth.cli.drain import go_duration, gone, key, select_pods, unable
from berth.cli.output import render_table
from berth.cli.progress import Progress
from berth.client import kind_info
from berth.errors import ApiError, BerthError
from berth.objects import Obj

RETRY_SECONDS = 1.0  # between evictions a budget refused, and between looks at the node


class DrainFailed(BerthError):
    """This node could not be drained: kubectl's words for why."""


def _set_unschedulable(state: State, name: str, cordon: bool) -> None:
    changed = []

    def decide(node: Obj) -> Obj | None:
        if bool((node.get("spec") or {}).get("unschedulable")) == cordon:
            return None
        changed.append(True)
        return {"spec": {"unschedulable": cordon}}

    patch_pinned(state, kind_info("Node"), name, "", decide)
    verb = "cordoned" if cordon else "uncordoned"
    click.echo(f"node/{name} {verb}" if changed else f"node/{name} already {verb}")


@click.command()
@click.argument("nodes", nargs=-1, required=True)
@pass_state
def cordon(state: State, nodes: tuple[str, ...]) -> None:
    """Mark nodes unschedulable: new pods go elsewhere, those there stay (berth drain moves them)."""
    for name in nodes:
        _set_unschedulable(state, name, True)


@click.command()
@click.argument("nodes", nargs=-1, required=True)
@pass_state
def uncordon(state: State, nodes: tuple[str, ...]) -> None:
    """Mark nodes schedulable again."""
    for name in nodes:
        _set_unschedulable(state, name, False)


def _bound_to(state: State, name: str) -> list[Obj]:
    listing = state.client.list("Pod", all_namespaces=True, field_selector=f"spec.nodeName={name}")
    return list(listing.get("items") or [])


def _uid(pod: Obj) -> str:
    return str((pod.get("metadata") or {}).get("uid") or key(pod))


def _evict(state: State, pod: Obj, grace: int | None, asked: dict[str, Obj], refused: dict[str, str],
           shown: Progress) -> None:
    """Ask once; a budget's 429 is said once (and again when its words change) and asked again later."""
    meta = pod.get("metadata") or {}
    uid = _uid(pod)
    if uid not in refused:
        shown.say(f"evicting pod {key(pod)}")
    try:
        state.client.evict(str(meta.get("name")), str(meta.get("namespace")), grace_period=grace)
    except ApiError as err:
        if err.status == 404:
            asked[uid] = pod
            return
        what = f'pods/"{meta.get("name")}" -n "{meta.get("namespace")}"'
        if err.status != 429:
            raise DrainFailed(f"error when evicting {what}: {err.message}") from None
        if refused.get(uid) != err.message:
            shown.say(f"error when evicting {what} (will retry after {RETRY_SECONDS:.0f}s): {err.message}",
                      err=True)
        refused[uid] = err.message
        return
    asked[uid] = pod


def _drain_one(state: State, name: str, force: bool, grace: int | None, seconds: float) -> None:
    _set_unschedulable(state, name, True)
    deadline = time.monotonic() + seconds if seconds else None
    listed = _bound_to(state, name)
    asked: dict[str, Obj] = {}  # evicted, by uid: waited for until gone from the node
    refused: dict[str, str] = {}  # refused for now, by uid: what the budget said
    warned = False
    evicted = 0
    with Progress() as shown:
        while True:
            for pod in gone(asked, listed):
                shown.say(f"pod/{(pod.get('metadata') or {}).get('name')} evicted")
                asked.pop(_uid(pod))
                evicted += 1
            # kubectl prints no such line: only a terminal shows it
            shown.status(f"draining node/{name}: pods evicted", evicted, evicted + len(listed), plain=False)
            waiting = [p for p in listed if _uid(p) not in asked]
            selection = select_pods(waiting, force)
            if selection.error:
                raise DrainFailed(selection.error)
            if selection.warning and not warned:
                shown.say(f"Warning: {selection.warning}", err=True)
                warned = True
            for pod in selection.evict:
                _evict(state, pod, grace, asked, refused, shown)
            if not listed:
                break
            if deadline is not None and time.monotonic() >= deadline:
                raise DrainFailed(f"global timeout reached: {go_duration(seconds)}")
            time.sleep(RETRY_SECONDS)
            listed = _bound_to(state, name)
        shown.say(f"node/{name} drained")


@click.command()
@click.argument("nodes", nargs=-1, required=True)
@click.option("--force", is_flag=True, help="Also evict pods that declare no controller (nothing makes "
              "them again).")
@click.option("--grace-period", type=click.IntRange(-1, 3600), default=-1,
              help="Seconds each pod gets to stop (-1: its own terminationGracePeriodSeconds).")
@click.option("--timeout", "timeout_text", default="0s", metavar="DURATION",
              help="Give up after this long, e.g. 2m (0s, the default: wait for ever).")
@click.option("--ignore-errors", is_flag=True, help="Go on with the next node after one could not be "
              "drained.")
@pass_state
def drain(state: State, nodes: tuple[str, ...], force: bool, grace_period: int, timeout_text: str,
          ignore_errors: bool) -> None:
    """Cordon nodes and evict their pods, their disruption budgets allowing: berth drain h1 --timeout 2m

    Exits 0 once no pod is bound to the nodes; 1 when a node has pods without a controller (and
    no --force), an eviction fails for another reason than a budget, or --timeout passes."""
    seconds = parse_duration(timeout_text)
    grace = None if grace_period < 0 else grace_period
    failed = False
    for index, name in enumerate(nodes):
        try:
            _drain_one(state, name, force, grace, seconds)
        except DrainFailed as err:
            click.echo(unable(name, str(err), list(nodes[index:])), err=True)
            failed = True
            if not ignore_errors:
                break
    if failed:
        raise SystemExit(1)


@click.command()
@click.option("--dry-run", "dry_run", is_flag=True, help="Only show what would move (POD NODE REASON).")
@pass_state
def rebalance(state: State, dry_run: bool) -> None:
    """Move pods of crowded nodes to idle ones: one round of the masters' rebalancer, now.

    The plan is the masters' (the rebalancer's own, on their state): duplicates of one owner on a
    node while another node has fewer, and nodes far above the average of requests; only pods
    with a controller, within their disruption budgets, at most rebalance_max_evictions."""
    answer = state.client.rebalance_plan() if dry_run else state.client.rebalance()
    items = [i for i in answer.get("items") or [] if isinstance(i, dict)]
    if not items:
        waiting = answer.get("waiting")
        click.echo("Nothing to rebalance" + (f" now: {waiting}" if waiting else "") + ".")
        return
    if dry_run:
        rows = [[f"{i.get('namespace')}/{i.get('pod')}", str(i.get("node")), str(i.get("reason"))]
                for i in items]
        click.echo(render_table(["POD", "NODE", "REASON"], rows), nl=False)
        return
    for item in items:
        if item.get("evicted"):
            click.echo(f"pod/{item.get('pod')} evicted from {item.get('node')}: {item.get('reason')}")
        else:
            click.echo(f"pod/{item.get('pod')} not evicted: {item.get('error')}", err=True)
