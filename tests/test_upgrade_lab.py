"""Rolling upgrade in the lab (issue 19): from the previous release's wheel to this checkout's with
ansible/upgrade.yml, while a writer writes through the CLI's client and a Deployment's pods run.

Here, unlike the other lab tests, each host runs an installed wheel from a venv of its own (as on
real hosts), not the checkout: the previous release's, then this one's. The venvs take their
dependencies from the test's own venv (a `.pth`), so installing needs no package index.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import requests

from berth.client import Client
from berth.errors import ApiError, BerthError
from berth.lab import deploy
from berth.lab import hosts as lab_hosts
from berth.lab.hosts import Lab
from berth.version import release
from tests.harness import wait_until
from tests.test_lab import lab_name, leftovers

# a lab deployed, then upgraded one host at a time: minutes, many on a loaded machine
pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"), pytest.mark.timeout(1800)]
ROOT = Path(__file__).resolve().parent.parent
SERVICE_PATHS = ["master", "agent", "berth", "pyproject.toml"]  # what the services run
# each host's own venv, as bare metal's berth_venv; the services run what is installed in it
INSTALLED = {"berth_install_project": True, "berth_venv": "{{ berth_state_dir }}/venv",
             "berth_lab_pythonpath": ""}
DEPLOYMENT = {
    "apiVersion": "berth/v1", "kind": "Deployment", "metadata": {"name": "up-web"},
    "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "up-web"}},
             "template": {"metadata": {"labels": {"app": "up-web"}},
                          "spec": {"terminationGracePeriodSeconds": 1,
                                   "containers": [{"name": "main", "image": "localhost/busybox:lab",
                                                   "command": ["sleep", "3600"],
                                                   "resources": {"requests": {"cpu": "20m",
                                                                              "memory": "16Mi"}}}]}}},
}


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True,
                          timeout=60).stdout.strip()


def previous_commit() -> str:
    """The parent of the newest commit that changed what the services run: the release before this
    one (BERTH_UPGRADE_FROM names another)."""
    return os.environ.get("BERTH_UPGRADE_FROM") or git("rev-parse", git(
        "log", "-1", "--format=%H", "--", *SERVICE_PATHS) + "^")


def stops_gracefully(commit: str) -> bool:
    """Whether that release's masters hand leadership over and drain what is unread when they stop
    (docs/architecture.md, Rolling upgrade): its tree has the tickets that came with them."""
    return subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", f"{commit}:master/store/tickets.py"],
                          capture_output=True, timeout=60).returncode == 0


def build_wheel(source: Path, out: Path) -> Path:
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(out), str(source)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    return next(out.glob("berth-*.whl"))


def previous_wheel(commit: str, work: Path) -> Path:
    """The commit's tree (git archive), its version put below this one's when they are equal, so
    the two wheels differ by version as two releases do."""
    source = work / "previous"
    source.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", commit],
                             capture_output=True, check=True, timeout=120).stdout
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True, timeout=120)
    pyproject = source / "pyproject.toml"
    text = pyproject.read_text()
    old = re.search(r'^version = "([^"]+)"', text, re.M)
    assert old is not None
    if old.group(1) == release():
        text = text.replace(old.group(0), f'version = "{release()}.dev0"')
        pyproject.write_text(text)
    return build_wheel(source, work / "previous-dist")


def make_venvs(lab: Lab) -> None:
    """Each host's venv, made before the playbook so that its dependencies are this venv's: no pip of
    its own (the common role's pip module runs `pip3`, here this venv's pip)."""
    for host in lab.host_names():
        venv = deploy.state_dir(lab, host) / "venv"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
        site = next((venv / "lib").glob("python*/site-packages"))
        (site / "lab-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        pip = venv / "bin" / "pip3"
        pip.write_text('#!/bin/sh\nexec "$(dirname "$0")/python" -m pip "$@"\n')
        pip.chmod(0o755)


def crashed_labs() -> list[str]:
    """This module's labs (`lab_name("up")`: "up" and a pid's last digits) whose process is gone, and
    this process's own."""
    alive = {pid % 100000 for pid in psutil.pids()} - {os.getpid() % 100000}
    return [d.name for d in lab_hosts.STATE_ROOT.glob("up*")
            if re.fullmatch(r"up[0-9]+", d.name) and int(d.name[2:]) not in alive] + [lab_name("up")]


