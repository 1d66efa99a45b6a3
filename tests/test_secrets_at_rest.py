"""Secrets at rest, on real masters: no clear value in any master's journal or snapshot, values
still shown to admins and hidden from viewers, and rotation to a new key through the API."""

from __future__ import annotations

import base64
import gzip
import json
import os
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from berth.lab.masters import ENCRYPTION_KEYS
from master.store.encryption import PREFIX, key_id
from tests.harness import MasterCluster, wait_until

SECRETS = "/api/v1/namespaces/default/secrets"
ROTATE = "/api/v1/secrets/rotate"
CLEAR = [f"clear-{n}-Zq8v{n}Jx" for n in range(7)]  # values no master may keep in clear


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def secret(name: str, **fields: Any) -> dict:
    return {"apiVersion": "berth/v1", "kind": "Secret", "metadata": {"name": name}, **fields}


def on_disk(cluster: MasterCluster) -> dict[str, bytes]:
    """Every file of every master's data dir, snapshots (gzip) unpacked."""
    found = {}
    for master in cluster.masters:
        for path in sorted(p for p in Path(master.spec.data_dir).rglob("*") if p.is_file()):
            data = path.read_bytes()
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            found[str(path)] = data
    return found


def assert_nothing_in_clear(cluster: MasterCluster) -> None:
    needles = [form.encode() for value in CLEAR for form in (value, b64(value))]
    files = on_disk(cluster)
    assert [(path, needle) for path, data in files.items() for needle in needles if needle in data] == []
    for master in cluster.masters:  # and the values are there, sealed
        assert any(PREFIX.encode() in data for path, data in files.items()
                   if path.startswith(str(master.spec.data_dir))), master.name


def values(session: requests.Session, url: str) -> dict:
    answer = session.get(url)
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def apply_secret(cluster: MasterCluster, index: int) -> list[str]:
    text = yaml.safe_dump(secret("applied", stringData={"key": CLEAR[5]}))
    answer = cluster.session().post(cluster.url(index, "/api/v1/apply?namespace=default"), data=text,
                                    headers={"Content-Type": "application/yaml"})
    assert answer.status_code == 200, answer.text
    return answer.json()["actions"]


def restart(cluster: MasterCluster, indexes: list[int]) -> None:
    for i in indexes:
        cluster.kill(i)
    for i in indexes:
        cluster.start(i)
    cluster.wait_ready(indexes, timeout=60)


def expected() -> dict[str, dict[str, str]]:
    return {"plain": {"password": b64(CLEAR[2])}, "typed": {"token": b64(CLEAR[3])},
            "applied": {"key": b64(CLEAR[5])}}


def assert_values_everywhere(cluster: MasterCluster) -> None:
    admin = cluster.session()
    for i in range(3):
        for name, data in expected().items():
            assert values(admin, cluster.url(i, f"{SECRETS}/{name}?consistent=1")) == data


