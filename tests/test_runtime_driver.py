"""The podman/docker command lines: argument lists, user strings kept whole, labels on everything."""

from __future__ import annotations

import base64
import json
import shlex

import pytest

from berth.containers import POD_UID, container_name, sandbox_name
from master.runtime.driver import DRIVERS
from master.runtime.env import ContainerEnv, EnvError, resolve_env
from master.runtime.nodes import node_driver


def pod() -> dict:
    return {"kind": "Pod", "metadata": {"name": "web", "namespace": "default", "uid": "0123456789abcdef"},
            "spec": {"containers": [{
                "name": "main", "image": "localhost/busybox:lab", "command": ["sh", "-c"],
                "args": ["echo $(touch /tmp/pwned); echo done"], "workingDir": "/tmp",
                "ports": [{"containerPort": 80, "hostPort": 8080, "protocol": "TCP"}],
                "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "250m", "memory": "64Mi"}}}]}}


def test_podman_runs_a_pod_container_with_limits_ports_labels_and_literal_strings() -> None:
    driver = DRIVERS["podman"]
    obj = pod()
    env = ContainerEnv({"GREETING": "; touch /tmp/pwned", "EMPTY": ""}, {"TOKEN": "hunter2"})
    sandbox = driver.create_sandbox(obj)
    assert sandbox[:5] == ["podman", "pod", "create", "--name", "berth-default-web-01234567"]
    assert "-p" in sandbox and "8080:80/tcp" in sandbox and f"{POD_UID}=0123456789abcdef" in sandbox
    run = driver.run_container(obj, obj["spec"]["containers"][0], env)
    assert run[run.index("--pod") + 1] == sandbox_name(obj)
    assert run[run.index("--memory") + 1] == str(64 * 2**20) and run[run.index("--cpus") + 1] == "0.25"
    assert "--entrypoint=sh" in run and "--workdir=/tmp" in run
    image = run.index("localhost/busybox:lab")
    assert run[image - 1] == "--" and run[image + 1:] == ["-c", "echo $(touch /tmp/pwned); echo done"]
    assert "--env=GREETING=; touch /tmp/pwned" in run and "--env=EMPTY=" in run
    assert "--env-file=/dev/stdin" in run and not [a for a in run if "hunter2" in a]  # a secret: stdin only
    assert env.env_file() == b"TOKEN=hunter2\n"
    # over SSH the list is joined with shlex: the remote shell splits it back into the same words
    assert shlex.split(shlex.join(run)) == run
    assert container_name(obj, "main") == "berth-default-web-01234567-main"


def test_docker_joins_the_sandbox_network_and_parses_its_listing() -> None:
    driver = DRIVERS["docker"]
    obj = pod()
    run = driver.run_container(obj, obj["spec"]["containers"][0])
    assert run[run.index("--network") + 1] == f"container:{sandbox_name(obj)}"
    labels = {POD_UID: "u1", "berth.container": "main"}
    inspected = json.dumps([{"Id": "abc", "Name": "/x", "Config": {"Labels": labels},
                             "State": {"Status": "exited", "ExitCode": 137,
                                       "StartedAt": "2026-11-26T21:09:57.277214024Z",
                                       "FinishedAt": "0001-01-01T00:00:00Z"}}])
    [state] = driver.parse_list(inspected)
    assert (state.pod_uid, state.container, state.state, state.exit_code) == ("u1", "main", "exited", 137)
    assert (state.name, state.started_at, state.finished_at) == ("x", "1795727397.277214", "0")
    assert driver.parse_list("") == []  # nothing listed: xargs ran no inspect
    assert driver.list_managed()[:2] == ["sh", "-c"]  # a fixed script: nothing of a user's in it


@pytest.mark.parametrize("runtime", ["podman", "docker"])
def test_a_node_with_a_pod_cidr_puts_its_sandboxes_on_the_pod_network(runtime: str) -> None:
    plain = node_driver({"spec": {"address": "10.0.0.1", "runtime": runtime}})
    networked = node_driver({"spec": {"address": "10.0.0.1", "runtime": runtime, "podCIDR": "10.244.1.0/24"}})
    assert not [a for a in plain.create_sandbox(pod()) if a.startswith("--network")]
    sandbox = networked.create_sandbox(pod())
    assert "--network=berth" in sandbox and sandbox.index("--network=berth") < sandbox.index("--label")
    assert "--dns=10.244.1.1" in sandbox and "--dns-option=ndots:5" in sandbox
    assert [a.split("=", 1)[1] for a in sandbox if a.startswith("--dns-search=")] == [
        "default.svc.cluster.local", "svc.cluster.local", "cluster.local"]


def test_podman_listing_is_parsed() -> None:
    listing = json.dumps([{"Id": "c1", "Names": ["n"], "Labels": {POD_UID: "u1", "berth.sandbox": "true"},
                           "State": "running", "ExitCode": 0, "StartedAt": 1, "ExitedAt": 0}])
    [state] = DRIVERS["podman"].parse_list(listing)
    assert state.sandbox and state.state == "running" and state.pod_uid == "u1"


HOSTILE = "-w/tmp"  # what a user string could be if validation ever let one through


def test_no_user_string_can_be_read_as_an_option() -> None:
    """Each value a user chose is joined to its option, and `--` comes before every positional:
    podman and docker then read a hostile image, command or argument as what it is."""
    obj = pod()
    container = {**obj["spec"]["containers"][0], "image": HOSTILE, "command": [HOSTILE, "--privileged"],
                 "args": ["--pid", "host", "-v", "/:/host"], "workingDir": HOSTILE}
    for name, driver in DRIVERS.items():
        run = driver.run_container(obj, container, ContainerEnv({"A": HOSTILE}))
        end = run.index("--")
        assert run[end + 1:] == [HOSTILE, "--privileged", "--pid", "host", "-v", "/:/host"], name
        assert f"--entrypoint={HOSTILE}" in run[:end] and f"--env=A={HOSTILE}" in run[:end]
        assert HOSTILE not in run[:end], name  # never a word of its own before the end of options
        execute = driver.exec("berth-x", [HOSTILE, "--privileged"])
        assert execute[execute.index("--") + 1:] == ["berth-x", HOSTILE, "--privileged"]
        for argv in (driver.logs("berth-x", True, 5), driver.remove("berth-x"), driver.start("berth-x"),
                     driver.restart("berth-x", 3), driver.remove_sandbox(obj),
                     driver.start_sandbox(obj), driver.stop_sandbox(obj, 3), driver.sandbox_ip(obj),
                     driver.container_ip("berth-x"), driver.image_present("berth-x"), driver.pull("berth-x")):
            assert "--" in argv, argv
            assert all(not word.startswith("berth-") for word in argv[:argv.index("--")]), argv


def test_secret_values_go_to_the_env_file_and_a_later_variable_wins() -> None:
    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    stored = {("Secret", "db"): {"data": {"password": b64("s3 cr=et "), "pem": b64("-----BEGIN\nKEY"),
                                          "raw": "not base64!"}},
              ("ConfigMap", "cfg"): {"data": {"mode": "fast"}}}

    def lookup(kind: str, _namespace: str, name: str) -> dict | None:
        return stored.get((kind, name))

    def ref(kind: str, name: str, key: str) -> dict:
        return {kind: {"name": name, "key": key}}

    container = {"env": [
        {"name": "PASSWORD", "valueFrom": ref("secretKeyRef", "db", "password")},
        {"name": "MODE", "valueFrom": ref("configMapKeyRef", "cfg", "mode")},
        {"name": "LEVEL", "valueFrom": ref("secretKeyRef", "db", "password")},
        {"name": "LEVEL", "value": "3"},  # the later definition wins, as in Kubernetes
    ]}
    env = resolve_env(container, "default", lookup)
    assert env.plain == {"MODE": "fast", "LEVEL": "3"} and env.secret == {"PASSWORD": "s3 cr=et "}
    assert env.env_file() == b"PASSWORD=s3 cr=et \n"  # podman and docker keep a value as written
    with pytest.raises(EnvError, match="line break"):  # an env file has one line per variable
        pem = {"env": [{"name": "PEM", "valueFrom": ref("secretKeyRef", "db", "pem")}]}
        resolve_env(pem, "default", lookup)
    with pytest.raises(EnvError, match="not base64"):
        raw = {"env": [{"name": "RAW", "valueFrom": ref("secretKeyRef", "db", "raw")}]}
        resolve_env(raw, "default", lookup)


def test_names_stay_within_bounds_however_long_the_namespace_and_name() -> None:
    from berth.containers import MAX_SANDBOX_NAME

    long = {"kind": "Pod", "metadata": {"name": "n" * 63, "namespace": "s" * 63, "uid": "0123456789abcdef"},
            "spec": {"containers": [{"name": "c" * 63, "image": "busybox"}]}}
    assert len(sandbox_name(long)) == MAX_SANDBOX_NAME and sandbox_name(long).endswith("-01234567")
    assert len(container_name(long, "c" * 63)) == MAX_SANDBOX_NAME + 64
    assert sandbox_name(pod()) == "berth-default-web-01234567"  # short names as they always were
    for driver in DRIVERS.values():
        assert f"--hostname={'n' * 63}" in driver.create_sandbox(long)


def test_a_run_never_pulls_the_image_is_looked_at_and_pulled_by_its_own_commands() -> None:
    """A failed pull is told apart from a failed run by the step (executor._ensure_image): the run
    itself never pulls, whatever the policy, and the look and the pull take the image after `--`."""
    obj = pod()
    for policy in ("Always", "IfNotPresent", "Never", None):
        for driver in DRIVERS.values():
            argv = driver.run_container(obj, {**obj["spec"]["containers"][0], "imagePullPolicy": policy})
            assert [a for a in argv if a.startswith("--pull")] == ["--pull=never"]
            assert argv.index("--pull=never") < argv.index("--")
    assert DRIVERS["podman"].image_present(HOSTILE) == ["podman", "image", "inspect", "--format", "{{.Id}}",
                                                        "--", HOSTILE]
    assert DRIVERS["docker"].pull(HOSTILE) == ["docker", "pull", "--quiet", "--", HOSTILE]


def test_an_init_container_runs_and_goes_with_its_pod_but_publishes_no_port() -> None:
    obj = pod()
    obj["spec"]["initContainers"] = [{"name": "setup", "image": "localhost/busybox:lab",
                                      "ports": [{"containerPort": 81, "hostPort": 8081}]}]
    for driver in DRIVERS.values():
        run = driver.run_container(obj, obj["spec"]["initContainers"][0])
        assert run[run.index("--name") + 1] == container_name(obj, "setup")
        assert "berth.container=setup" in run
        assert "8081:81/tcp" not in driver.create_sandbox(obj)
    docker = DRIVERS["docker"]  # docker names a pod's containers one by one: the init one among them
    assert container_name(obj, "setup") in docker.remove_sandbox(obj)
    assert container_name(obj, "setup") in docker.stop_sandbox(obj, 3)
