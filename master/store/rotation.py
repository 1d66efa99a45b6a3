"""Every Secret sealed again with the first key of `encryption_key_file`, through Raft, in batches.

Safe while the cluster serves: each Secret is written back as a Replace at the resourceVersion it
was read at, so a write made meanwhile wins (409) and the Secret is read again in the next round
(that write was sealed with the first key already, if every master has the same key file). The
rewrite opens each value and seals it here: values already under the first key keep their
ciphertext, the others are sealed anew; what is proposed is sealed already, so the store's edge
passes it as it is (without the barrier an update in clear waits for).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from master.errors import ApiError
from master.store.commands import Replace
from master.store.encryption import (
    Keyring,
    SealError,
    batches,
    open_object,
    seal_object,
    stale,
    values_by_key,
)
from master.store.replicated import Store

BATCH_COUNT = 50  # Secrets in one propose_all (group commit carries them in a few Raft entries)
BATCH_BYTES = 1 << 20  # about this many bytes of values a batch: Raft's append batches are 1 MiB
ROUNDS = 5  # reads of what is left: a Secret written meanwhile (409) is read again


@dataclass
class Rotation:
    key_id: str
    before: dict[str, int]  # values per key id ("plain": in clear) when it began
    after: dict[str, int] = field(default_factory=dict)
    rotated: int = 0  # Secrets written back
    left: int = 0  # Secrets still not wholly under the first key
    failed: list[dict[str, str]] = field(default_factory=list)  # namespace, name, error


def rotate_secrets(store: Store, keyring: Keyring, dry_run: bool = False) -> Rotation:
    """`dry_run`: only count what would be sealed again."""
    rotation: Rotation | None = None
    given_up: set[tuple[str, str]] = set()
    for _ in range(ROUNDS):
        store.barrier()  # this master's copy may lag: everything committed before is read
        secrets, _ = store.read(lambda state: state.list("Secret"))
        if rotation is None:
            rotation = Rotation(keyring.primary_id, values_by_key(secrets))
        due = [s for s in secrets if stale(s, keyring) and _key(s) not in given_up]
        if not due or dry_run:
            break
        for batch in batches(due, BATCH_COUNT, BATCH_BYTES):
            _rewrite(store, keyring, batch, rotation, given_up)
    assert rotation is not None  # pragma: no cover - the loop ran once at least
    secrets, _ = store.read(lambda state: state.list("Secret"))
    rotation.after = values_by_key(secrets)
    rotation.left = sum(1 for s in secrets if stale(s, keyring))
    return rotation


def _key(obj: dict) -> tuple[str, str]:
    return obj["metadata"].get("namespace") or "", obj["metadata"]["name"]


def _rewrite(store: Store, keyring: Keyring, batch: list[dict], rotation: Rotation,
             given_up: set[tuple[str, str]]) -> None:
    commands, written = [], []
    for obj in batch:
        try:
            opened = open_object(obj, keyring)
        except SealError as err:  # a key no longer held: nothing to seal again; said, not retried
            _give_up(obj, err, rotation, given_up)
            continue
        commands.append(Replace(seal_object(opened, keyring, obj), obj["metadata"]["resourceVersion"]))
        written.append(obj)
    for obj, answer in zip(written, store.propose_all(commands), strict=True):
        if not isinstance(answer, ApiError):
            rotation.rotated += 1
        elif answer.status not in (404, 409, 503):  # gone, changed meanwhile, unconfirmed: read again
            _give_up(obj, answer, rotation, given_up)


def _give_up(obj: dict, err: ApiError, rotation: Rotation, given_up: set[tuple[str, str]]) -> None:
    namespace, name = _key(obj)
    given_up.add((namespace, name))
    rotation.failed.append({"namespace": namespace, "name": name, "error": err.message})
