"""The SSH pool and the podman driver against real lab hosts: pinned keys, pods, literal strings."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from berth.containers import container_name, sandbox_name
from berth.lab.hosts import IMAGE, Lab
from master.runtime.driver import DRIVERS
from master.runtime.env import ContainerEnv
from master.runtime.ssh import Host, HostKeyRefused, SshError, SshPool
from tests.harness import temporary_lab

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")  # CI runs as root
PODMAN = DRIVERS["podman"]


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with temporary_lab("rt", hosts=2) as made:
        yield made


@pytest.fixture
def pool(lab: Lab) -> Iterator[SshPool]:
    pool = SshPool(str(lab.ssh_key), str(lab.known_hosts), command_timeout=60)
    try:
        yield pool
    finally:
        pool.close()


def host(lab: Lab, name: str) -> Host:
    return Host(name, lab.address(name))


def test_one_pinned_connection_per_host_runs_many_commands(lab: Lab, pool: SshPool, tmp_path: Path) -> None:
    h1 = host(lab, "h1")
    assert pool.run(h1, ["hostname"]).text().strip() == "h1"
    client = pool._hosts[h1].client
    results = [pool.run(h1, ["sh", "-c", f"echo {i}; echo err{i} >&2; exit {i % 3}"]) for i in range(10)]
    assert [(r.exit_status, r.stdout, r.stderr) for r in results] == [
        (i % 3, f"{i}\n".encode(), f"err{i}\n".encode()) for i in range(10)]
    assert pool._hosts[h1].client is client  # the same connection all along
    assert pool.run(h1, ["cat"], stdin=b"piped").stdout == b"piped"
    with pytest.raises(SshError, match="did not finish in time"):
        pool.run(h1, ["sleep", "5"], timeout=0.5)
    # a wrong pinned key, and no pinned key at all, are refused
    impostor = tmp_path / "known_hosts"
    h2_key = (lab.host_dir("h2") / "ssh_host_ed25519_key.pub").read_text().split()
    impostor.write_text(f"{lab.address('h1')} {h2_key[0]} {h2_key[1]}\n")
    for known in (impostor, tmp_path / "empty"):
        known.touch()
        stranger = SshPool(str(lab.ssh_key), str(known))
        try:
            with pytest.raises(HostKeyRefused):
                stranger.run(h1, ["true"])
            with pytest.raises(SshError, match="next try"):  # backing off, not hammering
                stranger.run(h1, ["true"])
        finally:
            stranger.close()


def test_a_host_key_is_pinned_to_its_nodes_name_and_address_together(lab: Lab, tmp_path: Path) -> None:
    """A Node pointed at another host's address meets that host's key, pinned for the other name:
    refused, so an agent that moved its Node cannot make the runtime drive its neighbour."""
    pool = SshPool(str(lab.ssh_key), str(lab.known_hosts))
    try:
        assert pool.run(Host("h2", lab.address("h2")), ["hostname"]).text().strip() == "h2"
        with pytest.raises(HostKeyRefused, match="name and address"):
            pool.run(Host("h1", lab.address("h2")), ["true"])
    finally:
        pool.close()
    address_only = tmp_path / "address-only"  # the format before: keys pinned by address alone
    address_only.write_text("".join(line.split(",", 1)[1] + "\n"
                                    for line in lab.known_hosts.read_text().splitlines()))
    old = SshPool(str(lab.ssh_key), str(address_only))
    try:
        with pytest.raises(HostKeyRefused):
            old.run(Host("h2", lab.address("h2")), ["true"])
    finally:
        old.close()


def pod(name: str, uid: str, containers: list[dict]) -> dict:
    return {"kind": "Pod", "metadata": {"name": name, "namespace": "default", "uid": uid},
            "spec": {"containers": containers}}


def test_a_pods_containers_share_localhost_and_user_strings_stay_literal(lab: Lab, pool: SshPool) -> None:
    h2 = host(lab, "h2")
    marker = Path(f"/tmp/berth-pwned-{os.getpid()}")
    marker.unlink(missing_ok=True)
    web = {"name": "web", "image": IMAGE, "command": ["sh", "-c"],
           "args": ["echo hello-from-web > /tmp/index.html && exec httpd -f -p 8080 -h /tmp"],
           "resources": {"limits": {"memory": "64Mi", "cpu": "500m"}}}
    script = 'echo "$GREETING" "$1"; exec sleep 600'
    side = {"name": "side", "image": IMAGE, "command": ["sh", "-c", script, "sh"],
            "args": [f"; touch {marker}"]}
    obj = pod("duo", "feedface00000001", [web, side])
    try:
        assert pool.run(h2, PODMAN.create_sandbox(obj)).ok
        greeting = ContainerEnv({"GREETING": f"$(touch {marker})"})
        for container, env in ((web, ContainerEnv()), (side, greeting)):
            result = pool.run(h2, PODMAN.run_container(obj, container, env))
            assert result.ok, result.stderr
        request = ["sh", "-c", "printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc 127.0.0.1 8080"]
        deadline = time.monotonic() + 20
        answer = b""
        while time.monotonic() < deadline and b"hello-from-web" not in answer:
            answer = pool.run(h2, PODMAN.exec(container_name(obj, "side"), request)).stdout
            time.sleep(0.2)
        assert b"hello-from-web" in answer
        logs = pool.run(h2, PODMAN.logs(container_name(obj, "side"))).text()
        assert logs.strip() == f"$(touch {marker}) ; touch {marker}"
        assert not marker.exists()
        assert not pool.run(h2, ["test", "-e", str(marker)]).ok
        listed = PODMAN.parse_list(pool.run(h2, PODMAN.list_managed()).text())
        mine = {s.container for s in listed if s.pod_uid == "feedface00000001" and not s.sandbox}
        assert mine == {"web", "side"} and all(s.state == "running" for s in listed if s.container)
        memory = pool.run(h2, ["podman", "inspect", "--format", "{{.HostConfig.Memory}}",
                               container_name(obj, "web")]).text().strip()
        assert memory == str(64 * 2**20)
    finally:
        pool.run(h2, PODMAN.remove_sandbox(obj))
    assert not [s for s in PODMAN.parse_list(pool.run(h2, PODMAN.list_managed()).text())
                if s.pod_uid == "feedface00000001"]
    assert sandbox_name(obj) == "berth-default-duo-feedface"


def test_a_hostile_image_or_argument_never_becomes_a_podman_option(lab: Lab, pool: SshPool) -> None:
    """The attack of issue 9: image `-w/tmp` followed by args that podman would have read as
    `--privileged --pid host -v /:/host IMAGE chroot /host ...`. The API refuses such an image;
    here the driver gets it anyway, and real podman must take it for an image name."""
    h1 = host(lab, "h1")
    marker = Path(f"/tmp/berth-escaped-{os.getpid()}")
    marker.unlink(missing_ok=True)
    escape = {"name": "main", "image": "-w/tmp",
              "args": ["--privileged", "--pid", "host", "-v", "/:/host", IMAGE, "sh", "-c",
                       f"touch /host{marker}"]}
    entry = {"name": "main", "image": IMAGE, "command": ["--privileged"], "args": ["-v", "/:/host"]}
    obj = pod("escape", "feedface00000002", [escape])
    try:
        assert pool.run(h1, PODMAN.create_sandbox(obj)).ok
        result = pool.run(h1, PODMAN.run_container(obj, escape))
        assert not result.ok and b"invalid reference format" in result.stderr, result.stderr  # an image name
        as_entrypoint = pool.run(h1, PODMAN.run_container(obj, {**entry, "name": "second"}))
        mine = "label=berth.pod-uid=feedface00000002"
        privileged = pool.run(h1, ["podman", "ps", "--all", "--filter", mine,
                                   "--format", "{{.Names}} {{.Mounts}}"]).text()
        assert "/host" not in privileged, privileged
        if as_entrypoint.ok:  # "--privileged" was the entrypoint: a program that does not exist
            inspect = pool.run(h1, ["podman", "inspect", "--", container_name(obj, "second")]).text()
            assert '"Privileged": false' in inspect
        assert not marker.exists()
        assert not pool.run(h1, ["test", "-e", str(marker)]).ok
    finally:
        pool.run(h1, PODMAN.remove_sandbox(obj))
