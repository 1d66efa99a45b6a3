"""The storage kinds (no server): their schemas (a bad field is a 400 naming it), the store's rules for
updates and deletion, the roles, and how the CLI shows them."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from berth.cli.columns import columns_for, rows
from berth.cli.describe_storage import describe_claim, describe_class, describe_volume
from berth.kinds import lookup_kind
from master.api.auth import Principal, authorize
from master.errors import ApiError
from master.objects.kinds import KINDS
from master.objects.validate import validate_object, validate_status
from master.store.commands import Create, MarkDeleted, Replace, deletion
from master.store.state import ClusterState
from tests.test_storage import on, pod

NODE_AFFINITY = on("h1")


def storage_class(**fields: Any) -> dict[str, Any]:
    return {"kind": "StorageClass", "metadata": {"name": "fast"}, "provisioner": "berth.io/shared",
            "parameters": {"server": "store", "path": "/srv/volumes"}, **fields}


def volume(**spec: Any) -> dict[str, Any]:
    return {"kind": "PersistentVolume", "metadata": {"name": "v"},
            "spec": {"capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteOnce"],
                     "hostPath": {"path": "/srv/v"}, **spec}}


def claim(**spec: Any) -> dict[str, Any]:
    return {"kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, **spec}}


def refused(document: dict[str, Any]) -> ApiError:
    with pytest.raises(ApiError) as caught:
        validate_object(document)
    assert caught.value.status == 400
    return caught.value


def test_the_kinds_are_known_by_kubectls_names() -> None:
    for name, kind in (("pv", "PersistentVolume"), ("pvc", "PersistentVolumeClaim"), ("sc", "StorageClass"),
                       ("storageclasses", "StorageClass"),
                       ("persistentvolumeclaim", "PersistentVolumeClaim")):
        assert lookup_kind(name).kind == kind  # type: ignore[union-attr]
    assert [KINDS[k].namespaced for k in ("PersistentVolume", "PersistentVolumeClaim", "StorageClass")] == [
        False, True, False]


def test_defaults_are_kubernetes() -> None:
    made = validate_object(storage_class())
    assert (made["reclaimPolicy"], made["volumeBindingMode"]) == ("Delete", "Immediate")
    made = validate_object(volume())
    spec = made["spec"]
    assert (spec["persistentVolumeReclaimPolicy"], spec["volumeMode"]) == ("Retain", "Filesystem")
    made = validate_object(claim())
    assert made["metadata"]["namespace"] == "default" and "storageClassName" not in made["spec"]
    assert validate_object(claim(storageClassName=""))["spec"]["storageClassName"] == ""  # no class: kept
    local = validate_object(volume(hostPath=None, local={"path": "/mnt/disk"}, nodeAffinity=NODE_AFFINITY))
    assert local["spec"]["local"] == {"path": "/mnt/disk"}


@pytest.mark.parametrize(("document", "field", "reason", "words"), [
    (storage_class(provisioner="kubernetes.io/no-provisioner"), "provisioner", "FieldValueInvalid",
     "not one of Berth's: berth.io/local, berth.io/shared"),
    (storage_class(parameters={"server": "store", "path": "/srv", "bogus": "1"}), "parameters",
     "FieldValueInvalid", "unknown parameter 'bogus'"),
    (storage_class(parameters={"path": "/srv"}), "parameters", "FieldValueInvalid", "'server' is required"),
    (storage_class(parameters={"server": "store", "path": "srv"}), "parameters", "FieldValueInvalid",
     "not an absolute path"),
    (storage_class(parameters={"server": "store", "path": "/srv", "protocol": "smb"}), "parameters",
     "FieldValueInvalid", "sshfs, nfs"),
    (storage_class(provisioner="berth.io/local", parameters={}), "volumeBindingMode", "FieldValueInvalid",
     "must be WaitForFirstConsumer"),
    (storage_class(allowVolumeExpansion=True), "allowVolumeExpansion", "FieldValueNotSupported", "expansion"),
    (storage_class(reclaimPolicy="Recycle"), "reclaimPolicy", "FieldValueInvalid", ""),
    (storage_class(spec={}), "spec", "FieldValueUnknown", ""),
    (volume(hostPath=None), "spec", "FieldValueInvalid", "exactly one of local, hostPath, nfs, sshfs"),
    (volume(nfs={"server": "10.0.0.9", "path": "/x"}), "spec", "FieldValueInvalid", "given: hostPath, nfs"),
    (volume(hostPath=None, local={"path": "/mnt"}), "spec", "FieldValueInvalid", "needs nodeAffinity"),
    (volume(hostPath={"path": "srv/v"}), "spec.hostPath.path", "FieldValueInvalid", "not an absolute path"),
    (volume(hostPath={"path": "/srv/../etc"}), "spec.hostPath.path", "FieldValueInvalid", "'..' component"),
    (volume(hostPath={"path": "/srv/\nv"}), "spec.hostPath.path", "FieldValueInvalid", "absolute path"),
    (volume(hostPath={"path": "/" + "x" * 5000}), "spec.hostPath.path", "FieldValueInvalid", ""),
    (volume(sshfs={"server": "Not A Node", "path": "/x"}, hostPath=None), "spec.sshfs.server",
     "FieldValueInvalid", ""),
    (volume(accessModes=[]), "spec.accessModes", "FieldValueInvalid", ""),
    (volume(accessModes=["ReadWriteOnce", "ReadWriteOnce"]), "spec.accessModes", "FieldValueInvalid",
     "twice"),
    (volume(accessModes=["ReadWriteSometimes"]), "spec.accessModes[0]", "FieldValueInvalid", ""),
    (volume(capacity={"storage": "0"}), "spec.capacity.storage", "FieldValueInvalid", "more than 0"),
    (volume(capacity={"storage": "lots"}), "spec.capacity.storage", "FieldValueInvalid", ""),
    (volume(volumeMode="Block"), "spec.volumeMode", "FieldValueNotSupported", "Filesystem"),
    (volume(persistentVolumeReclaimPolicy="Recycle"), "spec.persistentVolumeReclaimPolicy",
     "FieldValueInvalid", ""),
    (volume(claimRef={"name": "data"}), "spec.claimRef.namespace", "FieldValueRequired", ""),
    (volume(nodeAffinity={"required": {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "zone", "operator": "In"}]}]}}),
     "spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0]", "FieldValueInvalid",
     "needs values"),
    (volume(nodeAffinity={"required": {"nodeSelectorTerms": []}}),
     "spec.nodeAffinity.required.nodeSelectorTerms", "FieldValueInvalid", ""),
    (volume(mountOptions=["hard"]), "spec.mountOptions", "FieldValueNotSupported", ""),
    (volume(iscsi={}), "spec.iscsi", "FieldValueUnknown", ""),
    (claim(resources={"requests": {}}), "spec.resources.requests.storage", "FieldValueRequired", ""),
    (claim(resources={"requests": {"storage": "1Gi"}, "limits": {"storage": "2Gi"}}), "spec.resources.limits",
     "FieldValueUnknown", ""),
    (claim(selector={"matchLabels": {"a": "b"}}), "spec.selector", "FieldValueNotSupported", "volumeName"),
    (claim(dataSource={"kind": "PersistentVolumeClaim", "name": "x"}), "spec.dataSource",
     "FieldValueNotSupported", ""),
    (claim(storageClassName="Fast!"), "spec.storageClassName", "FieldValueInvalid", ""),
    (claim(accessModes=[]), "spec.accessModes", "FieldValueInvalid", ""),
    ({**claim(), "metadata": {"name": "data", "finalizers": ["example.com/mine"]}}, "metadata.finalizers",
     "FieldValueNotSupported", "example.com/mine"),
    ({**volume(), "metadata": {"name": "v", "namespace": "default"}}, "metadata.namespace", "Invalid",
     "cluster-scoped"),
])
def test_a_bad_field_is_refused_by_name(document: dict[str, Any], field: str, reason: str,
                                        words: str) -> None:
    err = refused(document)
    assert (err.field, err.reason) == (field, reason), err.message
    assert words in err.message


def test_the_protection_finalizer_read_back_is_accepted_and_left_to_the_store() -> None:
    sent = claim()
    sent["metadata"]["finalizers"] = ["kubernetes.io/pvc-protection"]
    assert "finalizers" not in validate_object(sent)["metadata"]
    assert refused({"kind": "Volume", "metadata": {"name": "v"}}).field == "kind"  # still no such kind


def test_status_subresources() -> None:
    assert validate_status(KINDS["PersistentVolume"], {"phase": "Released", "message": "m"}) == {
        "phase": "Released", "message": "m"}
    status = {"phase": "Bound", "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]}
    assert validate_status(KINDS["PersistentVolumeClaim"], status) == status
    with pytest.raises(ApiError) as caught:
        validate_status(KINDS["PersistentVolumeClaim"], {"phase": "Available"})
    assert caught.value.field == "status.phase"
    with pytest.raises(ApiError) as caught:
        validate_status(KINDS["StorageClass"], {})
    assert caught.value.status == 404


# --- the store's rules ------------------------------------------------------------------------------------

def stored(*documents: dict[str, Any]) -> ClusterState:
    state = ClusterState()
    for number, document in enumerate(documents):
        outcome, _ = state.apply(Create(validate_object(document), f"uid-{number}", "2026-01-01T00:00:00Z"))
        assert outcome.error is None, outcome.error
    return state


def replaced(state: ClusterState, obj: dict[str, Any]) -> ApiError | dict[str, Any]:
    outcome, _ = state.apply(Replace(obj))
    return outcome.error or outcome.objects[0]


def test_a_claims_spec_is_fixed_but_for_what_the_binder_sets_once() -> None:
    state = stored(claim())
    current = state.get("PersistentVolumeClaim", "default", "data")
    assert current is not None
    grown = copy.deepcopy(current)
    grown["spec"]["resources"]["requests"]["storage"] = "2Gi"
    err = replaced(state, grown)
    assert isinstance(err, ApiError) and (err.status, err.field) == (422, "spec.resources.requests.storage")
    bound = copy.deepcopy(current)
    bound["spec"].update(volumeName="v", storageClassName="fast")
    assert not isinstance(replaced(state, bound), ApiError)
    manifest = validate_object(claim())  # a replace of the manifest, which names neither: both kept
    kept = replaced(state, manifest)
    assert not isinstance(kept, ApiError)
    assert (kept["spec"]["volumeName"], kept["spec"]["storageClassName"]) == ("v", "fast")
    moved = validate_object(claim(volumeName="w"))
    err = replaced(state, moved)
    assert isinstance(err, ApiError) and (err.status, err.field) == (422, "spec.volumeName")


def test_a_volumes_source_and_a_classs_policies_are_fixed() -> None:
    state = stored(volume(), storage_class())
    moved = validate_object(volume(hostPath={"path": "/elsewhere"}))
    err = replaced(state, moved)
    assert isinstance(err, ApiError) and (err.status, err.field) == (422, "spec.hostPath.path")
    reserved = validate_object(volume(claimRef={"namespace": "default", "name": "data"},
                                      persistentVolumeReclaimPolicy="Delete"))
    assert not isinstance(replaced(state, reserved), ApiError)  # a claimRef and the policy may change
    moved = storage_class(parameters={"server": "other", "path": "/srv/volumes"})
    err = replaced(state, validate_object(moved))
    assert isinstance(err, ApiError) and (err.status, err.field) == (422, "parameters.server")
    err = replaced(state, validate_object(storage_class(reclaimPolicy="Retain")))
    assert isinstance(err, ApiError) and err.field == "reclaimPolicy"


def test_a_delete_marks_claims_and_volumes_with_their_finalizer() -> None:
    state = stored(volume(), claim())
    for kind, namespace, name, finalizer in (("PersistentVolume", "", "v", "kubernetes.io/pv-protection"),
                                             ("PersistentVolumeClaim", "default", "data",
                                              "kubernetes.io/pvc-protection")):
        obj = state.get(kind, namespace, name)
        assert obj is not None
        command = deletion(obj, "2026-01-02T00:00:00Z", grace_seconds=0)
        assert isinstance(command, MarkDeleted)
        outcome, _ = state.apply(command)
        meta = outcome.objects[0]["metadata"]
        assert (meta["deletionTimestamp"], meta["finalizers"]) == ("2026-01-02T00:00:00Z", [finalizer])
        relabelled = copy.deepcopy(outcome.objects[0])
        relabelled["metadata"]["labels"] = {"kept": "yes"}
        after = replaced(state, relabelled)
        assert not isinstance(after, ApiError) and after["metadata"]["finalizers"] == [finalizer]


@pytest.mark.parametrize(("role", "verb", "kind", "allowed"), [
    ("admin", "create", "PersistentVolume", True),
    ("operator", "create", "PersistentVolume", False),
    ("operator", "delete", "StorageClass", False),
    ("operator", "list", "StorageClass", True),
    ("operator", "create", "PersistentVolumeClaim", True),
    ("viewer", "get", "PersistentVolume", True),
    ("viewer", "create", "PersistentVolumeClaim", False),
    ("agent", "list", "PersistentVolumeClaim", False),
    ("agent", "get", "PersistentVolume", False),
])
def test_who_may_read_and_write_storage(role: str, verb: str, kind: str, allowed: bool) -> None:
    try:
        authorize(Principal("someone", role), verb, kind, "x")
    except ApiError as err:
        assert not allowed and err.status == 403
    else:
        assert allowed
    if role == "operator" and kind == "PersistentVolumeClaim":
        with pytest.raises(ApiError):
            authorize(Principal("someone", role), "update", kind, "x", subresource="status")


# --- the CLI ----------------------------------------------------------------------------------------------

NOW = datetime(2026, 1, 1, 0, 10, tzinfo=UTC)


def table(kind: str, *objects: dict[str, Any]) -> list[list[str]]:
    columns = columns_for(kind)
    return [[c.header for c in columns], *rows(list(objects), columns, NOW)]


def shown(obj: dict[str, Any], **meta: Any) -> dict[str, Any]:
    made = validate_object(obj)
    made["metadata"].update(creationTimestamp="2026-01-01T00:00:00Z", **meta)
    return made


def test_get_shows_kubectls_columns() -> None:
    pv = shown(volume(accessModes=["ReadWriteOnce", "ReadWriteMany", "ReadOnlyMany"], storageClassName="fast",
                      claimRef={"namespace": "default", "name": "data", "uid": "u"}))
    pv["status"] = {"phase": "Bound"}
    assert table("PersistentVolume", pv) == [
        ["NAME", "CAPACITY", "ACCESS MODES", "RECLAIM POLICY", "STATUS", "CLAIM", "STORAGECLASS", "AGE"],
        ["v", "5Gi", "RWO,ROX,RWX", "Retain", "Bound", "default/data", "fast", "10m"]]
    bound = shown(claim(volumeName="v", storageClassName="fast"))
    bound["status"] = {"phase": "Bound", "capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteOncePod"]}
    waiting = shown({**claim(), "metadata": {"name": "waiting"}}, deletionTimestamp="2026-01-01T00:09:00Z")
    assert table("PersistentVolumeClaim", bound, waiting) == [
        ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS MODES", "STORAGECLASS", "AGE"],
        ["data", "Bound", "v", "5Gi", "RWOP", "fast", "10m"],
        ["waiting", "Terminating", "", "", "", "", "10m"]]
    default = shown(storage_class(metadata={"name": "fast", "annotations": {
        "storageclass.kubernetes.io/is-default-class": "true"}}))
    local = shown(storage_class(metadata={"name": "local"}, provisioner="berth.io/local", parameters={},
                                volumeBindingMode="WaitForFirstConsumer"))
    assert table("StorageClass", default, local) == [
        ["NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE", "AGE"],
        ["fast (default)", "berth.io/shared", "Delete", "Immediate", "10m"],
        ["local", "berth.io/local", "Delete", "WaitForFirstConsumer", "10m"]]


def test_describe_pages() -> None:
    pv = shown(volume(hostPath=None, local={"path": "/mnt/disk"}, nodeAffinity=NODE_AFFINITY,
                      storageClassName="fast"), finalizers=["kubernetes.io/pv-protection"])
    pv["status"] = {"phase": "Failed", "message": "no provisioner"}
    page = describe_volume(pv, [], NOW)
    for line in ("Finalizers:           [kubernetes.io/pv-protection]", "StorageClass:         fast",
                 "Status:               Failed", "Access Modes:         RWO", "Capacity:             5Gi",
                 "    Term 0:        kubernetes.io/hostname in [h1]", "Message:              no provisioner",
                 "    Type:      LocalVolume (a persistent volume backed by local storage on a node)",
                 "    Path:      /mnt/disk", "Events:"):
        assert line in page.splitlines(), page
    data = shown(claim(volumeName="v"))
    data["status"] = {"phase": "Bound", "capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteOnce"]}
    page = describe_claim(data, [pod("web", "data"), pod("other", "else")], [], NOW)
    for line in ("Status:               Bound", "Volume:               v", "Capacity:             5Gi",
                 "Used By:              web"):
        assert line in page.splitlines(), page
    page = describe_class(shown(storage_class()), [], NOW)
    for line in ("IsDefaultClass:       No", "Provisioner:          berth.io/shared",
                 "Parameters:           server=store,path=/srv/volumes", "VolumeBindingMode:    Immediate"):
        assert line in page.splitlines(), page
