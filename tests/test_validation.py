"""Validation of documents, quantities, selectors and merge patches (no server)."""

from __future__ import annotations

import re
import time

import pytest

from berth.quantity import cpu_millis, memory_bytes
from master.errors import ApiError
from master.objects.fields import ABSOLUTE_PATH
from master.objects.merge_patch import merge_patch
from master.objects.selectors import (
    FIELD_SELECTOR_PATTERN,
    LABEL_SELECTOR_PATTERN,
    parse_field_selector,
    parse_selector,
)
from master.objects.validate import validate_object
from tests.harness import pod


@pytest.mark.parametrize(("text", "millis"), [("250m", 250), ("1.5", 1500), ("2", 2000), (1, 1000)])
def test_cpu_quantities(text: str, millis: int) -> None:
    assert cpu_millis(text) == millis


@pytest.mark.parametrize(("text", "size"), [("128Mi", 128 << 20), ("1Gi", 1 << 30), ("500M", 500 * 10**6),
                                           ("1024", 1024), ("1.5Gi", 3 << 29)])
def test_memory_quantities(text: str, size: int) -> None:
    assert memory_bytes(text) == size


@pytest.mark.parametrize("bad", ["-1", "1.5m", "abc", "1Qi", ""])
def test_bad_quantities(bad: str) -> None:
    with pytest.raises(ValueError):
        memory_bytes(bad) if "i" in bad else cpu_millis(bad)


def error_of(document: dict) -> ApiError:
    with pytest.raises(ApiError) as caught:
        validate_object(document)
    assert caught.value.status == 400
    return caught.value


def test_defaults_are_filled_in() -> None:
    obj = validate_object(pod("web"))
    assert obj["metadata"]["namespace"] == "default"
    assert obj["spec"]["restartPolicy"] == "Always"


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda d: d["metadata"].update(name="Bad_Name"), "metadata.name"),
    (lambda d: d["metadata"].update(name="x; rm -rf /"), "metadata.name"),
    (lambda d: d["metadata"].update(labels={"app": "bad value"}), "metadata.labels.app"),
    (lambda d: d["metadata"].update(labels={"-bad": "x"}), "metadata.labels.-bad"),
    (lambda d: d["spec"]["containers"][0].update(image="UPPER/Case"), "spec.containers[0].image"),
    (lambda d: d["spec"]["containers"][0].update(ports=[{"containerPort": 70000}]),
     "spec.containers[0].ports[0].containerPort"),
    (lambda d: d["spec"]["containers"][0].update(env=[{"name": "1X", "value": "v"}]),
     "spec.containers[0].env[0].name"),
    (lambda d: d["spec"]["containers"][0]["resources"]["requests"].update(cpu="lots"),
     "spec.containers[0].resources.requests.cpu"),
    (lambda d: d["spec"]["containers"][0]["resources"]["requests"].update(memory="12Qi"),
     "spec.containers[0].resources.requests.memory"),
    (lambda d: d["spec"].update(replicas=3), "spec.replicas"),
    (lambda d: d.pop("spec"), "spec"),
    (lambda d: d.update(kind="Gadget"), "kind"),
])
def test_each_bad_field_is_named(mutate, field: str) -> None:
    document = pod("web")
    mutate(document)
    assert error_of(document).field == field


