"""`berth wait`: until objects meet a condition, exist, or are gone, as kubectl wait.

Each kind's objects are listed once, then followed through the watch from that list's revision
(berth.cli.watching: across master failovers), never polled; the whole wait is bounded by
`--timeout` (0: look once). The rules of `--for` and of the object words are pure in
berth.cli.waiting.
"""

from __future__ import annotations

import contextlib
import time

import click

from berth.cli.commands.common import State, namespace_option, parse_duration, pass_state, selector_option
from berth.cli.progress import Progress
from berth.cli.waiting import FOR_FORMS, WaitFor, chosen, met, parse_for, parse_targets
from berth.cli.watching import follow
from berth.client import kind_info
from berth.errors import BerthError
from berth.kinds import Kind
from berth.objects import Obj


class WaitTimedOut(BerthError):
    """Some objects did not meet the condition in time (kubectl's words, one line each)."""


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def _groups(kinds: tuple[str, ...], names: tuple[str | None, ...]) -> list[tuple[Kind, list[str | None]]]:
    """The targets by kind, in the order given: one list and one watch a kind."""
    groups: dict[str, tuple[Kind, list[str | None]]] = {}
    for kind, name in zip(kinds, names, strict=True):
        info = kind_info(kind)
        groups.setdefault(info.kind, (info, []))[1].append(name)
    return list(groups.values())


@click.command()
@click.argument("objects", nargs=-1, metavar="(KIND/NAME... | KIND NAME... | KIND -l SELECTOR | KIND --all)")
@click.option("--for", "for_", required=True, metavar="CONDITION",
              help=f"What to wait for: {FOR_FORMS} (a condition's VALUE is True unless given).")
@click.option("--timeout", default="30s", help="How long at most (30s, 2m, 1h; 0s: look once).")
@selector_option
@click.option("--all", "every", is_flag=True, help="Every object of the kind in the namespace.")
@namespace_option
@pass_state
def wait(state: State, objects: tuple[str, ...], for_: str, timeout: str, selector: str | None, every: bool,
         namespace: str | None) -> None:
    """Wait until objects meet a condition: berth wait --for=condition=Ready pod/web --timeout 60s

    Prints KIND/NAME condition met (or deleted) for each; exit 1 with kubectl's "timed out
    waiting for the condition on KINDS/NAME" when --timeout passes first."""
    try:
        wanted = parse_for(for_)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--for") from None
    try:
        targets = parse_targets(objects, selector, every)
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    seconds = parse_duration(timeout)
    groups = _groups(targets.kinds, targets.names)
    deadline = time.monotonic() + seconds
    ns = state.ns(namespace)
    try:
        with Progress() as shown:
            for info, names in groups:
                _wait_kind(state, shown, info, ns, names, selector, wanted, deadline)
    except WaitTimedOut as err:
        click.echo(str(err), err=True)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None


def _wait_kind(state: State, shown: Progress, info: Kind, ns: str, names: list[str | None],
               selector: str | None, wanted: WaitFor, deadline: float) -> None:
    """One kind's targets (names, or [None]: those the selector or --all finds now)."""
    listing = state.client.list(info, ns, label_selector=selector)
    items = [obj for obj in listing.get("items") or [] if isinstance(obj, dict)]
    current: dict[str, Obj | None] = {_name(obj): obj for obj in items}
    pending = chosen(info.plural, names, current, wanted)
    total = len(pending)

    done = "deleted" if wanted.what == "delete" else "condition met"

    def settle() -> None:
        for name in list(pending):
            if met(current.get(name), wanted):
                pending.remove(name)
                shown.say(f"{info.singular}/{name} {done}")
        shown.status(f"waiting for {wanted.words()} on {info.plural}:", total - len(pending), total,
                     plain=False)

    settle()
    if pending:
        revision = int((listing.get("metadata") or {}).get("resourceVersion") or 0)
        events = follow(state.client, info, ns, label_selector=selector, since=revision, listed=items,
                        timeout=max(0.0, deadline - time.monotonic()),
                        notice=lambda message: shown.say(f"# {message}", err=True))
        with contextlib.closing(events):  # its stream ends with the wait, not when collected
            for event in events:
                obj = event.get("object") or {}
                name = _name(obj)
                if name not in pending:
                    continue
                current[name] = None if event.get("type") == "DELETED" else obj
                settle()
                if not pending:
                    break
    if pending:
        raise WaitTimedOut("\n".join(f"error: timed out waiting for the condition on {info.plural}/{name}"
                                     for name in pending))
