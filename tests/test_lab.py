"""The lab itself: hosts with their own address, sshd and podman; crash, partition, teardown."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from berth.cli.main import main as berth
from berth.lab import hosts as lab_hosts
from berth.lab.hosts import Lab

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")  # CI runs as root


def lab_name(tag: str) -> str:
    return f"{tag}{os.getpid() % 100000}"[:8]


def ssh(lab: Lab, host: str, command: str, known_hosts: Path | None = None,
        timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ssh", "-i", str(lab.ssh_key), "-o", f"UserKnownHostsFile={known_hosts or lab.known_hosts}",
         "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=3",
         f"root@{lab.address(host)}", command],
        capture_output=True, text=True, timeout=timeout)


def cli(*args: str) -> str:
    result = CliRunner().invoke(berth, ["lab", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def leftovers(lab: Lab) -> list[str]:
    found = []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    found += [line for line in netns.splitlines() if f"berth-{lab.name}-" in line]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    found += [line.split(":")[1] for line in links.splitlines()
              if lab.bridge in line or f"bv{lab.name}" in line]
    found += [str(lab.root)] if lab.root.exists() else []
    found += [line for line in Path("/proc/self/mounts").read_text().splitlines() if str(lab.root) in line]
    for pid in Path("/proc").iterdir():
        if pid.name.isdigit():
            try:
                cmdline = (pid / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if str(lab.root) in cmdline:
                found.append(f"process {pid.name}: {cmdline}")
    return found


@contextlib.contextmanager
def deployed_lab(tag: str, config_dir: Path, *up_args: str) -> Iterator[Lab]:
    """A lab deployed by Ansible (`berth lab up`, with masters and agents), named after `tag` and
    this process, its CLI config as `cli_config`; gone afterwards, with nothing left behind, as is
    what a crashed earlier run of the same name left."""
    name = lab_name(tag)
    lab_hosts.down(Lab(name=name))
    config = config_dir / "config.yaml"
    up = ["lab", "up", "--name", name, *up_args, "--config-out", str(config)]
    try:  # a lab that failed to come up is removed too: its masters and agents would run on
        result = CliRunner().invoke(berth, up, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        lab = Lab.load(name)
        lab.cli_config = config  # type: ignore[attr-defined]
        yield lab
    finally:
        lab_hosts.down(Lab.load(name))
        assert leftovers(Lab.load(name)) == []


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    name = lab_name("lt")
    lab_hosts.down(Lab(name=name))  # what a crashed earlier run left
    cli("up", "--name", name, "--hosts", "2", "--size", "h2=1cpu:2Gi", "--no-deploy")  # hosts alone
    try:
        yield Lab.load(name)
    finally:
        lab_hosts.down(Lab.load(name))


def test_hosts_answer_ssh_with_their_own_name_size_and_podman(lab: Lab) -> None:
    for host in ("h1", "h2"):
        result = ssh(lab, host, "hostname; podman run --rm localhost/busybox:lab echo container-ok")
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == [host, "container-ok"]
    meminfo = ssh(lab, "h2", "head -1 /proc/meminfo; cat /sys/devices/system/cpu/online").stdout
    assert "2097152 kB" in meminfo and meminfo.split()[-1] == "0"
    assert "running" in cli("status", "--name", lab.name)


def test_a_host_key_mismatch_is_refused(lab: Lab, tmp_path: Path) -> None:
    impostor = tmp_path / "impostor"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(impostor)], check=True)
    key = impostor.with_suffix(".pub").read_text().split()
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"{lab.address('h1')} {key[0]} {key[1]}\n")
    result = ssh(lab, "h1", "true", known_hosts=wrong)
    assert result.returncode != 0 and "verification failed" in result.stderr


def reaches(lab: Lab, source: str, target: str) -> bool:
    probe = (f"timeout 3 bash -c 'echo > /dev/tcp/{lab.address(target)}/22' 2>/dev/null "
             "&& echo open || echo closed")
    return ssh(lab, source, probe).stdout.strip() == "open"


def test_partition_and_heal(lab: Lab) -> None:
    assert reaches(lab, "h1", "h2")
    cli("partition", "--name", lab.name, "h1", "h2")
    try:
        assert not reaches(lab, "h1", "h2")
    finally:
        cli("heal", "--name", lab.name)
    assert reaches(lab, "h1", "h2")


def test_crash_kills_everything_and_start_brings_the_host_back(lab: Lab) -> None:
    assert ssh(lab, "h1", "podman run -d --name sleeper localhost/busybox:lab sleep 600").returncode == 0
    cli("crash", "--name", lab.name, "h1")
    assert ssh(lab, "h1", "true", timeout=30).returncode != 0
    assert "DOWN" in cli("status", "--name", lab.name)
    cli("start", "--name", lab.name, "h1")
    after = ssh(lab, "h1", "podman ps -a --format '{{.Names}} {{.Status}}'")
    assert after.returncode == 0 and after.stdout.startswith("sleeper Created")  # as after a reboot


def test_two_labs_side_by_side_and_down_leaves_nothing() -> None:
    other = Lab(name=lab_name("lo"), hosts=1)
    lab_hosts.down(other)
    lab_hosts.up(other)
    try:
        assert other.subnet != Lab.load(lab_name("lt")).subnet
        assert ssh(other, "h1", "hostname").stdout.strip() == "h1"
        lab_hosts.up(other)  # idempotent: already running, nothing changes
        assert ssh(other, "h1", "podman run -d localhost/busybox:lab sleep 600").returncode == 0
    finally:
        cli("down", "--name", other.name)
    assert leftovers(other) == []


def test_agent_facts_see_the_made_up_size(lab: Lab) -> None:
    probe = f"cd {Path(__file__).resolve().parent.parent} && {sys.executable} -c " \
            "'from agent.facts import capacity; print(capacity())'"
    result = ssh(lab, "h2", probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str({"cpu": 1000, "memory": 2 << 30})


def test_a_killed_child_not_yet_waited_for_counts_as_exited_and_is_reaped() -> None:
    """A host's launcher is this process's child: once killed it stays a zombie until waited for,
    and `down` used to wait 5 s on each such zombie (most of a lab module's teardown)."""
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert not lab_hosts._exited(child.pid)
        child.kill()
        lab_hosts._wait_gone([child.pid], timeout=10)
        assert lab_hosts._exited(child.pid)
        assert not Path(f"/proc/{child.pid}").exists()  # reaped, not left a zombie
    finally:
        child.kill()
        child.wait()