def test_unknown_field_is_rejected_with_its_reason() -> None:
    document = pod("web")
    document["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    err = error_of(document)
    assert err.reason == "FieldValueUnknown"
    assert err.field == "spec.containers[0].imagePullPolicyy"


def test_cluster_scoped_kind_takes_no_namespace() -> None:
    node = {"kind": "Node", "metadata": {"name": "h1", "namespace": "default"},
            "spec": {"address": "10.0.0.1"}}
    assert error_of(node).field == "metadata.namespace"


def test_deployment_selector_must_match_template() -> None:
    deployment = {"kind": "Deployment", "metadata": {"name": "web"}, "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "other"}}, "spec": pod("x")["spec"]}}}
    assert "selector" in error_of(deployment).message


def test_label_selectors() -> None:
    match = parse_selector("app=web,tier!=db,env in (a,b),gpu,!spot")
    assert match({"app": "web", "tier": "fe", "env": "a", "gpu": ""})
    assert not match({"app": "web", "tier": "db", "env": "a", "gpu": ""})
    assert not match({"app": "web", "env": "c", "gpu": ""})
    assert not match({"app": "web", "env": "a", "gpu": "", "spot": "1"})
    with pytest.raises(ApiError):
        parse_selector("a=b=c")


def published(pattern: str, text: str) -> bool:
    """As a JSON Schema validator reads `pattern` (ECMA 262: `$` is the very end, not before a newline)."""
    return re.search(pattern.removesuffix("$") + r"\Z", text) is not None


@pytest.mark.parametrize(("selector", "read"), [
    ("app=web", True), (" app == web , tier!=db", True), ("env in (a, b),env notin ()", True),
    ("gpu,!spot", True), ("a,,b", True), ("", True), ("app=", True), ("x\ty", False),
    ("a=b=c", False), ("!a=b", False), ("a in (b", False), ("a in ((b))", False), ("a in (b)\n", False),
    (",".join("a" * 32), True), (",".join("a" * 33), False),
    (f"a in ({','.join('v' * 64)})", True), (f"a in ({','.join('v' * 65)})", False),
])
def test_the_label_selector_grammar_is_the_published_pattern(selector: str, read: bool) -> None:
    """What the parser reads is what the OpenAPI document's pattern allows, in Python's engine as in
    a client's (bench.fuzz generates from the pattern): no other selector is read."""
    assert published(LABEL_SELECTOR_PATTERN, selector) == read
    if read:
        parse_selector(selector)
    else:
        with pytest.raises(ApiError) as refused:
            parse_selector(selector)
        assert refused.value.status == 400 and refused.value.field == "labelSelector"


@pytest.mark.parametrize(("selector", "read"), [
    ("metadata.name=web", True), ("spec.nodeName==h1, status.phase != Running", True), ("  ", True),
    ("metadata.labels=x", False), ("metadata.name", False), ("metadata.name=a b", False),
    (",".join(["metadata.name=a"] * 33), False),
])
def test_the_field_selector_grammar_is_the_published_pattern(selector: str, read: bool) -> None:
    assert published(FIELD_SELECTOR_PATTERN, selector) == read
    if read:
        parse_field_selector(selector)
    else:
        with pytest.raises(ApiError):
            parse_field_selector(selector)


def test_merge_patch() -> None:
    assert merge_patch({"a": 1, "b": {"c": 2, "d": 3}}, {"b": {"c": None, "e": 4}, "f": 5}) == {
        "a": 1, "b": {"d": 3, "e": 4}, "f": 5}


@pytest.mark.parametrize("image", ["-w/tmp", "--privileged", "a/-b", "x.-y/z", "-", "reg:5000/-a",
                                   "dir:1/foo", "oci-archive:1/x", "Tarball:1/a", "docker-archive:12/x"])
def test_an_image_reference_starts_with_an_alphanumeric_in_every_part(image: str) -> None:
    document = pod("web")
    document["spec"]["containers"][0]["image"] = image
    assert error_of(document).field == "spec.containers[0].image"


@pytest.mark.parametrize("image", ["busybox", "localhost/busybox:lab", "docker.io/library/nginx:1.25",
                                   "reg.example.com:5000/team/app__x:v1.2-rc", f"app@sha256:{'a' * 64}"])
def test_image_references_as_registries_write_them(image: str) -> None:
    document = pod("web")
    document["spec"]["containers"][0]["image"] = image
    assert validate_object(document)["spec"]["containers"][0]["image"] == image


@pytest.mark.parametrize("bad", ["9" * 33, "9" * 900_000, "2000000", "1e3", "0.0001"])
def test_cpu_quantities_are_short_and_bounded(bad: str) -> None:
    with pytest.raises(ValueError):
        cpu_millis(bad)


@pytest.mark.parametrize("bad", ["9" * 33, "5Ei", "9" * 4300, "1.0000000001"])
def test_memory_quantities_are_short_and_bounded(bad: str) -> None:
    with pytest.raises(ValueError):
        memory_bytes(bad)


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda c: c.update(livenessProbe={"exec": {"command": ["true"]}, "periodSeconds": 10**6}),
     "spec.containers[0].livenessProbe.periodSeconds"),
    (lambda c: c.update(livenessProbe={"httpGet": {"port": 80, "path": "no-slash"}}),
     "spec.containers[0].livenessProbe.httpGet.path"),
    (lambda c: c.update(livenessProbe={"httpGet": {"port": 80, "path": "/a b"}}),
     "spec.containers[0].livenessProbe.httpGet.path"),
    (lambda c: c.update(args=["x"] * 1025), "spec.containers[0].args"),
])
def test_every_number_and_list_a_pod_names_is_bounded(mutate, field: str) -> None:
    document = pod("web")
    mutate(document["spec"]["containers"][0])
    assert error_of(document).field == field


