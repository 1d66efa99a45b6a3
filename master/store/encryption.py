"""Secrets at rest: a Secret's `data` values sealed with AES-256-GCM before they enter Raft.

Why at the store's edge: the command a master proposes already carries ciphertext, so the
journal, the snapshots, every master's state and its watch window hold nothing else; readers
that show values (the API to admins, the runtime's env and volume files) open them as they
read. The state machine never sees a key, so a master whose keys do not fit a stored value
still applies every entry: only the reads of that value fail, each naming the key id.

A sealed value is one string, `berth:enc:aesgcm:v1:<key id>:<base64 of nonce + ciphertext>`,
in place of the base64 value it hides (the keys of `data` stay readable: every role may list
them, auth.redact). The plaintext is the value's decoded bytes, so a sealed value costs the
value plus 28 bytes of nonce and tag, base64ed. The nonce is random (96 bits) per sealing; the
associated data binds the ciphertext to its Secret's namespace, name and key, so a value moved
to another Secret or key does not open. An unchanged value keeps its stored ciphertext
(`seal_object`), so a Secret applied or replaced again unchanged is still `unchanged`.

The key file holds one base64 32-byte key a line (`#` comments and blank lines ignored). The
first key seals; every key opens, so a new key goes first, masters restart, every Secret is
sealed again (`rotation.py`) and the old key can then go. A key's id is derived from it
(`key_id`), never the key itself, and is what errors and logs name.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from master.errors import ApiError
from master.store.commands import Batch, Command, Create, Obj, Put, Replace

PREFIX = "berth:enc:aesgcm:v1:"
PLAIN = "plain"  # what `values_by_key` counts values stored in clear under
KEY_BYTES = 32
NONCE_BYTES = 12
_ID_CONTEXT = b"berth secrets at rest: key id\x00"
KEY_HINT = "one base64 32-byte key a line, e.g. from `head -c 32 /dev/urandom | base64`"
Stored = Callable[[str, str, str], Obj | None]  # (kind, namespace, name) -> the object as stored


class SealError(ApiError):
    """A stored value this master cannot open: a 500 naming the Secret, its key and the key id,
    never a crash (the state machine never opens anything)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(500, "InternalError", message, field)


def key_id(key: bytes) -> str:
    """Names a key in sealed values, errors and logs: a hash of it, which tells nothing of it."""
    return hashlib.sha256(_ID_CONTEXT + key).hexdigest()[:16]


@dataclass(frozen=True)
class Keyring:
    """The keys of `encryption_key_file`, in order: the first seals, every one opens."""

    keys: tuple[bytes, ...] = field(repr=False)  # never in a log
    ids: tuple[str, ...] = field(init=False)
    _ciphers: dict[str, AESGCM] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError(f"no key: give {KEY_HINT}")
        if any(len(key) != KEY_BYTES for key in self.keys):
            raise ValueError(f"a key is not {KEY_BYTES} bytes: give {KEY_HINT}")
        ids = tuple(key_id(key) for key in self.keys)
        if len(set(ids)) != len(ids):
            raise ValueError("a key is given twice")
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "_ciphers", {i: AESGCM(k) for i, k in zip(ids, self.keys, strict=True)})

    @property
    def primary_id(self) -> str:
        return self.ids[0]

    def seal(self, plaintext: bytes, place: Place) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self.primary_id].encrypt(nonce, plaintext, place.aad)
        return f"{PREFIX}{self.primary_id}:{base64.b64encode(nonce + sealed).decode()}"

    def cipher(self, kid: str) -> AESGCM | None:
        return self._ciphers.get(kid)


def parse_keys(text: str, source: str) -> Keyring:
    """The key file's text; errors name the file and line, never a key."""
    keys = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            key = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != KEY_BYTES:
            raise ValueError(f"{source} line {number}: not a base64 {KEY_BYTES}-byte key ({KEY_HINT})")
        keys.append(key)
    try:
        return Keyring(tuple(keys))
    except ValueError as err:
        raise ValueError(f"{source}: {err}") from None


def load_keyring(path: str) -> Keyring:
    return parse_keys(Path(path).read_text(), path)


# --- one value -------------------------------------------------------------------------

def is_sealed(value: object) -> bool:
    """No base64 value (all the API stores) starts so: ':' is not in base64's alphabet."""
    return isinstance(value, str) and value.startswith(PREFIX)


def sealed_key_id(value: str) -> str:
    return value[len(PREFIX):].partition(":")[0]


@dataclass(frozen=True)
class Place:
    """Where a value lives: bound into its ciphertext (associated data), named in errors."""

    namespace: str
    name: str
    key: str

    @classmethod
    def of(cls, obj: Obj, key: str) -> Place:
        meta = obj.get("metadata") or {}
        return cls(str(meta.get("namespace") or ""), str(meta.get("name") or ""), key)

    @property
    def aad(self) -> bytes:
        return f"Secret\0{self.namespace}\0{self.name}\0{self.key}".encode()

    def __str__(self) -> str:
        return f"secret {self.namespace}/{self.name} key {self.key!r}"


