"""Pods' volumes, without hosts: the schema, who may use hostPath, the host plan, each container's
mounts, the files a ConfigMap or Secret volume holds, and the host script's safe subPath walk."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest

from master.api.auth import Principal
from master.api.volume_admission import check_host_paths
from master.errors import ApiError
from master.objects.validate import validate_object
from master.runtime import volume_host
from master.runtime.actions import MakeSandbox, MountVolumes, RunContainer
from master.runtime.driver import PodmanDriver
from master.runtime.planner import Listing, SoftState, plan_host
from master.runtime.volumes import (
    VolumeError,
    container_mounts,
    files,
    host_plan,
    volume_digest,
)

UID = "0b0e5a8e-1111-2222-3333-444455556666"
POD_DIR = f"/var/lib/berth/pods/{UID}"
V = f"{POD_DIR}/volumes/v"


def pod(volumes: list[dict[str, Any]], mounts: list[dict[str, Any]], uid: str = UID) -> dict[str, Any]:
    return {"apiVersion": "berth/v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default", "uid": uid},
            "spec": {"volumes": volumes,
                     "containers": [{"name": "main", "image": "busybox", "volumeMounts": mounts}]}}


def refused(document: dict[str, Any]) -> ApiError:
    with pytest.raises(ApiError) as caught:
        validate_object(document)
    return caught.value


# --- the schema -------------------------------------------------------------------------------

@pytest.mark.parametrize(("volumes", "mounts", "field", "words"), [
    ([{"name": "d", "emptyDir": {}, "hostPath": {"path": "/x"}}], [], "spec.volumes[0]",
     "exactly one source"),
    ([{"name": "d"}], [], "spec.volumes[0]", "exactly one source"),
    ([{"name": "d", "emptyDir": {}}, {"name": "d", "emptyDir": {}}], [], "spec.volumes",
     "duplicate volume name"),
    ([{"name": "d", "emptyDir": {}}], [{"name": "e", "mountPath": "/x"}], "spec", "does not name"),
    ([{"name": "d", "emptyDir": {}}], [{"name": "d", "mountPath": "x"}],
     "spec.containers[0].volumeMounts[0].mountPath", "not an absolute path"),
    ([{"name": "d", "emptyDir": {}}], [{"name": "d", "mountPath": "/a:b"}],
     "spec.containers[0].volumeMounts[0].mountPath", "no ':'"),
    ([{"name": "d", "emptyDir": {}}], [{"name": "d", "mountPath": "/a/../b"}],
     "spec.containers[0].volumeMounts[0].mountPath", "'..'"),
    ([{"name": "d", "emptyDir": {}}], [{"name": "d", "mountPath": "/a", "subPath": "../up"}],
     "spec.containers[0].volumeMounts[0].subPath", "'..'"),
    ([{"name": "d", "emptyDir": {}}], [{"name": "d", "mountPath": "/a", "subPath": "/abs"}],
     "spec.containers[0].volumeMounts[0].subPath", "pattern"),
    ([{"name": "d", "emptyDir": {}}], [{"name": "d", "mountPath": "/a"}, {"name": "d", "mountPath": "/a"}],
     "spec.containers[0].volumeMounts", "duplicate mountPath"),
    ([{"name": "d", "emptyDir": {"sizeLimit": "1Gi"}}], [], "spec.volumes[0].emptyDir", "medium: Memory"),
    ([{"name": "d", "hostPath": {"path": "/x", "type": "Socket"}}], [], "spec.volumes[0].hostPath.type", ""),
    ([{"name": "d", "secret": {"secretName": "s", "defaultMode": 0o1777}}], [],
     "spec.volumes[0].secret.defaultMode", ""),
    ([{"name": "d", "configMap": {"name": "c", "items": [{"key": "k", "path": "a/../../etc"}]}}], [],
     "spec.volumes[0].configMap.items[0].path", "'..'"),
])
def test_volumes_and_mounts_are_validated_naming_the_field(volumes: list, mounts: list, field: str,
                                                           words: str) -> None:
    error = refused(pod(volumes, mounts))
    assert error.status == 400 and error.field == field and words in error.message


def test_a_file_mode_may_be_written_as_yaml_octal() -> None:
    made = validate_object(pod([{"name": "s", "secret": {"secretName": "x", "defaultMode": "0400"}},
                                {"name": "c", "configMap": {"name": "y", "defaultMode": 420}}], []))
    assert made["spec"]["volumes"][0]["secret"]["defaultMode"] == 0o400
    assert made["spec"]["volumes"][1]["configMap"]["defaultMode"] == 0o644


@pytest.mark.parametrize(("role", "namespace", "allowed"), [
    ("admin", "default", True), ("operator", "default", False), ("operator", "ops", True),
    ("viewer", "ops", True),  # may it write at all: authorize's question, asked before this one
])
def test_host_path_is_for_admins_and_the_namespaces_they_allow(role: str, namespace: str,
                                                               allowed: bool) -> None:
    spec = {"volumes": [{"name": "h", "hostPath": {"path": "/srv"}}], "containers": []}
    for obj in ({"kind": "Pod", "metadata": {"name": "p", "namespace": namespace}, "spec": spec},
                {"kind": "Deployment", "metadata": {"name": "d", "namespace": namespace},
                 "spec": {"template": {"spec": spec}}}):
        if allowed:
            check_host_paths(obj, Principal("someone", role), ["ops"])
            continue
        with pytest.raises(ApiError) as caught:
            check_host_paths(obj, Principal("someone", role), ["ops"])
        assert caught.value.status == 403 and caught.value.field.endswith("volumes[0].hostPath")


# --- the host plan and the mounts ------------------------------------------------------------------

def test_the_host_plan_makes_each_volume_where_it_belongs() -> None:
    made = pod([{"name": "scratch", "emptyDir": {}},
                {"name": "fast", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
                {"name": "creds", "secret": {"secretName": "s"}},
                {"name": "conf", "configMap": {"name": "c"}},
                {"name": "host", "hostPath": {"path": "/srv/data", "type": "DirectoryOrCreate"}}],
               [{"name": "scratch", "mountPath": "/a", "subPath": "x/y"},
                {"name": "host", "mountPath": "/b", "subPath": "logs"},
                {"name": "conf", "mountPath": "/c", "subPath": "one-key"}])
    plan = host_plan(made, lookup_of({}))
    assert plan.pod_dir == POD_DIR
    assert plan.dirs == [{"path": f"{POD_DIR}/volumes/scratch", "mode": 0o777},
                         {"path": f"{POD_DIR}/volumes/conf", "mode": 0o755}]
    assert plan.tmpfs == [{"path": f"{POD_DIR}/volumes/fast", "size": 64 << 20, "mode": 0o777},
                          {"path": f"{POD_DIR}/volumes/creds", "size": None, "mode": 0o755}]  # never on disk
    assert plan.host_paths == [{"path": "/srv/data", "type": "DirectoryOrCreate"}]
    assert plan.subpaths == [  # written volumes' subPaths are Berth's own files: no bind needed
        {"root": f"{POD_DIR}/volumes/scratch", "path": "x/y",
         "staging": f"{POD_DIR}/volume-subpaths/scratch/main/0"},
        {"root": "/srv/data", "path": "logs", "staging": f"{POD_DIR}/volume-subpaths/host/main/1"}]
    assert [m.option() for m in container_mounts(made, made["spec"]["containers"][0])] == [
        f"--volume={POD_DIR}/volume-subpaths/scratch/main/0:/a:rw",
        f"--volume={POD_DIR}/volume-subpaths/host/main/1:/b:rw",
        f"--volume={POD_DIR}/volumes/conf/..data/one-key:/c:ro"]


@pytest.mark.parametrize(("volume", "mount", "option"), [
    ({"name": "v", "emptyDir": {}}, {"mountPath": "/m"}, f"--volume={V}:/m:rw"),
    ({"name": "v", "emptyDir": {}}, {"mountPath": "/m", "readOnly": True}, f"--volume={V}:/m:ro"),
    ({"name": "v", "secret": {"secretName": "s"}}, {"mountPath": "/m"}, f"--volume={V}:/m:ro"),
    ({"name": "v", "configMap": {"name": "c"}}, {"mountPath": "/m", "readOnly": False},
     f"--volume={V}:/m:ro"),  # always read-only, as in Kubernetes
    ({"name": "v", "hostPath": {"path": "/srv"}}, {"mountPath": "/m"}, "--volume=/srv:/m:rw"),
])
def test_each_mount_is_one_volume_option(volume: dict, mount: dict, option: str) -> None:
    made = pod([volume], [{"name": "v", **mount}])
    assert [m.option() for m in container_mounts(made, made["spec"]["containers"][0])] == [option]
    argv = PodmanDriver().run_container(made, made["spec"]["containers"][0])
    assert option in argv and argv.index(option) < argv.index("--")  # an option, before the image


def test_a_pod_uid_that_cannot_name_a_directory_is_refused() -> None:
    with pytest.raises(VolumeError):
        host_plan(pod([{"name": "v", "emptyDir": {}}], [], uid="../../etc"), lookup_of({}))


# --- files of ConfigMaps and Secrets ------------------------------------------------------------

def lookup_of(objects: dict[tuple[str, str], dict[str, Any]]) -> Any:
    return lambda kind, namespace, name: objects.get((kind, name))


def test_a_config_map_and_a_secret_become_files_with_their_modes() -> None:
    secret = {"metadata": {"resourceVersion": 7}, "data": {"token": base64.b64encode(b"s3cr\nt").decode()}}
    config = {"metadata": {"resourceVersion": 3}, "data": {"a": "1", "b": "2"}}
    made = pod([{"name": "c", "configMap": {"name": "cfg"}},
                {"name": "some", "configMap": {"name": "cfg",
                                               "items": [{"key": "b", "path": "deep/b", "mode": 0o600}]}},
                {"name": "s", "secret": {"secretName": "sec", "defaultMode": 0o400}}], [])
    lookup = lookup_of({("ConfigMap", "cfg"): config, ("Secret", "sec"): secret})
    by_volume = {f.volume: f for f in files(made, lookup)}
    assert by_volume["c"].files == {"a": (b"1", 0o644), "b": (b"2", 0o644)}
    assert by_volume["some"].files == {"deep/b": (b"2", 0o600)}
    assert by_volume["s"].files == {"token": (b"s3cr\nt", 0o400)}  # bytes as they are: a line break is fine
    assert by_volume["s"].directory == f"{POD_DIR}/volumes/s"
    before = volume_digest(made, lookup)
    config["metadata"]["resourceVersion"] = 4
    assert volume_digest(made, lookup) != before  # an update is seen without reading the data


@pytest.mark.parametrize(("volume", "present", "words"), [
    ({"configMap": {"name": "cfg"}}, False, 'configmap "cfg" not found'),
    ({"configMap": {"name": "cfg", "items": [{"key": "nope", "path": "x"}]}}, True, 'has no key "nope"'),
    ({"secret": {"secretName": "cfg"}}, False, 'secret "cfg" not found'),
])
def test_a_missing_object_or_key_fails_the_mount_unless_optional(volume: dict, present: bool,
                                                                 words: str) -> None:
    stored = {("ConfigMap", "cfg"): {"metadata": {}, "data": {"k": "v"}}} if present else {}
    with pytest.raises(VolumeError, match=words):
        files(pod([{"name": "v", **volume}], []), lookup_of(stored))
    source = next(iter(volume))
    optional = pod([{"name": "v", source: {**volume[source], "optional": True}}], [])
    assert [f.files for f in files(optional, lookup_of(stored))] == [{}]


# --- the runtime's plan ---------------------------------------------------------------------------

def test_volumes_are_set_up_before_the_sandbox_and_again_when_what_they_hold_changes() -> None:
    made = pod([{"name": "v", "emptyDir": {}}], [{"name": "v", "mountPath": "/v"}])
    actions = plan_host([made], Listing(), SoftState(now=0.0, volumes_due={UID: "d1"}))
    assert [type(a) for a in actions[:3]] == [MountVolumes, MakeSandbox, RunContainer]
    assert actions[0].digest == "d1"  # type: ignore[union-attr]
    assert not any(isinstance(a, MountVolumes) for a in plan_host([made], Listing(), SoftState(now=0.0)))


# --- the host script's own safety -----------------------------------------------------------------

def test_a_sub_path_never_passes_through_a_symlink(tmp_path: Path) -> None:
    root = tmp_path / "volume"
    (root / "real").mkdir(parents=True)
    (root / "escape").symlink_to("/")
    fd = volume_host.open_beneath(str(root), "real/made/here", create=True)
    os.close(fd)
    assert (root / "real" / "made" / "here").is_dir()
    with pytest.raises(SystemExit):
        volume_host.open_beneath(str(root), "escape/etc", create=False)


def test_removing_a_pods_directory_never_follows_a_symlink(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("kept")
    tree = tmp_path / "pod"
    (tree / "volumes" / "v").mkdir(parents=True)
    (tree / "volumes" / "v" / "link").symlink_to(outside)
    volume_host.remove_tree(str(tree))
    assert not tree.exists() and (outside / "keep").read_text() == "kept"


def test_a_sweep_removes_every_pods_directory_but_the_bound_ones(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(volume_host, "PODS_DIR", str(tmp_path))
    for uid in ("bound", "gone-1", "gone-2"):
        (tmp_path / uid / "volumes" / "v").mkdir(parents=True)
        (tmp_path / uid / "volumes" / "v" / "data").write_text(uid)
    volume_host.main(["sweep", "bound"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bound"]
    assert (tmp_path / "bound" / "volumes" / "v" / "data").read_text() == "bound"



def test_the_runtime_sets_volumes_up_once_per_digest_and_sweeps_each_host_once_a_minute() -> None:
    """Against a fake host: the first look mounts the pod's volumes (the plan on setup's standard
    input) and sweeps the host's pod directories but the bound pods'; the next looks do neither,
    until a minute has passed (the sweep) or a new term (both again)."""
    from master.runtime.controller import RuntimeController
    from tests.test_isolation import NOW, FakeStore, node
    from tests.test_isolation import pod as bound_pod
    from tests.test_runtime_executor import ImageHost

    web = bound_pod("web", "h1")
    web["spec"]["volumes"] = [{"name": "scratch", "emptyDir": {}}]
    store = FakeStore(node("h1"), web)
    host = ImageHost(present=("localhost/busybox:lab",))
    controller = RuntimeController(store, host, lambda: NOW, lambda: "u")  # type: ignore[arg-type]
    uid = store.get("Pod", "default", "web")["metadata"]["uid"]

    def volume_verbs() -> list[str]:
        return [argv[4] for argv in host.commands if argv[:3] == ["python3", "-I", "-c"]]

    try:
        controller.started_leading()
        controller.reconcile()
        assert volume_verbs() == ["setup", "sweep"]
        assert [argv[5:] for argv in host.commands if argv[4:5] == ["sweep"]] == [[uid]]  # keeps its own pod
        controller.attention.mark(["h1"])
        controller.reconcile()
        assert volume_verbs() == ["setup", "sweep"]  # the same digest: nothing to do
        controller.stopped_leading()  # a later term of this master's: it sets up and sweeps again
        controller.started_leading()
        controller.attention.mark(["h1"])
        controller.reconcile()
        assert volume_verbs() == ["setup", "sweep", "setup", "sweep"]
    finally:
        controller.stop()


# --- claims ---------------------------------------------------------------------------------------

def claimed(source: dict[str, Any], phase: str = "Bound", read_only: bool = False) -> tuple[dict, Any]:
    made = pod([{"name": "data", "persistentVolumeClaim": {"claimName": "db", "readOnly": read_only}}],
               [{"name": "data", "mountPath": "/data"}])
    claim = {"metadata": {"name": "db"}, "spec": {"volumeName": "pv-1"}, "status": {"phase": phase}}
    volume = {"metadata": {"name": "pv-1"}, "spec": {"capacity": {"storage": "1Gi"}, **source}}
    storage = {"metadata": {"name": "h9"}, "spec": {"address": "10.0.0.9", "sshPort": 2222}}
    return made, lookup_of({("PersistentVolumeClaim", "db"): claim, ("PersistentVolume", "pv-1"): volume,
                            ("Node", "h9"): storage})


@pytest.mark.parametrize(("source", "read_only", "part", "entry"), [
    ({"local": {"path": "/var/lib/berth/volumes/pv-1"}}, False, "binds",
     {"source": "/var/lib/berth/volumes/pv-1", "path": f"{POD_DIR}/volumes/data", "type": "Directory"}),
    ({"hostPath": {"path": "/srv/db", "type": "DirectoryOrCreate"}}, False, "binds",
     {"source": "/srv/db", "path": f"{POD_DIR}/volumes/data", "type": "DirectoryOrCreate"}),
    ({"sshfs": {"server": "h9", "path": "/var/lib/berth/shared/pv-1"}}, True, "sshfs",
     {"path": f"{POD_DIR}/volumes/data", "server": "10.0.0.9", "port": 2222,
      "remote": "/var/lib/berth/shared/pv-1", "read_only": True}),
    ({"nfs": {"server": "files.example.com", "path": "/exports/db"}}, False, "nfs",
     {"path": f"{POD_DIR}/volumes/data", "server": "files.example.com", "remote": "/exports/db",
      "read_only": False}),
])
def test_a_claims_volume_is_mounted_in_the_pods_directory_by_its_source(source: dict, read_only: bool,
                                                                        part: str, entry: dict) -> None:
    made, lookup = claimed(source, read_only=read_only)
    plan = host_plan(made, lookup)
    assert getattr(plan, part) == [entry]
    assert [m.option() for m in container_mounts(made, made["spec"]["containers"][0])] == [
        f"--volume={POD_DIR}/volumes/data:/data:{'ro' if read_only else 'rw'}"]


def test_a_claim_not_bound_yet_fails_the_mount_and_its_binding_changes_the_digest() -> None:
    made, lookup = claimed({"local": {"path": "/x"}}, phase="Pending")
    with pytest.raises(VolumeError, match='persistentvolumeclaim "db" is not bound yet'):
        host_plan(made, lookup)
    with pytest.raises(VolumeError, match='persistentvolumeclaim "db" not found'):
        host_plan(made, lookup_of({}))
    assert volume_digest(made, lookup) != volume_digest(made, lookup_of({}))