def test_node_addresses_and_taints_are_checked() -> None:
    node = {"kind": "Node", "metadata": {"name": "h1"}, "spec": {"address": "-oProxyCommand=x"}}
    assert error_of(node).field == "spec.address"
    node["spec"] = {"address": "10.0.0.1", "taints": [{"key": "bad key", "effect": "NoSchedule"}]}
    assert error_of(node).field == "spec.taints[0].key"
    node["spec"] = {"address": "host-1.example.com", "taints": []}
    assert validate_object(node)["spec"]["address"] == "host-1.example.com"


def test_a_status_sent_with_a_spec_write_is_ignored() -> None:
    document = pod("web")
    document["status"] = {"podIP": "10.0.0.66", "anything": ["at", "all"]}
    assert "status" not in validate_object(document)


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda spec: spec.update(volumes=[{"name": "data", "emptyDir": {"sizeLimit": "1Gi"}}]),
     "spec.volumes[0].emptyDir"),
])
def test_a_field_nothing_acts_on_yet_is_refused_by_name(mutate, field: str) -> None:
    document = pod("web")
    mutate(document["spec"])
    err = error_of(document)
    assert (err.field, err.reason) == (field, "FieldValueNotSupported") and "not supported yet" in err.message
    empty = pod("web")
    empty["spec"]["volumes"] = []  # as tools emit it: nothing asked for, nothing stored
    empty["spec"]["containers"][0]["volumeMounts"] = []
    assert "volumes" not in validate_object(empty)["spec"]
    assert "volumeMounts" not in validate_object(empty)["spec"]["containers"][0]
    volume = {"kind": "Volume", "metadata": {"name": "v"}, "spec": {"hostPath": {"path": "/x"}}}
    assert (error_of(volume).field, error_of(volume).reason) == ("kind", "FieldValueNotSupported")
    secret = {"kind": "Secret", "metadata": {"name": "s"}, "type": "kubernetes.io/tls"}
    assert error_of(secret).field == "type"


def test_init_containers_take_the_container_schema_without_probes_and_share_the_names() -> None:
    document = pod("web")
    document["spec"]["initContainers"] = [
        {"name": "setup", "image": "busybox", "command": ["sh", "-c", "true"], "imagePullPolicy": "Never",
         "env": [{"name": "A", "value": "1"}], "ports": [{"containerPort": 80}],
         "resources": {"requests": {"cpu": "1"}}}]
    spec = validate_object(document)["spec"]
    assert list(spec)[:2] == ["initContainers", "containers"]  # Kubernetes' order
    assert spec["initContainers"][0]["resources"]["requests"] == {"cpu": "1"}
    empty = pod("web")
    empty["spec"]["initContainers"] = []  # nothing asked for: nothing stored, the same pod
    assert "initContainers" not in validate_object(empty)["spec"]
    for probe in ("livenessProbe", "readinessProbe"):
        probed = pod("web")
        probed["spec"]["initContainers"] = [{"name": "setup", "image": "busybox",
                                             probe: {"exec": {"command": ["true"]}}}]
        err = error_of(probed)
        assert (err.field, err.reason) == (f"spec.initContainers[0].{probe}", "FieldValueForbidden")
        assert "init container" in err.message
    twice = pod("web")
    twice["spec"]["initContainers"] = [{"name": "a", "image": "busybox"}, {"name": "a", "image": "busybox"}]
    assert error_of(twice).field == "spec.initContainers" and "duplicate" in error_of(twice).message
    shared = pod("web")
    shared["spec"]["initContainers"] = [{"name": shared["spec"]["containers"][0]["name"], "image": "busybox"}]
    err = error_of(shared)
    assert err.field == "spec.containers" and "containers[0].name" in err.message and "unique" in err.message
    for mutate, field in ((lambda c: c.update(image="-w/tmp"), "image"),
                          (lambda c: c.update(restartPolicy="Always"), "restartPolicy"),  # no sidecars
                          (lambda c: c.update(args=["x"] * 1025), "args")):
        bad = pod("web")
        bad["spec"]["initContainers"] = [{"name": "setup", "image": "busybox"}]
        mutate(bad["spec"]["initContainers"][0])
        assert error_of(bad).field == f"spec.initContainers[0].{field}"
    many = pod("web")
    many["spec"]["initContainers"] = [{"name": f"i{n}", "image": "busybox"} for n in range(65)]
    assert error_of(many).field == "spec.initContainers"


