"""Reading `-f` arguments: files, directories and stdin, YAML or JSON, into object dicts.

Parsing happens here rather than on the server so that a syntax error names the
file it is in, and so `delete -f` and `create -f` know each object's kind and name.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml

from berth.errors import BerthError
from berth.objects import Obj

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


class ManifestError(BerthError):
    pass


@dataclass(frozen=True)
class Source:
    name: str
    text: str


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as err:
        raise ManifestError(f"cannot read {path}: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise ManifestError(f"{path} is not UTF-8 text") from None


def read_sources(paths: Sequence[str], stdin: IO[str] | None = None) -> list[Source]:
    """`-` is stdin; a directory contributes its manifests in name order (not recursively)."""
    sources: list[Source] = []
    for raw in paths:
        if raw == "-":
            sources.append(Source("<stdin>", (stdin or sys.stdin).read()))
            continue
        path = Path(raw).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.iterdir()
                           if p.is_file() and p.suffix.lower() in MANIFEST_SUFFIXES)
            if not found:
                raise ManifestError(f"no *.yaml, *.yml or *.json files in directory {path}")
            sources.extend(Source(str(p), _read(p)) for p in found)
        elif path.exists():
            sources.append(Source(str(path), _read(path)))
        else:
            raise ManifestError(f'the path "{raw}" does not exist')
    return sources


def _expand(doc: Any, where: str) -> list[Obj]:
    """`kind: List` (and kubectl's `*List`) holds objects in items; a JSON array does too."""
    if doc is None:
        return []
    if isinstance(doc, list):
        return [obj for item in doc for obj in _expand(item, where)]
    if not isinstance(doc, dict):
        raise ManifestError(f"{where}: a document must be a mapping, not {type(doc).__name__}")
    kind = doc.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(doc.get("items"), list):
        return [obj for item in doc["items"] for obj in _expand(item, where)]
    if not isinstance(kind, str) or not kind:
        raise ManifestError(f"{where}: a document has no kind")
    return [doc]


def parse(source: Source) -> list[Obj]:
    is_json = source.name.lower().endswith(".json") or source.text.lstrip().startswith(("{", "["))
    try:
        if is_json:
            try:
                docs: list[Any] = [json.loads(source.text)]
            except ValueError:
                docs = list(yaml.safe_load_all(source.text))  # YAML flow style also starts with {
        else:
            docs = list(yaml.safe_load_all(source.text))
    except yaml.YAMLError as err:
        raise ManifestError(f"{source.name}: not valid YAML: {err}") from None
    return [obj for doc in docs for obj in _expand(doc, source.name)]


def load(paths: Sequence[str], stdin: IO[str] | None = None) -> list[Obj]:
    if not paths:
        raise ManifestError("must give at least one -f FILE (or - for stdin)")
    objects = [obj for source in read_sources(paths, stdin) for obj in parse(source)]
    if not objects:
        raise ManifestError("no objects found in " + ", ".join(paths))
    return objects
