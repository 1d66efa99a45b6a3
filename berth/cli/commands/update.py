"""`berth label`, `annotate`, `taint` and `patch`: changing parts of an object, as kubectl does.

Each reads the object, works out the change, and sends it as a patch with the object's
`resourceVersion`, so a change made meanwhile by someone else is a conflict, not lost.
"""

from __future__ import annotations

from typing import Any

import click
import yaml

from berth.cli.commands.common import State, namespace_option, pass_state
from berth.cli.output import ref, to_yaml
from berth.client import kind_info
from berth.errors import BerthError
from berth.objects import Obj

EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def key_changes(words: tuple[str, ...], what: str) -> tuple[dict[str, str], list[str]]:
    """`k=v` to set and `k-` to remove, as kubectl label and annotate take them."""
    setting, removing = {}, []
    for word in words:
        if word.endswith("-") and "=" not in word:
            removing.append(word[:-1])
        elif "=" in word and word.partition("=")[0]:
            key, _, value = word.partition("=")
            setting[key] = value
        else:
            raise click.BadParameter(f"{word!r}: use KEY=VALUE to set a {what}, KEY- to remove it")
    return setting, removing


def object_and_words(kind: str, words: tuple[str, ...]) -> tuple[str, str, tuple[str, ...]]:
    """`KIND NAME word...` or `KIND/NAME word...`: (kind, name, the words after)."""
    if "/" in kind:
        kind, name = kind.split("/", 1)
        return kind, name, words
    if not words:
        raise click.UsageError("give the object: KIND NAME or KIND/NAME")
    return kind, words[0], words[1:]


def _change_map(state: State, field: str, verb: str, kind: str, names: tuple[str, ...],
                overwrite: bool, namespace: str | None) -> None:
    kind, name, words = object_and_words(kind, names)
    setting, removing = key_changes(words, field.rstrip("s"))
    if not setting and not removing:
        raise click.UsageError("give at least one KEY=VALUE or KEY-")
    info = kind_info(kind)
    ns = state.ns(namespace)
    current = state.client.get(info, name, ns)
    held = (current.get("metadata") or {}).get(field) or {}
    for key, value in setting.items():
        if key in held and held[key] != value and not overwrite:
            raise BerthError(f"'{key}' already has a value ({held[key]}), and --overwrite is false")
    patch = {"metadata": {"resourceVersion": current["metadata"]["resourceVersion"],
                          field: {**setting, **dict.fromkeys(removing)}}}
    changed = state.client.patch(info, name, patch, ns)
    click.echo(f"{ref(changed)} {verb}")


def _map_command(name: str, field: str, verb: str, example: str) -> click.Command:
    """`berth label` and `berth annotate`: the same command over another map of metadata."""

    @click.command(name, help=f"Set (KEY=VALUE) or remove (KEY-) {field}: {example}")
    @click.argument("kind")
    @click.argument("names", nargs=-1, required=True)
    @click.option("--overwrite", is_flag=True, help=f"Let one of the {field} already set take another value.")
    @namespace_option
    @pass_state
    def command(state: State, kind: str, names: tuple[str, ...], overwrite: bool,
                namespace: str | None) -> None:
        _change_map(state, field, verb, kind, names, overwrite, namespace)

    return command


label = _map_command("label", "labels", "labeled", "berth label pod web tier=front old-")
annotate = _map_command("annotate", "annotations", "annotated", "berth annotate pod web owner=team-a")


def parse_taint(word: str) -> tuple[dict[str, str], bool]:
    """`key=value:Effect`, `key:Effect` to add; the same with `-` after, or `key-`, to remove."""
    removing = word.endswith("-")
    body = word[:-1] if removing else word
    key_value, _, effect = body.partition(":")
    key, _, value = key_value.partition("=")
    if not key or (effect and effect not in EFFECTS) or (not effect and not removing):
        raise click.BadParameter(f"{word!r}: use KEY[=VALUE]:EFFECT (EFFECT one of {', '.join(EFFECTS)}), "
                                 "with - after it to remove")
    taint = {"key": key, **({"value": value} if value else {}), **({"effect": effect} if effect else {})}
    return taint, removing


