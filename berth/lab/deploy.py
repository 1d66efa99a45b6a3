"""The lab deploys the cluster with the very playbook an operator runs on bare metal."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
import yaml

from berth.lab.hosts import Lab, LabError, in_host

PROJECT = Path(__file__).resolve().parents[2]  # the checkout: berth/lab/ is two below it
PLAYBOOK = PROJECT / "ansible" / "site.yml"
UPGRADE = PROJECT / "ansible" / "upgrade.yml"
REPLACE_MASTER = PROJECT / "ansible" / "replace-master.yml"
API_PORT = 7101


def masters_of(lab: Lab) -> list[str]:
    return lab.host_names()[: 1 if lab.hosts < 3 else 3]


def lab_settings(lab: Lab) -> dict[str, Any]:
    """The few settings that differ from bare metal (extra vars: they beat group_vars/all)."""
    return {
        "berth_cluster_name": f"lab-{lab.name}",
        "berth_service_manager": "lab",
        "berth_manage_packages": False,
        "berth_install_project": False,
        "berth_venv": sys.prefix,
        "berth_lab_pythonpath": str(PROJECT),  # its services run this checkout's code
        "berth_secrets_dir": str(lab.root / "secrets"),
        # each lab host keeps its state in a folder of its own: the leader names the node's
        "berth_agent_restart_command": [sys.prefix + "/bin/python", "-m", "berth.lab.supervisor", "restart",
                                        "berth-agent", "--dir", str(state_dir(lab, "{node}") / "run")],
        **lab.ansible_vars,
    }


def inventory(lab: Lab, masters: list[str] | None = None, gone: frozenset[str] = frozenset()
              ) -> dict[str, Any]:
    """The same groups as a bare-metal inventory: `masters` (the first three hosts unless given), and
    every host an agent but the `gone` ones (dead machines an operator takes out of the inventory)."""
    def host_vars(host: str) -> dict[str, str]:
        d = lab.host_dir(host)
        return {"ansible_host": lab.address(host), "berth_state_dir": str(state_dir(lab, host)),
                "berth_containers_conf": str(d / "containers.conf"),
                "berth_network_config_dir": str(d / "networks"),
                "berth_sysctl_file": str(d / "sysctl.conf"),  # applied in the host's own namespace
                "berth_authorized_keys_file": str(d / "authorized_keys"),  # the host's own sshd reads these
                # the storage user's own file (hosts.py's sshd_config: authorized_keys.%u after root's)
                "berth_storage_authorized_keys_file": str(d / "authorized_keys.berth-storage"),
                "berth_ssh_host_key_pub": str(d / "ssh_host_ed25519_key.pub"),
                "berth_runtime": lab.runtime(host)}

    return {"all": {
        "vars": {
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(lab.ssh_key),
            "ansible_python_interpreter": "/usr/bin/python3",
        },
        "children": {
            "masters": {"hosts": {h: host_vars(h) for h in (masters or masters_of(lab))}},
            "agents": {"hosts": {h: host_vars(h) for h in lab.host_names() if h not in gone}},
        },
    }}


def state_dir(lab: Lab, host: str) -> Path:
    return lab.host_dir(host) / "berth"


def boot_services(lab: Lab, host: str) -> None:
    """Start the services the playbook had started on a host just booted again (`berth lab start`),
    with the supervisor's `boot`: what a machine's systemd does with its enabled units."""
    run_dir = state_dir(lab, host) / "run"
    if run_dir.is_dir():
        in_host(lab, host, [sys.executable, "-m", "berth.lab.supervisor", "boot", "--dir", str(run_dir)])


def run_playbook(lab: Lab, limit: str | None = None, playbook: Path = PLAYBOOK,
                 extra: dict[str, Any] | None = None, timeout: float = 600, masters: list[str] | None = None,
                 gone: frozenset[str] = frozenset()) -> str:
    """ansible-playbook (site.yml, or `playbook`) over SSH with the lab's pinned host keys; returns its
    output. `extra`: variables for this run alone (the lab's own stay in `lab.ansible_vars`);
    `masters`, `gone`: the inventory as an operator edits it to replace a dead master (`inventory`)."""
    path = lab.root / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory(lab, masters, gone)))
    config = lab.root / "ansible.cfg"  # empty: no stray ansible.cfg of the machine applies
    config.write_text("[defaults]\n")
    env = {**os.environ,
           "ANSIBLE_HOST_KEY_CHECKING": "True",
           "ANSIBLE_SSH_ARGS": f"-o UserKnownHostsFile={lab.known_hosts} -o StrictHostKeyChecking=yes "
                               "-o ControlMaster=auto -o ControlPersist=60s",
           "ANSIBLE_PIPELINING": "True",
           "ANSIBLE_FORKS": "10",
           "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_LOCAL_TEMP": str(lab.root / "ansible-tmp"),
           "ANSIBLE_CONFIG": str(config)}
    settings = lab.root / "lab-vars.yml"
    settings.write_text(yaml.safe_dump({**lab_settings(lab), **(extra or {})}))
    command = [str(Path(sys.prefix) / "bin" / "ansible-playbook"), "-i", str(path),
               "--extra-vars", f"@{settings}", str(playbook)]
    if limit:
        command += ["--limit", limit]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise LabError(f"ansible-playbook failed:\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}")
    return result.stdout


def admin_token(lab: Lab) -> str:
    return (lab.root / "secrets" / "admin-token").read_text().strip()


def viewer_token(lab: Lab) -> str:
    """A read-only user's (role viewer): what to show the cluster with, e.g. in the web page."""
    return (lab.root / "secrets" / "viewer-token").read_text().strip()


def api_urls(lab: Lab) -> list[str]:
    return [f"https://{lab.address(h)}:{API_PORT}" for h in masters_of(lab)]


def ca_file(lab: Lab) -> Path:
    """The cluster's CA, made by the playbook beside the other secrets: what clients verify masters with."""
    return lab.root / "secrets" / "tls" / "ca.crt"


def write_cli_config(lab: Lab, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"servers": api_urls(lab), "token": admin_token(lab),
                                    "certificate-authority": str(ca_file(lab))}))
    path.chmod(0o600)


def wait_nodes_ready(lab: Lab, timeout: float = 90.0,
                     on_view: Callable[[dict[str, bool]], None] | None = None) -> dict[str, bool]:
    """Bounded wait until every host's Node is Ready; returns the last view. `on_view` hears each
    view read (node name: Ready), for `berth lab up`'s progress."""
    headers = {"Authorization": f"Bearer {admin_token(lab)}"}
    deadline = time.monotonic() + timeout
    ready: dict[str, bool] = {}
    while time.monotonic() < deadline:
        for url in api_urls(lab):
            try:
                items = requests.get(f"{url}/api/v1/nodes", headers=headers, timeout=2,
                                     verify=str(ca_file(lab))).json()["items"]
            except (requests.RequestException, ValueError, KeyError):
                continue
            ready = {n["metadata"]["name"]: any(c.get("type") == "Ready" and c.get("status") == "True"
                                                for c in (n.get("status") or {}).get("conditions") or [])
                     for n in items}
            if on_view is not None:
                on_view(ready)
            break
        if set(ready) >= set(lab.host_names()) and all(ready.values()):
            return ready
        time.sleep(0.5)
    raise LabError(f"nodes not Ready after {timeout:.0f}s: {ready}")
