"""`berth wait`'s decisions, pure: what `--for` asks, which objects, and whether one meets it.

kubectl's semantics: `--for=delete`, `--for=create`, `--for=condition=NAME[=VALUE]` (VALUE True
by default; names and values compared without regard to case, as kubectl's EqualFold does; a
condition that says which generation it observed counts only once it observed the object's
latest), `--for=jsonpath={PATH}[=VALUE]` (without VALUE: the path reaches a non-empty value).
berth/cli/commands/wait.py reads and watches; the rules live here so tests check them on plain
objects. Errors of the user's words are ValueErrors, which the command reports as bad usage.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from berth.cli.jsonpath import steps, text, values
from berth.errors import BerthError
from berth.objects import Obj

What = Literal["delete", "create", "condition", "jsonpath"]
FOR_FORMS = "delete, create, condition=NAME[=VALUE] or jsonpath={PATH}[=VALUE]"


@dataclass(frozen=True)
class WaitFor:
    what: What
    name: str = ""  # the condition's type, or the JSONPath
    value: str | None = None  # wanted: a condition's status (True by default); a path's text (None: any)

    def words(self) -> str:
        """As the user would write it, for the live line."""
        if self.what in ("delete", "create"):
            return self.what
        if self.what == "condition":
            return f"condition={self.name}" + ("" if self.value == "True" else f"={self.value}")
        return f"jsonpath={self.name}" + ("" if self.value is None else f"={self.value}")


def parse_for(word: str) -> WaitFor:
    """`--for`'s value, or a ValueError saying what it may be."""
    kind, sep, rest = word.partition("=")
    kind = kind.lower()
    if kind in ("delete", "create") and not sep:
        return WaitFor(kind)  # type: ignore[arg-type]  # one of the two, just checked
    if kind == "condition" and sep:
        name, has_value, value = rest.partition("=")
        if not name or (has_value and not value):
            raise ValueError(f"{word!r}: use condition=NAME or condition=NAME=VALUE, e.g. condition=Ready")
        return WaitFor("condition", name, value if has_value else "True")
    if kind == "jsonpath" and sep:
        return _jsonpath(word, rest)
    raise ValueError(f"{word!r}: use {FOR_FORMS}")


def _jsonpath(word: str, rest: str) -> WaitFor:
    """`{.status.phase}=Running` (the braces keep the path apart from the value) or `.status.phase`."""
    if rest.startswith("{"):
        close = rest.find("}")
        path, after = (rest[:close + 1], rest[close + 1:]) if close > 0 else (rest, "")
        if close < 0 or (after and not after.startswith("=")):
            raise ValueError(f"{word!r}: use jsonpath={{PATH}} or jsonpath={{PATH}}=VALUE")
        value: str | None = after[1:] if after else None
    else:
        path, sep, tail = rest.partition("=")
        value = tail if sep else None
    if path.strip("{}").strip() == "" or value == "":
        raise ValueError(f"{word!r}: use jsonpath={{PATH}} or jsonpath={{PATH}}=VALUE")
    try:
        steps(path)
    except BerthError as err:
        raise ValueError(str(err)) from None
    return WaitFor("jsonpath", path, value)


@dataclass(frozen=True)
class Targets:
    """What to wait on: KIND/NAME words (`kinds` and `names` side by side), or one KIND with
    `-l`/`--all` (names found when the wait starts)."""

    kinds: tuple[str, ...]
    names: tuple[str | None, ...]


def parse_targets(words: tuple[str, ...] | list[str], selector: str | None, every: bool) -> Targets:
    """`pod/a deploy/b`, `pod a b`, or `pods -l app=web` / `pods --all`, as kubectl takes them."""
    if not words:
        raise ValueError("give the objects: KIND/NAME..., KIND NAME..., or KIND with -l or --all")
    chosen_by = "-l" if selector else "--all" if every else None
    if "/" in words[0]:
        pairs = [word.partition("/") for word in words]
        for word, (kind, sep, name) in zip(words, pairs, strict=True):
            if not sep or not kind or not name or "/" in name:
                raise ValueError(f"{word!r}: use KIND/NAME (all of them), or KIND NAME...")
        if chosen_by:
            raise ValueError(f"name cannot be provided when {chosen_by} is given")
        return Targets(tuple(kind for kind, _, _ in pairs), tuple(name for _, _, name in pairs))
    kind, names = words[0], tuple(words[1:])
    if any("/" in name for name in names):
        raise ValueError("there is no need to specify a resource type as a separate argument when passing "
                         "arguments in resource/name form")
    if names and chosen_by:
        raise ValueError(f"name cannot be provided when {chosen_by} is given")
    if not names and not chosen_by:
        raise ValueError(f"resource(s) were provided, but no name was specified: give names, -l or --all "
                         f"({kind})")
    if names:
        return Targets((kind,) * len(names), names)
    return Targets((kind,), (None,))


def chosen(plural: str, names: list[str | None], present: Iterable[str], wanted: WaitFor) -> list[str]:
    """The names waited on, each once, in order: those given, or for `[None]` (`-l`, `--all`) every
    one `present` now. As kubectl, none found is an error, and so is a given name absent when a
    condition or a path is wanted (only delete and create wait for what is not there)."""
    here = set(present)
    if names == [None]:
        found = sorted(here)
        if not found:
            raise BerthError("no matching resources found")
        return found
    given = [name for name in names if name is not None]
    if wanted.what in ("condition", "jsonpath"):
        missing = [name for name in given if name not in here]
        if missing:
            raise BerthError(f'{plural} "{missing[0]}" not found')
    return list(dict.fromkeys(given))


def _condition(obj: Obj, name: str) -> Obj | None:
    for entry in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(entry, dict) and str(entry.get("type", "")).casefold() == name.casefold():
            return entry
    return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def met(obj: Obj | None, wanted: WaitFor) -> bool:
    """Whether `obj` (None: it does not exist) is as `wanted` asks."""
    if wanted.what == "delete":
        return obj is None
    if obj is None:
        return False
    if wanted.what == "create":
        return True
    if wanted.what == "condition":
        entry = _condition(obj, wanted.name)
        if entry is None:
            return False
        observed, generation = _int(entry.get("observedGeneration")), _int((obj.get("metadata") or {})
                                                                             .get("generation"))
        if observed is not None and generation is not None and observed < generation:
            return False  # said of an older spec
        return str(entry.get("status", "")).casefold() == str(wanted.value).casefold()
    found = values(obj, wanted.name)
    if len(found) > 1:
        raise BerthError(f"the JSONPath {wanted.name} reaches more than one value")
    if not found or found[0] is None:
        return False
    if wanted.value is None:
        return found[0] not in ("", [], {})
    return text(found[0]) == wanted.value
