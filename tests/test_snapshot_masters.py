"""Snapshot, restore and compare (issue 19): `berth-master snapshot save` from a follower and from the
leader of three real masters while writes go on, `snapshot restore` into three fresh data dirs, fresh
masters started on them find every object equal, read the Secrets' values, and go on writing above
the snapshot's revision. Only cluster-admin takes a snapshot."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from berth.kinds import KINDS
from berth.lab.masters import ENCRYPTION_KEYS
from master.store.snapshot_file import decode
from tests.conftest import STORE_ONLY, TEST_ROOT
from tests.harness import TOKENS, MasterCluster, pod
from tests.test_secrets_at_rest import b64

NS = "snap"
PASSWORD = "s3cret-at-rest"


def _path(kind: str, namespace: str, name: str = "") -> str:
    plural = KINDS[kind].plural
    base = f"/api/v1/namespaces/{namespace}/{plural}" if KINDS[kind].namespaced else f"/api/v1/{plural}"
    return f"{base}/{name}" if name else base


def _create(cluster: MasterCluster, obj: dict[str, Any], index: int = 0) -> dict[str, Any]:
    meta = obj["metadata"]
    answer = cluster.session().post(cluster.url(index, _path(obj["kind"], meta.get("namespace", ""))),
                                    json=obj, timeout=10)
    assert answer.status_code == 201, answer.text
    return answer.json()


def _obj(kind: str, name: str, **fields: Any) -> dict[str, Any]:
    namespace = {"namespace": NS} if KINDS[kind].namespaced else {}
    return {"apiVersion": "berth/v1", "kind": kind, "metadata": {"name": name, **namespace}, **fields}


def _objects_of_every_kind(cluster: MasterCluster) -> None:
    _create(cluster, _obj("Namespace", NS))
    for i in range(3):
        _create(cluster, pod(f"p{i}", NS, {"app": "web"}))
    spec = {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod("x")["spec"]}}
    _create(cluster, _obj("Deployment", "web", spec=spec))
    _create(cluster, _obj("ConfigMap", "conf", data={"a": "1"}))
    _create(cluster, _obj("Secret", "db", data={"password": b64(PASSWORD)}))


def _save(cluster: MasterCluster, index: int, file: Path, token_file: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "master.main", "snapshot", "save", str(file),
                           "--server", cluster.url(index), "--token-file", str(token_file),
                           "--ca-file", str(cluster.ca_file)], capture_output=True, text=True, timeout=120)


def _writes_while(cluster: MasterCluster, action) -> tuple[Any, dict[str, int]]:
    """`action()` while another thread creates ConfigMaps w-0, w-1...: their resourceVersions."""
    created: dict[str, int] = {}
    stop = threading.Event()

    def write() -> None:
        session = cluster.session()
        for i in range(5000):
            if stop.is_set():
                return
            answer = session.post(cluster.url(i % 3, _path("ConfigMap", NS)),
                                  json=_obj("ConfigMap", f"w-{i}"), timeout=10)
            assert answer.status_code == 201, answer.text
            created[f"w-{i}"] = answer.json()["metadata"]["resourceVersion"]

    writer = threading.Thread(target=write)
    writer.start()
    try:
        result = action()
    finally:
        stop.set()
        writer.join(60)
    return result, created


def _get(cluster: MasterCluster, obj: dict[str, Any], index: int = 0) -> dict[str, Any]:
    path = _path(obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
    answer = cluster.session().get(cluster.url(index, path), timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_snapshot_restore_and_compare(cluster: MasterCluster, tmp_path: Path) -> None:
    _objects_of_every_kind(cluster)
    token_file = tmp_path / "token"
    token_file.write_text(TOKENS["admin"][1] + "\n")
    leader = cluster.leader_index()
    follower = (leader + 1) % 3
    files = {"follower": tmp_path / "follower.snap", "leader": tmp_path / "leader.snap"}

    def both() -> list[subprocess.CompletedProcess]:
        return [_save(cluster, follower, files["follower"], token_file),
                _save(cluster, leader, files["leader"], token_file)]

    saves, created = _writes_while(cluster, both)
    for save, file in zip(saves, files.values(), strict=True):
        assert save.returncode == 0, save.stderr
        assert save.stdout.startswith(f"Snapshot saved at {file} (revision ")
        assert file.stat().st_mode & 0o777 == 0o600
    snaps = {role: decode(file.read_bytes()) for role, file in files.items()}
    assert created  # the writes went on

    # consistent: each file holds every write up to its revision and none after, each object
    # as it is now (nothing but creates came after)
    for role, snap in snaps.items():
        names = {o["metadata"]["name"] for o in snap.objects if o["kind"] == "ConfigMap"}
        assert {n for n, rv in created.items() if rv <= snap.revision} <= names, role
        assert not {n for n, rv in created.items() if rv > snap.revision} & names, role
        assert all(o["metadata"]["resourceVersion"] <= snap.revision for o in snap.objects)
        secret = next(o for o in snap.objects if o["kind"] == "Secret")
        assert secret["data"]["password"].startswith("berth:enc:")  # sealed as stored
        content = files[role].read_bytes()
        assert PASSWORD.encode() not in content and b64(PASSWORD).encode() not in content
    snap = snaps["follower"]
    source = {_key(o): _get(cluster, o) for o in snap.objects}
    status = subprocess.run([sys.executable, "-m", "master.main", "snapshot", "status",
                             str(files["follower"]), "-o", "json"],
                            capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["totalKeys"] == len(snap.objects)

    # a new cluster: its own addresses, the same key file and tokens, every member restored
    root = TEST_ROOT / f"{__name__.rsplit('.', 1)[-1]}-restored"  # as the fixtures name theirs
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    shutil.copy2(cluster.root / ENCRYPTION_KEYS, root / ENCRYPTION_KEYS)
    restored = MasterCluster(root, size=3, extra_settings=STORE_ONLY)
    try:
        for spec in restored.specs:
            done = subprocess.run([sys.executable, "-m", "master.main", "snapshot", "restore",
                                   str(files["follower"]), "--config", str(spec.config_file)],
                                  capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
        restored.start_all()
        restored.wait_ready()
        for index in range(3):
            found = {_key(o): _get(restored, o, index) for o in snap.objects}
            assert found == source  # spec, status, metadata: uid, resourceVersion, creation time
        readable = _get(restored, _obj("Secret", "db"))
        assert readable["data"]["password"] == b64(PASSWORD)
        listed = restored.session().get(restored.url(1, _path("Pod", NS)), timeout=10).json()
        assert sorted(p["metadata"]["name"] for p in listed["items"]) == ["p0", "p1", "p2"]

        after = _create(restored, _obj("ConfigMap", "after"), index=2)
        assert after["metadata"]["resourceVersion"] > snap.revision
        with restored.session().get(restored.url(0, f"/api/v1/watch?kind=ConfigMap&namespace={NS}&since="
                                                    f"{snap.revision}&timeoutSeconds=5"),
                                    stream=True, timeout=15) as watch:
            assert watch.status_code == 200, watch.text
            events = [json.loads(line) for line in watch.iter_lines() if line]
        assert any(e.get("object", {}).get("metadata", {}).get("name") == "after" for e in events), events

        # a member rebuilt with an empty data dir is sent the state, not entries replayed on nothing
        restored.kill(2)
        shutil.rmtree(restored.specs[2].data_dir)
        restored.start(2)
        restored.wait_ready([2])
        assert {_key(o): _get(restored, o, 2) for o in snap.objects} == source
        assert _get(restored, after, 2) == after
    finally:
        restored.close()
        shutil.rmtree(root, ignore_errors=True)


def _key(obj: dict[str, Any]) -> tuple[str, str, str]:
    return obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


def test_only_cluster_admin_takes_a_snapshot(cluster: MasterCluster) -> None:
    for role, code in (("viewer", 403), ("operator", 403), (None, 401)):
        answer = cluster.session(role).get(cluster.url(0, "/api/v1/snapshot"), timeout=10)
        assert answer.status_code == code, (role, answer.text)
        assert answer.headers["Content-Type"].startswith("application/json")
    answer = cluster.session().get(cluster.url(1, "/api/v1/snapshot"), timeout=30)
    assert answer.status_code == 200
    assert decode(answer.content).revision >= 0