def open_value(keyring: Keyring | None, value: str, place: Place) -> bytes:
    """The bytes a sealed value hides; SealError says why they cannot be had."""
    field_path = f"data.{place.key}"
    kid, _, body = value[len(PREFIX):].partition(":")
    if keyring is None:
        raise SealError(f"{place} is sealed with key id {kid}, and this master has no encryption_key_file",
                        field_path)
    cipher = keyring.cipher(kid)
    if cipher is None:
        raise SealError(f"{place} is sealed with key id {kid}, which this master's encryption_key_file "
                        f"does not hold (it holds {', '.join(keyring.ids)}); put that key back, and "
                        "remove a key only after POST /api/v1/secrets/rotate", field_path)
    try:
        raw = base64.b64decode(body, validate=True)
        return cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], place.aad)
    except (binascii.Error, ValueError, InvalidTag):
        raise SealError(f"{place} does not open with key id {kid}: the stored value was altered, or "
                        "moved from another secret or key", field_path) from None


def _plain_bytes(value: str, place: Place) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(422, "Invalid", f"{place}: a Secret's data values are base64",
                       f"data.{place.key}") from None


def _kept(stored: object, plaintext: bytes, keyring: Keyring, place: Place) -> str | None:
    """The stored ciphertext, when it already hides this value under the key that seals now."""
    if not isinstance(stored, str) or not is_sealed(stored) or sealed_key_id(stored) != keyring.primary_id:
        return None
    try:
        return stored if open_value(keyring, stored, place) == plaintext else None
    except SealError:
        return None


# --- objects and commands ----------------------------------------------------------------

def seal_object(obj: Obj, keyring: Keyring | None, stored: Obj | None) -> Obj:
    """`obj` with its data sealed (a Secret; anything else as it is). A value already sealed
    (a controller writing back what it read as stored) stays; one `stored` already hides under
    the first key keeps that ciphertext. Without a keyring, values stay in clear."""
    data = obj.get("data")
    if keyring is None or obj.get("kind") != "Secret" or not isinstance(data, dict) or not data:
        return obj
    before = (stored or {}).get("data") or {}
    sealed = {}
    for key, value in data.items():
        if not isinstance(value, str) or is_sealed(value):
            sealed[key] = value
            continue
        place = Place.of(obj, key)
        plaintext = _plain_bytes(value, place)
        sealed[key] = _kept(before.get(key), plaintext, keyring, place) or keyring.seal(plaintext, place)
    return {**obj, "data": sealed}


def open_object(obj: Obj, keyring: Keyring | None, *, hide_unreadable: bool = False) -> Obj:
    """`obj` as the API shows it to an admin: a Secret's values base64 again. A value that does
    not open raises SealError, or with `hide_unreadable` reads as null (as a viewer sees it)."""
    data = obj.get("data") if obj.get("kind") == "Secret" else None
    if not isinstance(data, dict) or not any(is_sealed(v) for v in data.values()):
        return obj
    opened: dict[str, str | None] = {}
    for key, value in data.items():
        if not is_sealed(value):
            opened[key] = value
            continue
        try:
            opened[key] = base64.b64encode(open_value(keyring, value, Place.of(obj, key))).decode()
        except SealError:
            if not hide_unreadable:
                raise
            opened[key] = None
    return {**obj, "data": opened}


def seal_command(command: Command, keyring: Keyring | None, stored: Stored) -> Command:
    """The command as it goes to Raft: every Secret it writes sealed (`stored`: the object as
    this master has it, whose ciphertext an unchanged value keeps)."""
    if keyring is None:
        return command
    if isinstance(command, Batch):
        return Batch(tuple(seal_command(op, keyring, stored) for op in command.ops))  # type: ignore[misc]
    if isinstance(command, Create | Put | Replace) and command.obj.get("kind") == "Secret":
        meta = command.obj.get("metadata") or {}
        current = stored("Secret", meta.get("namespace") or "", meta.get("name") or "")
        return dataclasses.replace(command, obj=seal_object(command.obj, keyring, current))
    return command


def keeps_ciphertext(command: Command) -> bool:
    """Whether sealing `command` may keep a stored ciphertext (an update of a Secret with values
    in clear): then the stored copy it is compared with must be current, or a master that lags
    seals anew what did not change, and an unchanged apply reads `configured`."""
    if isinstance(command, Batch):
        return any(keeps_ciphertext(op) for op in command.ops)
    return (isinstance(command, Put | Replace) and command.obj.get("kind") == "Secret"
            and any(not is_sealed(v) for v in (command.obj.get("data") or {}).values()))


# --- rotation's arithmetic ---------------------------------------------------------------

def value_key_ids(obj: Obj) -> list[str]:
    """The key id of each of a Secret's values, PLAIN for one in clear."""
    data = obj.get("data") if obj.get("kind") == "Secret" else None
    if not isinstance(data, dict):
        return []
    return [sealed_key_id(v) if is_sealed(v) else PLAIN for v in data.values()]


def values_by_key(objs: Iterable[Obj]) -> dict[str, int]:
    """How many values each key id seals (PLAIN: in clear): what says an old key is still needed."""
    return dict(sorted(Counter(kid for obj in objs for kid in value_key_ids(obj)).items()))


def stale(obj: Obj, keyring: Keyring) -> bool:
    """A value in clear or under a key other than the first: rotation seals it again."""
    return any(kid != keyring.primary_id for kid in value_key_ids(obj))


def batches(objs: list[Obj], count: int, size: int) -> Iterator[list[Obj]]:
    """At most `count` objects and about `size` bytes of values a batch (one at least)."""
    batch: list[Obj] = []
    held = 0
    for obj in objs:
        weight = sum(len(v) for v in (obj.get("data") or {}).values() if isinstance(v, str))
        if batch and (len(batch) >= count or held + weight > size):
            yield batch
            batch, held = [], 0
        batch.append(obj)
        held += weight
    if batch:
        yield batch