@pytest.mark.parametrize("own_cluster", [{"timings": {"log_compaction_min_entries": 50}}], indirect=True)
def test_secrets_are_sealed_on_disk_shown_as_before_and_rotated(own_cluster: MasterCluster) -> None:
    cluster, admin, viewer = own_cluster, own_cluster.session(), own_cluster.session("viewer")
    start = admin.get(cluster.url(0, SECRETS)).json()["metadata"]["resourceVersion"]
    # written every way: data, stringData, replace at a resourceVersion, merge patch, apply, dry run
    made = admin.post(cluster.url(0, SECRETS), json=secret("plain", data={"password": b64(CLEAR[0])}))
    assert made.status_code == 201 and made.json()["data"] == {"password": b64(CLEAR[0])}
    typed = admin.post(cluster.url(1, SECRETS), json=secret("typed", stringData={"token": CLEAR[1]}))
    assert typed.status_code == 201 and typed.json()["data"] == {"token": b64(CLEAR[1])}
    version = made.json()["metadata"]["resourceVersion"]
    replaced = admin.put(cluster.url(2, f"{SECRETS}/plain"), json=secret(
        "plain", metadata={"name": "plain", "resourceVersion": version}, data={"password": b64(CLEAR[2])}))
    assert replaced.status_code == 200 and replaced.json()["data"] == {"password": b64(CLEAR[2])}
    patched = admin.patch(cluster.url(0, f"{SECRETS}/typed"), json={"stringData": {"token": CLEAR[3]}},
                          headers={"Content-Type": "application/merge-patch+json"})
    assert patched.status_code == 200 and patched.json()["data"] == {"token": b64(CLEAR[3])}
    assert apply_secret(cluster, 1) == ["created"]
    assert apply_secret(cluster, 2) == ["unchanged"]
    dry = admin.post(cluster.url(0, f"{SECRETS}?dryRun=All"), json=secret("dry", stringData={"k": CLEAR[6]}))
    assert dry.status_code == 201 and dry.json()["data"] == {"k": b64(CLEAR[6])}
    assert admin.get(cluster.url(0, f"{SECRETS}/dry")).status_code == 404
    # shown as before: values to an admin (get, list, watch), keys alone to a viewer
    assert_values_everywhere(cluster)
    listed = admin.get(cluster.url(1, "/api/v1/secrets?consistent=1")).json()["items"]
    assert {s["metadata"]["name"]: s["data"] for s in listed} == expected()
    for i in range(3):
        assert values(viewer, cluster.url(i, f"{SECRETS}/plain?consistent=1")) == {"password": None}
    watched = admin.get(cluster.url(0, f"/api/v1/watch?kind=Secret&since={start}&timeoutSeconds=1"))
    events = [json.loads(line) for line in watched.text.splitlines()]
    assert next(e["object"]["data"] for e in events if e["type"] == "ADDED") == {"password": b64(CLEAR[0])}
    # a snapshot on every master, then nothing in clear in any file of theirs
    for n in range(60):
        config = {"apiVersion": "berth/v1", "kind": "ConfigMap", "metadata": {"name": f"c{n}"}, "data": {}}
        assert admin.post(cluster.url(n % 3, "/api/v1/namespaces/default/configmaps"), json=config).ok
    for master in cluster.masters:
        wait_until(lambda m=master: (m.spec.data_dir / "raft.dump").exists(), 30,
                   what=f"{master.name} snapshot")
    assert_nothing_in_clear(cluster)
    assert all(value not in cluster.logs() for value in CLEAR)

    # rotation: a new key first, the masters restarted, every value sealed again under it
    keys_file = cluster.root / ENCRYPTION_KEYS
    old_key = keys_file.read_text().strip()
    new_key = base64.b64encode(os.urandom(32)).decode()
    old_id, new_id = (key_id(base64.b64decode(k)) for k in (old_key, new_key))
    keys_file.write_text(f"{new_key}\n{old_key}\n")
    restart(cluster, [0, 1, 2])
    assert_values_everywhere(cluster)  # the old key still opens
    for role in ("operator", "viewer"):
        assert cluster.session(role).post(cluster.url(0, ROTATE)).status_code == 403
    counted = admin.post(cluster.url(0, f"{ROTATE}?dryRun=All")).json()
    assert (counted["before"], counted["rotated"], counted["after"]) == ({old_id: 3}, 0, {old_id: 3})
    rotated = admin.post(cluster.url(1, ROTATE))
    assert rotated.status_code == 200, rotated.text
    assert rotated.json() == {
        "apiVersion": "berth/v1", "kind": "SecretRotation", "keyId": new_id, "dryRun": False,
        "before": {old_id: 3}, "after": {new_id: 3}, "rotated": 3, "left": 0, "failed": []}
    assert apply_secret(cluster, 0) == ["unchanged"]  # kept under the new key
    # the old key can go
    keys_file.write_text(f"{new_key}\n")
    restart(cluster, [0, 1, 2])
    assert_values_everywhere(cluster)
    assert admin.post(cluster.url(2, ROTATE)).json()["rotated"] == 0
    assert_nothing_in_clear(cluster)

    # a master without the key: its reads of values fail, naming the key id; it does not crash
    lost = cluster.root / "lost-keys"
    lost.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    lost.chmod(0o600)
    spec = cluster.masters[2].spec
    spec.config_file.write_text(yaml.safe_dump(
        {**yaml.safe_load(spec.config_file.read_text()), "encryption_key_file": str(lost)}))
    restart(cluster, [2])
    refused = admin.get(cluster.url(2, f"{SECRETS}/plain"))
    assert refused.status_code == 500 and new_id in refused.json()["error"]
    assert refused.json()["field"] == "data.password"
    assert admin.get(cluster.url(2, SECRETS)).status_code == 500
    assert values(viewer, cluster.url(2, f"{SECRETS}/plain")) == {"password": None}  # no key needed
    assert admin.delete(cluster.url(2, f"{SECRETS}/plain")).status_code == 200
    assert cluster.alive(2) and cluster.ready(2)
    assert admin.get(cluster.url(0, f"{SECRETS}/plain?consistent=1")).status_code == 404