@dataclass
class Lab3:
    lab: Lab
    previous: str  # the release deployed first
    graceful: bool  # whether its masters, the ones stopped, hand over and drain what is unread
    current: str
    wheel: Path  # this checkout's


@pytest.fixture(scope="module")
def upgraded_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab3]:
    name = lab_name("up")
    for stale in crashed_labs():  # what a crashed earlier run left (named after its process)
        lab_hosts.down(Lab.load(stale))
    work = tmp_path_factory.mktemp("upgrade")
    lab = Lab(name=name, hosts=4, ansible_vars=INSTALLED)  # h4: an agent, until it replaces a master
    commit = previous_commit()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        old = pool.submit(previous_wheel, commit, work)
        new = pool.submit(build_wheel, ROOT, work / "dist")
        try:
            began = time.monotonic()
            lab_hosts.up(lab)
            make_venvs(lab)
            old_wheel, new_wheel = old.result(), new.result()
            made = time.monotonic()
            deploy.run_playbook(lab, extra={"berth_wheel": str(old_wheel)})
            deploy.wait_nodes_ready(lab)
            print(f"hosts and wheels {made - began:.0f}s, {old_wheel.name} deployed "
                  f"{time.monotonic() - made:.0f}s")
            yield Lab3(lab, old_wheel.name.split("-")[1], stops_gracefully(commit), release(), new_wheel)
        finally:
            lab_hosts.down(Lab.load(name))
    assert leftovers(Lab.load(name)) == []


def client(lab: Lab) -> Client:
    return Client(deploy.api_urls(lab), deploy.admin_token(lab), ca_file=str(deploy.ca_file(lab)))