def test_secret_data_is_base64_and_string_data_is_folded_into_it() -> None:
    """As in Kubernetes: a user's base64 `data` once reached the container still encoded, and
    `stringData` was refused."""
    folded = validate_object({"apiVersion": "berth/v1", "kind": "Secret", "metadata": {"name": "s"},
                              "data": {"a": "YQ==", "b": "Yg=="}, "stringData": {"b": "plain", "c": "ç"}})
    assert folded["data"] == {"a": "YQ==", "b": "cGxhaW4=", "c": "w6c="} and "stringData" not in folded
    with pytest.raises(ApiError) as refused:
        validate_object({"apiVersion": "berth/v1", "kind": "Secret", "metadata": {"name": "s"},
                         "data": {"token": "not base64!"}})
    assert refused.value.status == 400 and refused.value.field == "data.token"
    assert "stringData" in refused.value.message


@pytest.mark.parametrize(("operations", "expected"), [
    ([{"op": "add", "path": "/a/c", "value": 3}], {"a": {"b": 1, "c": 3}, "l": [1, 2]}),
    ([{"op": "add", "path": "/l/-", "value": 9}], {"a": {"b": 1}, "l": [1, 2, 9]}),
    ([{"op": "add", "path": "/l/0", "value": 0}], {"a": {"b": 1}, "l": [0, 1, 2]}),
    ([{"op": "remove", "path": "/l/1"}], {"a": {"b": 1}, "l": [1]}),
    ([{"op": "replace", "path": "/a/b", "value": "x"}], {"a": {"b": "x"}, "l": [1, 2]}),
    ([{"op": "move", "from": "/a/b", "path": "/m"}], {"a": {}, "l": [1, 2], "m": 1}),
    ([{"op": "copy", "from": "/l", "path": "/k"}], {"a": {"b": 1}, "l": [1, 2], "k": [1, 2]}),
    ([{"op": "test", "path": "/a/b", "value": 1}], {"a": {"b": 1}, "l": [1, 2]}),
])
def test_json_patch_operations(operations: list, expected: dict) -> None:
    from master.objects.json_patch import json_patch

    document = {"a": {"b": 1}, "l": [1, 2]}
    assert json_patch(document, operations) == expected
    assert document == {"a": {"b": 1}, "l": [1, 2]}  # the input is left as it was


@pytest.mark.parametrize("operations", [
    [{"op": "test", "path": "/a/b", "value": 2}], [{"op": "remove", "path": "/nope"}],
    [{"op": "add", "path": "/l/7", "value": 1}], [{"op": "replace", "path": "/a/b"}],
    [{"op": "frob", "path": "/a"}], [{"op": "add", "path": "a", "value": 1}], ["add"], {"op": "add"},
    [{"op": "remove", "path": ""}],
])
def test_a_bad_json_patch_is_refused_naming_the_operation(operations: object) -> None:
    from master.objects.json_patch import json_patch

    with pytest.raises(ApiError) as refused:
        json_patch({"a": {"b": 1}, "l": [1, 2]}, operations)
    assert refused.value.status in (400, 422) and refused.value.field in ("body", "body[0]")


def test_workload_fields_kubernetes_refuses_are_refused() -> None:
    base = {"apiVersion": "berth/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "i"}]}}}}
    too_many = {**base, "spec": {**base["spec"], "strategy": {"rollingUpdate": {"maxUnavailable": "150%"}}}}
    with pytest.raises(ApiError) as err:
        validate_object(too_many)
    assert err.value.field == "spec.strategy.rollingUpdate.maxUnavailable"
    validate_object({**base, "spec": {**base["spec"], "strategy": {"rollingUpdate": {"maxSurge": "150%"}}}})
    two = [{"kind": "ReplicaSet", "name": "a", "uid": "u1"}, {"kind": "ReplicaSet", "name": "b", "uid": "u2"}]
    with pytest.raises(ApiError) as err:
        validate_object({**pod("p"), "metadata": {"name": "p", "ownerReferences": two}})
    assert err.value.field == "metadata.ownerReferences"
    deadline = {**base, "spec": {**base["spec"], "minReadySeconds": 30, "progressDeadlineSeconds": 30}}
    with pytest.raises(ApiError) as err:
        validate_object(deadline)


def test_a_refused_absolute_path_costs_linear_time() -> None:
    """The former pattern `^/(C+/?)*$` backtracked exponentially: "/" with 24 letters and a ":" took
    1.4 s, a 1,000-character path would have held a master's thread (and the GIL) for ever."""
    started = time.monotonic()
    for length in (24, 1000):
        assert not re.fullmatch(ABSOLUTE_PATH, "/" + "a" * length + ":")
    assert time.monotonic() - started < 0.1
    for path, allowed in (("/", True), ("/a/b/", True), ("/a//b", False), ("//", False), ("/a:b", False)):
        assert bool(re.fullmatch(ABSOLUTE_PATH, path)) == allowed
