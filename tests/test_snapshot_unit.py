"""The snapshot file and the restore's seeding, without masters: round trip, refusals, the dump
PySyncObj loads (test_snapshot_masters.py restores real masters)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import pickle
import sys
from pathlib import Path

import pytest
import requests
import yaml
from click.testing import CliRunner

from master.snapshot_cli import snapshot
from master.store.encryption import load_keyring
from master.store.replicated import StateMachine
from master.store.restore import DUMP_FILE, dump_bytes, restored_state, seed
from master.store.snapshot_file import Snapshot, SnapshotError, decode, encode, read_header

MEMBERS = ["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"]
OBJECTS = [
    {"apiVersion": "berth/v1", "kind": "ConfigMap",
     "metadata": {"name": "b", "namespace": "default", "uid": "u2", "resourceVersion": 7},
     "data": {"k": "v"}},
    {"apiVersion": "berth/v1", "kind": "Namespace",
     "metadata": {"name": "team", "uid": "u1", "resourceVersion": 3}, "spec": {},
     "status": {"phase": "Active"}},
    {"apiVersion": "berth/v1", "kind": "Secret",
     "metadata": {"name": "db", "namespace": "team", "uid": "u3", "resourceVersion": 9},
     "data": {"password": "berth:enc:aesgcm:v1:abc:xyz"}},
]


def test_a_snapshot_round_trips_with_its_revision_objects_and_header() -> None:
    data = encode(12, OBJECTS, {"takenBy": "m1"})
    snap = decode(data)
    assert (snap.revision, snap.meta) == (12, {"takenBy": "m1"})
    assert snap.objects == sorted(OBJECTS, key=lambda o: (o["kind"], o["metadata"]["name"]))
    header = read_header(data)
    assert (header["format"], header["version"], header["count"]) == ("berth-snapshot", 1, 3)
    assert header["size"] == snap.size == len(data) - data.index(b"\n") - 1
    assert encode(12, list(reversed(OBJECTS)), {"takenBy": "m1"}) == data  # canonical: one state, one file


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: _flip(d, len(d) - 5), "checksum does not match"),
    (lambda d: _flip(d, d.index(b"\n") + 20), "checksum does not match"),
    (lambda d: d[:-1], "truncated"),
    (lambda d: d + b" ", "truncated"),
    (lambda d: d.replace(b'"version": 1', b'"version": 2', 1), "version 2 is not one"),
    (lambda d: d.replace(b'"format": "berth-snapshot"', b'"format": "other"', 1), "not a Berth snapshot"),
    (lambda d: d.replace(b'"revision": 12', b'"revision": 13', 1), "disagrees"),
    (lambda d: d.replace(b'"count": 3', b'"count": 2', 1), "disagrees"),
    (lambda d: d.replace(b"\n", b" "), "no header line"),
    (lambda d: b"garbage\n" + d, "not JSON"),
])
def test_a_file_that_does_not_verify_is_refused(change, message: str) -> None:
    with pytest.raises(SnapshotError, match=message):
        decode(change(encode(12, OBJECTS)))


def _signed(body: bytes) -> bytes:
    """A header whose checksum and size are right for `body`, whatever `body` is."""
    header = {"format": "berth-snapshot", "version": 1, "revision": 12, "count": 3, "size": len(body),
              "sha256": hashlib.sha256(body).hexdigest()}
    return json.dumps(header).encode() + b"\n" + body


@pytest.mark.parametrize(("body", "message"), [
    (b"{not json", "body is not JSON"),
    (b"[1, 2, 3]", "body is not an object"),
])
def test_a_body_that_verifies_but_is_no_snapshot_is_refused(body: bytes, message: str) -> None:
    with pytest.raises(SnapshotError, match=message):
        decode(_signed(body))


def test_a_restore_refuses_a_data_dir_that_holds_anything_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "raft.journal").write_bytes(b"old")
    with pytest.raises(SnapshotError, match="not an empty directory"):
        seed(decode(encode(12, OBJECTS)), tmp_path, MEMBERS)
    assert [p.name for p in tmp_path.iterdir()] == ["raft.journal"]


@pytest.mark.parametrize(("objects", "message"), [
    ([OBJECTS[0], OBJECTS[0]], "two ConfigMap objects named default/b"),
    ([{**OBJECTS[0], "metadata": {**OBJECTS[0]["metadata"], "resourceVersion": 13}}], "resourceVersion 13"),
])
def test_a_state_no_store_could_hold_is_refused(objects: list, message: str) -> None:
    with pytest.raises(SnapshotError, match=message):
        restored_state(Snapshot(12, objects))


def test_the_dump_is_what_the_state_machine_loads(tmp_path: Path) -> None:
    """PySyncObj's own load: (data, last entry, the entry before, cluster); the consumer's part
    goes to StateMachine._deserialize, which resets the watch window to the revision."""
    path = seed(decode(encode(12, OBJECTS)), tmp_path / "m1", MEMBERS)
    assert path == tmp_path / "m1" / DUMP_FILE and path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "m1").stat().st_mode & 0o777 == 0o700
    data = pickle.loads(gzip.decompress(path.read_bytes()))
    assert data[1][1:] == (3, 0) and data[2][1:] == (2, 0)
    # the members: with dynamic membership PySyncObj takes them from the dump (none: a cluster of one each)
    assert {node.id for node in data[3]} == set(MEMBERS)
    machine = StateMachine(100)
    machine._deserialize(data[0][1])
    state = machine.state
    assert state.revision == 12 and machine.window.latest == 12 and machine.loads == 1
    assert state.get("Secret", "team", "db") == OBJECTS[2]
    assert [o["metadata"]["name"] for o in state.select("ConfigMap", "default")] == ["b"]
    assert pickle.loads(pickle.dumps(state)).get("Namespace", "", "team") == OBJECTS[1]
    assert dump_bytes(state, MEMBERS)  # picklable again: PySyncObj's compaction writes it so
    with pytest.raises(SnapshotError, match="members"):
        dump_bytes(state, [])


def test_the_commands_say_why_a_file_is_refused_and_exit_non_zero(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.snap", tmp_path / "bad.snap"
    good.write_bytes(encode(12, OBJECTS))
    bad.write_bytes(_flip(good.read_bytes(), len(good.read_bytes()) - 3))
    runner = CliRunner()
    status = runner.invoke(snapshot, ["status", str(good), "-o", "json"])
    assert status.exit_code == 0 and json.loads(status.output)["revision"] == 12
    cluster = ["--initial-cluster", ",".join(MEMBERS)]
    nameless = runner.invoke(snapshot, ["restore", str(good), "--data-dir", str(tmp_path / "new")])
    assert nameless.exit_code == 2 and "--initial-cluster" in nameless.output
    odd = runner.invoke(snapshot, ["restore", str(good), "--data-dir", str(tmp_path / "new"),
                                   "--initial-cluster", "a:1,$(reboot)"])
    assert odd.exit_code == 2 and "is not HOST:PORT" in odd.output
    refused = runner.invoke(snapshot, ["restore", str(bad), "--data-dir", str(tmp_path / "new"), *cluster])
    assert refused.exit_code == 1 and "checksum does not match" in refused.output
    assert not (tmp_path / "new").exists()
    done = runner.invoke(snapshot, ["restore", str(good), "--data-dir", str(tmp_path / "new"), *cluster])
    assert done.exit_code == 0 and "Restored revision 12 (3 objects)" in done.output
    again = runner.invoke(snapshot, ["restore", str(good), "--data-dir", str(tmp_path / "new"), *cluster])
    assert again.exit_code == 1 and "not an empty directory" in again.output


def test_berth_master_dispatches_snapshot_and_keeps_every_other_invocation_the_servers(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import master.main as entry
    seen: list[tuple[str, list[str] | None]] = []
    monkeypatch.setattr(entry.snapshot, "main", lambda args=None, prog_name=None: seen.append(("snap", args)))
    monkeypatch.setattr(entry.serve, "main", lambda args=None, prog_name=None: seen.append(("serve", args)))
    for argv in (["berth-master", "snapshot", "status", "f"], ["berth-master", "--config", "m.yaml"],
                 ["berth-master"]):
        monkeypatch.setattr(sys, "argv", argv)
        entry.main()
    assert seen == [("snap", ["status", "f"]), ("serve", None), ("serve", None)]


def test_a_restore_with_a_config_needs_the_keys_the_file_was_sealed_with(tmp_path: Path) -> None:
    """The config names the data dir and the key file; a file sealed under a key it lacks is refused."""
    keys = tmp_path / "keys"
    keys.write_text(base64.b64encode(b"k" * 32).decode() + "\n")
    keys.chmod(0o600)
    config = tmp_path / "m1.yaml"
    config.write_text(yaml.safe_dump({"name": "m1", "raft_address": "127.0.0.1:1",
                                      "api_address": "127.0.0.1:2", "data_dir": str(tmp_path / "m1"),
                                      "tokens_file": str(tmp_path / "t"), "encryption_key_file": str(keys),
                                      "raft_password_file": str(keys)}))
    sealed_by = load_keyring(str(keys)).primary_id
    runner = CliRunner()
    for key_ids, code in (({"0123456789abcdef": 1}, 1), ({sealed_by: 1, "plain": 2}, 0)):
        file = tmp_path / "backup.snap"
        file.write_bytes(encode(12, OBJECTS, {"secretValuesByKey": key_ids}))
        done = runner.invoke(snapshot, ["restore", str(file), "--config", str(config)])
        assert done.exit_code == code, done.output
        assert code == 0 or "key ids 0123456789abcdef, which" in done.output
        assert (tmp_path / "m1" / DUMP_FILE).exists() == (code == 0)


def test_save_says_the_apis_error_message_when_refused(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The API's errors are `{"error", "field", "reason"}`: the message is shown, not the raw JSON."""
    refused = requests.Response()
    refused.status_code = 403
    refused._content = json.dumps({"error": "viewer may not get Secret (snapshot)", "field": None,
                                   "reason": "Forbidden"}).encode()
    monkeypatch.setattr("master.snapshot_cli.requests.get", lambda *args, **kwargs: refused)
    token = tmp_path / "token"
    token.write_text("t0ken\n")
    answer = CliRunner().invoke(snapshot, ["save", str(tmp_path / "s.snap"), "--server", "https://m1:1",
                                           "--token-file", str(token)])
    assert answer.exit_code == 1
    assert "answered 403: viewer may not get Secret (snapshot)" in answer.output, answer.output
    assert not (tmp_path / "s.snap").exists()