@click.command()
@click.argument("kind")
@click.argument("name")
@click.argument("taints", nargs=-1, required=True)
@click.option("--overwrite", is_flag=True, help="Let a taint with the same key and effect change its value.")
@pass_state
def taint(state: State, kind: str, name: str, taints: tuple[str, ...], overwrite: bool) -> None:
    """Add or remove taints of a node: berth taint node h1 gpu=yes:NoSchedule maint:NoExecute-"""
    if kind_info(kind).kind != "Node":
        raise click.UsageError("only nodes have taints: berth taint node NAME ...")
    node = state.client.get("Node", name)
    held: list[Obj] = list((node.get("spec") or {}).get("taints") or [])
    removed = added = False
    for word in taints:
        wanted, removing = parse_taint(word)

        def same(t: Obj, w: dict[str, str] = wanted) -> bool:
            return t.get("key") == w["key"] and ("effect" not in w or t.get("effect") == w["effect"])

        if removing:
            if not any(same(t) for t in held):
                raise BerthError(f"taint {word[:-1]!r} not found")
            held, removed = [t for t in held if not same(t)], True
            continue
        clash = next((t for t in held if same(t)), None)
        if clash is not None and clash.get("value") != wanted.get("value") and not overwrite:
            raise BerthError(f"node {name} already has a taint with key ({wanted['key']}) and effect "
                             f"({wanted['effect']}), and --overwrite is false")
        held, added = [t for t in held if not same(t)] + [wanted], True
    patch = {"metadata": {"resourceVersion": node["metadata"]["resourceVersion"]}, "spec": {"taints": held}}
    state.client.patch("Node", name, patch)
    click.echo(f"node/{name} {'tainted' if added or not removed else 'untainted'}")


@click.command()
@click.argument("kind")
@click.argument("names", nargs=-1)
@click.option("-p", "--patch", "text", required=True, help="The patch, JSON or YAML.")
@click.option("--type", "patch_type", type=click.Choice(["merge", "json"]), default="merge",
              help="merge: JSON merge patch (RFC 7386); json: JSON Patch operations (RFC 6902).")
@namespace_option
@pass_state
def patch(state: State, kind: str, names: tuple[str, ...], text: str, patch_type: str,
          namespace: str | None) -> None:
    """Change parts of an object: berth patch pod web -p '{"metadata":{"labels":{"a":"b"}}}'"""
    kind, name, rest = object_and_words(kind, names)
    if rest:
        raise click.UsageError("give one object: KIND NAME or KIND/NAME")
    try:
        body: Any = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise BerthError(f"the patch is neither JSON nor YAML: {err}") from None
    if patch_type == "json" and not isinstance(body, list):
        raise BerthError("a JSON patch is a list of operations: [{\"op\": \"replace\", ...}]")
    if patch_type == "merge" and not isinstance(body, dict):
        raise BerthError("a merge patch is an object: {\"metadata\": ...}")
    changed = state.client.patch(kind_info(kind), name, body, state.ns(namespace),
                                 json_patch=patch_type == "json")
    click.echo(f"{ref(changed)} patched")





@click.command()
@click.argument("kind")
@click.argument("names", nargs=-1)
@namespace_option
@pass_state
def edit(state: State, kind: str, names: tuple[str, ...], namespace: str | None) -> None:
    """Edit an object in $EDITOR (or $VISUAL, else vi), then save it: berth edit cm settings

    The object is saved with the resourceVersion it was read at: a change someone made
    meanwhile is a conflict, and nothing is overwritten."""
    kind, name, rest = object_and_words(kind, names)
    if rest:
        raise click.UsageError("give one object: KIND NAME or KIND/NAME")
    info = kind_info(kind)
    ns = state.ns(namespace)
    current = state.client.get(info, name, ns)
    text = to_yaml({k: v for k, v in current.items() if k != "status"})  # the status is the system's
    edited = click.edit(text, extension=".yaml", require_save=True)
    if edited is None or edited == text:
        click.echo("Edit cancelled, no changes made.")
        return
    try:
        obj = yaml.safe_load(edited)
    except yaml.YAMLError as err:
        raise BerthError(f"the edited object is not YAML: {err}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("metadata"), dict):
        raise BerthError("the edited object has no metadata")
    obj["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    changed = state.client.replace(obj, ns)
    click.echo(f"{ref(changed)} edited")
