"""Secrets at rest (master/store/encryption.py): the key file, sealing and opening, rotation's
arithmetic, and the pure state machine holding only ciphertext while applies stay `unchanged`."""

from __future__ import annotations

import base64
import json
import pickle
from pathlib import Path

import pytest

from master.config import MasterConfig
from master.store.commands import Batch, Command, Create, Delete, Put, Replace
from master.store.encryption import (
    PLAIN,
    PREFIX,
    Keyring,
    SealError,
    batches,
    is_sealed,
    key_id,
    open_object,
    parse_keys,
    seal_command,
    seal_object,
    sealed_key_id,
    stale,
    values_by_key,
)
from master.store.state import ClusterState, Outcome

K1, K2, K3 = (bytes([n]) * 32 for n in (1, 2, 3))
OLD, NEW = Keyring((K1,)), Keyring((K2, K1))  # rotation: a new key put first, the old one still opens
CLEAR = "hunter2-clear"
ENCODED = base64.b64encode(CLEAR.encode()).decode()


def line(key: bytes) -> str:
    return base64.b64encode(key).decode()


def secret(name: str = "db", namespace: str = "default", **data: str) -> dict:
    return {"apiVersion": "berth/v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
            "type": "Opaque", "data": data or {"password": ENCODED}}


# --- the key file --------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "ids"), [
    (f"{line(K1)}\n", [key_id(K1)]),
    (f"# the first seals\n\n{line(K2)}\n  {line(K1)}  \n", [key_id(K2), key_id(K1)]),
])
def test_a_key_file_holds_one_base64_key_a_line_the_first_sealing(text: str, ids: list[str]) -> None:
    keyring = parse_keys(text, "keys")
    assert list(keyring.ids) == ids and keyring.primary_id == ids[0]


@pytest.mark.parametrize(("text", "error"), [
    ("", "keys: no key"),
    ("# nothing but a comment\n", "keys: no key"),
    (f"{line(K1)}\nnot base64!\n", "keys line 2: not a base64 32-byte key"),
    (f"{line(K1[:16])}\n", "keys line 1: not a base64 32-byte key"),  # AES-128's size: refused
    (f"{line(K1)}\n{line(K1)}\n", "keys: a key is given twice"),
])
def test_a_bad_key_file_is_refused_naming_the_line_never_a_key(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error) as refused:
        parse_keys(text, "keys")
    assert line(K1) not in str(refused.value)


def test_a_key_id_is_derived_from_the_key_and_tells_nothing_of_it() -> None:
    assert key_id(K1) == key_id(bytes([1]) * 32) != key_id(K2)
    assert len(key_id(K1)) == 16 and key_id(K1) not in (K1.hex(), line(K1))


