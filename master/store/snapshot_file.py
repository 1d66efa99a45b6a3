"""The snapshot file (`berth-master snapshot save/restore/status`): every stored object at one revision.

Its format, version 1, is two parts:

- a header: one line of JSON, `{"format": "berth-snapshot", "version": 1, "revision": R, "count": N,
  "sha256": HEX, "size": BYTES, ...}` (and who took it, when, and the key ids the master sealed with),
  then a newline;
- the body: canonical JSON (sorted keys, no spaces) of `{"revision": R, "objects": [...]}`, the
  objects exactly as stored (a Secret's values sealed when the masters have an `encryption_key_file`:
  a restore needs the same keys), sorted by kind, namespace and name.

`sha256` and `size` are the body's; the body repeats the revision so that the header, which the
checksum does not cover, cannot disagree with it unnoticed. Reading refuses any mismatch, an
unknown format or version: a file is used whole or not at all. Pure: bytes in, bytes out.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

FORMAT = "berth-snapshot"
VERSION = 1
_MAX_HEADER = 64 << 10


class SnapshotError(ValueError):
    """The file is not a snapshot this master reads: the message says why."""


@dataclass(frozen=True)
class Snapshot:
    revision: int
    objects: list[dict[str, Any]]
    sha256: str = ""
    size: int = 0
    meta: dict[str, Any] = field(default_factory=dict)  # who took it, when, key ids: informative


def _sort_key(obj: dict[str, Any]) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return obj["kind"], meta.get("namespace", ""), meta["name"]


def encode(revision: int, objects: list[dict[str, Any]], meta: dict[str, Any] | None = None) -> bytes:
    """The file's bytes for `objects` (as stored) at `revision`."""
    body = json.dumps({"revision": revision, "objects": sorted(objects, key=_sort_key)},
                      sort_keys=True, separators=(",", ":")).encode()
    header = {**(meta or {}), "format": FORMAT, "version": VERSION, "revision": revision,
              "count": len(objects), "sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}
    return json.dumps(header, sort_keys=True).encode() + b"\n" + body


def read_header(data: bytes) -> dict[str, Any]:
    """The header, checked for format and version; the body is not read (see `decode`)."""
    line, newline, _ = data[:_MAX_HEADER].partition(b"\n")
    if not newline:
        raise SnapshotError("not a Berth snapshot: no header line")
    try:
        header = json.loads(line)
    except ValueError as err:
        raise SnapshotError(f"not a Berth snapshot: its header is not JSON ({err})") from err
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise SnapshotError(f"not a Berth snapshot: its header names no format {FORMAT!r}")
    if header.get("version") != VERSION:
        raise SnapshotError(f"snapshot format version {header.get('version')!r} is not one this master "
                            f"reads ({VERSION})")
    for key in ("revision", "count", "size"):
        if not isinstance(header.get(key), int) or isinstance(header.get(key), bool) or header[key] < 0:
            raise SnapshotError(f"the snapshot's header has no valid {key}")
    if not isinstance(header.get("sha256"), str):
        raise SnapshotError("the snapshot's header has no sha256")
    return header


def decode(data: bytes) -> Snapshot:
    """The snapshot in `data`, verified whole: SnapshotError if anything disagrees."""
    header = read_header(data)
    body = data[data.index(b"\n") + 1:]
    if len(body) != header["size"]:
        raise SnapshotError(f"the snapshot is truncated or padded: its body has {len(body)} bytes, its "
                            f"header says {header['size']}")
    digest = hashlib.sha256(body).hexdigest()
    if digest != header["sha256"]:
        raise SnapshotError(f"the snapshot's checksum does not match: sha256 {digest}, its header says "
                            f"{header['sha256']}; the file is corrupt")
    try:
        content = json.loads(body)
    except ValueError as err:  # a checksum over bytes that were never a snapshot's body
        raise SnapshotError(f"the snapshot's body is not JSON ({err})") from err
    if not isinstance(content, dict):
        raise SnapshotError("the snapshot's body is not an object {revision, objects}")
    objects = content.get("objects")
    if content.get("revision") != header["revision"] or not isinstance(objects, list) \
            or len(objects) != header["count"]:
        raise SnapshotError("the snapshot's header disagrees with its body (revision or count)")
    for obj in objects:
        if not (isinstance(obj, dict) and isinstance(obj.get("kind"), str)
                and isinstance(obj.get("metadata"), dict) and isinstance(obj["metadata"].get("name"), str)):
            raise SnapshotError("the snapshot holds an entry that is not an object with a kind and a name")
    meta = {k: v for k, v in header.items() if k not in ("format", "version", "revision", "count", "sha256",
                                                         "size")}
    return Snapshot(header["revision"], objects, header["sha256"], len(body), meta)