class Writer(threading.Thread):
    """Creates ConfigMaps one after another through the CLI's client (all masters; it sends a write
    to the next master only when the first surely did not act on it: refused connection, 503
    Unavailable). Anything the client raises is a failed write. Bounded in count and time."""

    def __init__(self, lab: Lab, limit: int = 20000, seconds: float = 1500.0) -> None:
        super().__init__(daemon=True)
        self.lab, self.limit, self.seconds = lab, limit, seconds
        self.acked: list[str] = []
        self.failed: list[tuple[str, str]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + self.seconds
        with client(self.lab) as api:
            for n in range(self.limit):
                if self.stop.is_set() or time.monotonic() > deadline:
                    return
                name = f"up-w-{n}"
                try:
                    api.create({"apiVersion": "berth/v1", "kind": "ConfigMap", "metadata": {"name": name},
                                "data": {"n": str(n)}})
                    self.acked.append(name)
                except BerthError as err:
                    self.failed.append((name, str(err)[:300]))
                self.stop.wait(0.1)  # a steady trickle, not a load test on two shared cores


def running_pods(lab: Lab) -> dict[str, tuple[str, str, int]]:
    """Each up-web pod: (node, container ID, restart count), once all three run."""
    with client(lab) as api:
        pods = api.list("Pod", label_selector="app=up-web")["items"]
    seen = {}
    for pod in pods:
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        if len(statuses) != 1 or "running" not in (statuses[0].get("state") or {}):
            return {}
        seen[pod["metadata"]["name"]] = (pod["spec"]["nodeName"], statuses[0].get("containerID"),
                                         statuses[0].get("restartCount"))
    return seen if len(seen) == 3 else {}


def engine_containers(lab: Lab) -> dict[str, tuple[str, object]]:
    """What each host's engine runs: container ID → (host, start time)."""
    found = {}
    for host in lab.host_names():
        listed = lab_hosts.in_host(lab, host, ["podman", "ps", "--format", "json"]).stdout
        for container in json.loads(listed or "[]"):
            if any("up-web" in n for n in container.get("Names") or []):
                found[container["Id"]] = (host, container.get("StartedAt"))
    return found


def installed(lab: Lab, host: str) -> str:
    venv = deploy.state_dir(lab, host) / "venv" / "bin" / "python"
    # not this process's environment: PYTHONPATH names the checkout, whose egg-info pip wheel left
    return subprocess.run([str(venv), "-c", "import importlib.metadata as m; print(m.version('berth'))"],
                          capture_output=True, text=True, check=True, timeout=60, cwd="/",
                          env={"PATH": "/usr/bin:/bin"}).stdout.strip()


def master_version(lab: Lab, index: int) -> str | None:
    answer = requests.get(deploy.api_urls(lab)[index] + "/version", timeout=5,
                          verify=str(deploy.ca_file(lab)))
    return answer.json()["gitVersion"] if answer.status_code == 200 else None


def agent_release(lab: Lab, host: str) -> str | None:
    """The release the running agent says it runs (its own metrics, on its host's loopback)."""
    text = lab_hosts.in_host(lab, host, ["curl", "-s", "--max-time", "5", "http://127.0.0.1:9101/metrics"],
                             check=False).stdout
    found = re.search(r'^berth_build_info\{version="([^"]+)"\} 1\.0$', text, re.M)
    return found.group(1) if found else None


def agent_restarts(lab: Lab) -> dict[str, int]:
    """AgentRestarted events (the leader's node check restarting a silent node's agent), by node."""
    with client(lab) as api:
        events = api.list("Event", namespace="default")["items"]
    return {e["involvedObject"]["name"]: e.get("count", 1) for e in events if e["reason"] == "AgentRestarted"}


def test_rolling_upgrade_keeps_writes_and_pods(upgraded_lab: Lab3) -> None:
    lab = upgraded_lab.lab
    assert upgraded_lab.previous != upgraded_lab.current
    assert {installed(lab, h) for h in lab.host_names()} == {upgraded_lab.previous}
    with client(lab) as api:
        api.create(DEPLOYMENT)
    before = wait_until(lambda: running_pods(lab), 120, interval=0.5, what="three up-web pods running")
    containers = engine_containers(lab)
    assert len(containers) >= 3, containers  # each pod's, its sandbox's too where there is one

    restarts = agent_restarts(lab)  # the deploy's own, by the release before (its node check)
    writer = Writer(lab)
    writer.start()
    try:
        wait_until(lambda: len(writer.acked) >= 5, 60, what="the writer under way")
        started = time.monotonic()
        # one host at a time, each restart waited for: minutes on a loaded machine
        recap = deploy.run_playbook(lab, playbook=deploy.UPGRADE, timeout=1500,
                                    extra={"berth_wheel": str(upgraded_lab.wheel)})
        took = time.monotonic() - started
        print(f"upgrade.yml took {took:.0f}s; writes acknowledged: {len(writer.acked)}, "
              f"failed: {writer.failed}")
        print(recap[recap.rfind("PLAY RECAP"):])
        upgraded_at = len(writer.acked) + len(writer.failed)
        wait_until(lambda: len(writer.acked) + len(writer.failed) >= upgraded_at + 5, 60,
                   what="writes after the upgrade")
    finally:
        writer.stop.set()
        writer.join(timeout=60)

    # No failed write, and every acknowledged one is there. The masters stopped run the release
    # upgraded from: one before graceful stops may cut one write a restart whose outcome the client
    # cannot know (its drain reset a request left unread, or a forwarded write lost its leader)
    if upgraded_lab.graceful:
        assert writer.failed == []
    else:
        assert len(writer.failed) <= 3, writer.failed
        assert all("lost the connection" in why or "OutcomeUnknown" in why for _, why in writer.failed), \
            writer.failed
    with client(lab) as api:
        names = {c["metadata"]["name"] for c in api.list("ConfigMap", consistent=True)["items"]}
    assert set(writer.acked) <= names

    # every service runs the new release
    assert {installed(lab, h) for h in lab.host_names()} == {upgraded_lab.current}
    assert [master_version(lab, i) for i in range(3)] == [f"v{upgraded_lab.current}"] * 3
    assert {h: agent_release(lab, h) for h in lab.host_names()} == dict.fromkeys(lab.host_names(),
                                                                                 upgraded_lab.current)

    # no pod restarted: the same pods, containers, restart counts, and engine start times
    assert running_pods(lab) == before
    assert engine_containers(lab) == containers
    # and no agent restarted by the leader's node check on top of the playbook: an agent's restart
    # outlasts the node grace, and a check that restarted it at once killed the new agent starting
    assert agent_restarts(lab) == restarts

    # and the cluster is whole
    wait_until(lambda: all(requests.get(url + "/readyz", timeout=5, verify=str(deploy.ca_file(lab))).ok
                           for url in deploy.api_urls(lab)), 60, what="every master ready")
    deploy.wait_nodes_ready(lab, timeout=60)


def raft_address(lab: Lab, host: str) -> str:
    return f"{lab.address(host)}:7201"  # group_vars' berth_raft_port


def api_client(lab: Lab, hosts: list[str]) -> Client:
    return Client([f"https://{lab.address(h)}:{deploy.API_PORT}" for h in hosts], deploy.admin_token(lab),
                  ca_file=str(deploy.ca_file(lab)))


def members_seen(lab: Lab, host: str) -> tuple[set[str], bool]:
    """The Raft members as the master on `host` knows them, and whether it is ready."""
    try:
        with api_client(lab, [host]) as api:
            status = api.cluster()
    except BerthError:
        return set(), False
    return {m["address"] for m in status["members"]}, bool(status["ready"])


def test_a_dead_master_host_is_replaced_by_the_playbook(upgraded_lab: Lab3) -> None:
    """ansible/replace-master.yml, run for real on the lab the upgrade left: h3's machine dies; with the
    inventory edited as README says (h3 out, h4 a master), the playbook removes h3's member, deploys
    a master on h4 (an agent until now) and adds it. h4 then holds every object, and its vote counts:
    with h1 gone as well, h2 and h4 still commit a write."""
    lab = upgraded_lab.lab
    with client(lab) as api:
        api.create({"apiVersion": "berth/v1", "kind": "ConfigMap", "metadata": {"name": "before-replace"},
                    "data": {}})
    lab_hosts.crash_host(lab, "h3")
    replacing = {"berth_dead_master": raft_address(lab, "h3"), "berth_new_master": "h4",
                 "berth_wheel": str(upgraded_lab.wheel)}
    deploy.run_playbook(lab, playbook=deploy.REPLACE_MASTER, masters=["h1", "h2", "h4"],
                        gone=frozenset({"h3"}), extra=replacing)
    wanted = {raft_address(lab, h) for h in ("h1", "h2", "h4")}
    wait_until(lambda: all(members_seen(lab, h) == (wanted, True) for h in ("h1", "h2", "h4")), 120,
               interval=0.5, what="h1, h2 and h4 the members, every one ready")
    with api_client(lab, ["h4"]) as api:
        names = {c["metadata"]["name"] for c in api.list("ConfigMap", consistent=True)["items"]}
    assert "before-replace" in names and "up-w-0" in names

    lab_hosts.crash_host(lab, "h1")
    with api_client(lab, ["h2", "h4"]) as api:
        made = wait_until(lambda: _created(api, "after-replace"), 60, interval=0.5,
                          what="a write committed by h2 and h4 alone")
    assert made["metadata"]["name"] == "after-replace"


def _created(api: Client, name: str) -> dict | None:
    """The ConfigMap, created now or by an earlier try; None while no leader commits it (election)."""
    try:
        return api.create({"apiVersion": "berth/v1", "kind": "ConfigMap", "metadata": {"name": name},
                           "data": {}})
    except ApiError as err:
        return api.get("ConfigMap", name) if err.status == 409 else None
    except BerthError:
        return None