def test_the_setting_reads_the_file_and_a_bad_one_stops_the_master(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text(f"{line(K2)}\n{line(K1)}\n")
    base = {"name": "m", "raft_address": "127.0.0.1:1", "api_address": "127.0.0.1:2", "data_dir": "d",
            "tokens_file": "t", "insecure_raft_without_password": True, "controllers": ["node-lifecycle"]}
    assert MasterConfig.build(base, {}).encryption_keys() is None  # in clear, as before
    assert MasterConfig.build(base, {"encryption_key_file": str(keys)}).encryption_keys() == NEW
    keys.write_text("short\n")
    with pytest.raises(ValueError, match=f"{keys} line 1"):
        MasterConfig.build({**base, "encryption_key_file": str(keys)}, {}).encryption_keys()


# --- sealing and opening -------------------------------------------------------------------

def test_a_value_is_sealed_under_the_first_key_and_opens_as_it_was() -> None:
    sealed = seal_object(secret(token=ENCODED, empty=""), OLD, None)
    assert all(is_sealed(v) and sealed_key_id(v) == key_id(K1) for v in sealed["data"].values())
    assert CLEAR not in json.dumps(sealed) and ENCODED not in json.dumps(sealed)
    assert open_object(sealed, OLD) == secret(token=ENCODED, empty="")
    again = seal_object(secret(token=ENCODED, empty=""), OLD, None)
    assert again["data"]["token"] != sealed["data"]["token"]  # a random nonce each sealing


def test_rotation_the_new_key_seals_and_the_old_one_still_opens() -> None:
    old = seal_object(secret(), OLD, None)
    assert open_object(old, NEW) == secret()
    assert stale(old, NEW) and not stale(old, OLD)
    new = seal_object(open_object(old, NEW), NEW, old)  # under an old key: sealed anew, not kept
    assert sealed_key_id(new["data"]["password"]) == key_id(K2) and not stale(new, NEW)
    with pytest.raises(SealError, match=key_id(K2)):
        open_object(new, OLD)


def test_a_value_under_a_key_not_held_is_an_error_naming_the_key_id() -> None:
    sealed = seal_object(secret(), OLD, None)
    with pytest.raises(SealError) as lost:
        open_object(sealed, Keyring((K3,)))
    assert lost.value.status == 500 and lost.value.field == "data.password"
    assert key_id(K1) in lost.value.message and "secret default/db key 'password'" in lost.value.message
    with pytest.raises(SealError, match=f"{key_id(K1)}, and this master has no encryption_key_file"):
        open_object(sealed, None)
    hidden = open_object({**sealed, "data": {**sealed["data"], "plain": "eA=="}}, None, hide_unreadable=True)
    assert hidden["data"] == {"password": None, "plain": "eA=="}


def test_tampering_and_moving_a_value_are_detected() -> None:
    sealed = seal_object(secret(), OLD, None)
    value = sealed["data"]["password"]
    head, body = value.rsplit(":", 1)
    raw = bytearray(base64.b64decode(body))
    raw[-1] ^= 1
    altered = f"{head}:{base64.b64encode(bytes(raw)).decode()}"
    for moved in ({**sealed, "data": {"password": altered}},
                  {**sealed, "data": {"other-key": value}},
                  {**sealed, "metadata": {**sealed["metadata"], "name": "another"}},
                  {**sealed, "metadata": {**sealed["metadata"], "namespace": "other"}},
                  {**sealed, "data": {"password": f"{PREFIX}{key_id(K1)}:not base64!"}}):
        with pytest.raises(SealError, match="does not open"):
            open_object(moved, OLD)


def test_an_unchanged_value_keeps_its_ciphertext_a_changed_one_does_not() -> None:
    stored = seal_object(secret(password=ENCODED, other="eA=="), NEW, None)
    resent = seal_object(secret(password=ENCODED, other="eQ=="), NEW, stored)
    assert resent["data"]["password"] == stored["data"]["password"]
    assert resent["data"]["other"] != stored["data"]["other"]
    assert open_object(resent, NEW)["data"] == {"password": ENCODED, "other": "eQ=="}
    twin = seal_object(secret("twin", password=ENCODED, other="eA=="), NEW, stored)  # another Secret's
    assert twin["data"]["password"] != stored["data"]["password"]
    assert open_object(twin, NEW)["data"] == {"password": ENCODED, "other": "eA=="}


@pytest.mark.parametrize(("obj", "keyring"), [
    (secret(), None),  # no key file: stored in clear, as before
    ({"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}}, OLD),
    ({**secret(), "data": {}}, OLD),
])
def test_only_a_secrets_values_are_sealed_and_only_with_a_key(obj: dict, keyring: Keyring | None) -> None:
    assert seal_object(obj, keyring, None) is obj
    assert open_object(obj, keyring) is obj


def test_a_value_already_sealed_passes_through_as_it_is() -> None:
    """A controller writes back what it read as stored (the garbage collector's owner references)."""
    sealed = seal_object(secret(), OLD, None)
    assert seal_object(sealed, NEW, None) == sealed


def test_commands_carry_ciphertext_and_keep_everything_else() -> None:
    pod = {"kind": "Pod", "metadata": {"name": "p", "namespace": "default"}, "spec": {}}
    command = Batch((Create(secret("a"), "u1", "t", makes_namespace=False), Put(pod, "u2", "t"),
                     Replace(secret("b"), 7), Delete("Secret", "default", "c")))
    sealed = seal_command(command, OLD, lambda kind, namespace, name: None)
    assert isinstance(sealed, Batch)
    create, put, replace, delete = sealed.ops
    assert isinstance(create, Create) and create.uid == "u1" and create.makes_namespace is False
    assert is_sealed(create.obj["data"]["password"]) and is_sealed(replace.obj["data"]["password"])
    assert replace.expected_rv == 7 and put == command.ops[1] and delete == command.ops[3]
    assert ENCODED not in pickle.dumps(sealed).decode("latin-1")
    assert seal_command(command, None, lambda *_: None) is command


# --- rotation's arithmetic -------------------------------------------------------------------

def test_values_are_counted_per_key_id() -> None:
    objs = [seal_object(secret(a="eA==", b="eQ=="), OLD, None), seal_object(secret(c="eg=="), NEW, None),
            secret(d="eA=="), {"kind": "ConfigMap", "data": {"x": "y"}}]
    assert values_by_key(objs) == {**{key_id(K1): 2, key_id(K2): 1}, PLAIN: 1}
    assert [stale(o, NEW) for o in objs] == [True, False, True, False]


@pytest.mark.parametrize(("sizes", "count", "size", "expected"), [
    ([], 2, 100, []),
    ([1, 1, 1], 2, 100, [[1, 1], [1]]),
    ([40, 40, 40], 10, 100, [[40, 40], [40]]),
    ([500, 1], 10, 100, [[500], [1]]),  # larger than a batch: alone
])
def test_batches_are_bounded_by_count_and_bytes(sizes: list[int], count: int, size: int,
                                                expected: list[list[int]]) -> None:
    objs = [{"kind": "Secret", "data": {"k": "x" * n}} for n in sizes]
    assert [[len(o["data"]["k"]) for o in b] for b in batches(objs, count, size)] == expected


# --- the state machine holds ciphertext; applies stay unchanged --------------------------------

def write(state: ClusterState, command: Command, keyring: Keyring = NEW) -> Outcome:
    """What Store.submit does before Raft: seal against what the state holds."""
    sealed = seal_command(command, keyring, lambda kind, ns, name: state.get(kind, ns, name))
    outcome, _ = state.apply(sealed)
    assert outcome.error is None, outcome.error
    return outcome


def test_an_unchanged_secret_applied_or_replaced_again_is_unchanged() -> None:
    state = ClusterState()
    assert write(state, Put(secret(), "u", "t")).actions == ["created"]
    stored = state.get("Secret", "default", "db")
    assert ENCODED not in pickle.dumps(state).decode("latin-1")
    assert write(state, Put(secret(), "u2", "t2")).actions == ["unchanged"]
    shown = open_object(stored, NEW)  # what a client read, and sends back as it is
    assert shown["data"] == {"password": ENCODED}
    assert write(state, Replace(shown, stored["metadata"]["resourceVersion"])).actions == ["unchanged"]
    assert state.get("Secret", "default", "db") is stored
    changed = write(state, Put(secret(password="eA=="), "u3", "t3"))
    assert changed.actions == ["configured"]
    assert open_object(changed.objects[0], NEW)["data"] == {"password": "eA=="}
    rotated = write(state, Put(secret(password="eA=="), "u4", "t4"), Keyring((K3, K2)))
    assert rotated.actions == ["configured"]  # a new first key: sealed anew
    assert sealed_key_id(rotated.objects[0]["data"]["password"]) == key_id(K3)
