"""Registering this host's Node: idempotent, so a restarted agent just registers again.

An agent creates its Node once; after that it writes only the Node's status. Its spec
(address, SSH port and user, runtime, taints) is the admins': an agent token that could
change its address could point the runtime at another host.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import requests

from agent.config import AgentConfig
from agent.facts import allocatable, capacity
from berth.quantity import cpu_millis, memory_bytes

log = logging.getLogger(__name__)
_MERGE = {"Content-Type": "application/merge-patch+json"}
_REACH = ("address", "sshPort", "sshUser", "runtime")  # how the runtime reaches this host


class MasterUnavailable(RuntimeError):
    """Worth retrying: no master could answer."""


class RegistrationRefused(RuntimeError):
    """Not worth retrying: a master refused the request (bad token, wrong node name, bad input)."""


class Masters:
    """The masters' API with the agent's token; the next master is tried when one fails."""

    def __init__(self, urls: list[str], token: str, timeout: float = 5.0) -> None:
        self.urls = list(urls)
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self._current = 0

    def request(self, method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None) -> requests.Response:
        errors = []
        for attempt in range(len(self.urls)):
            url = self.urls[(self._current + attempt) % len(self.urls)]
            try:
                response = self.session.request(
                    method, url + path, data=None if body is None else json.dumps(body),
                    headers={"Content-Type": "application/json", **(headers or {})},
                    timeout=self.timeout)
            except requests.RequestException as err:
                errors.append(f"{url}: {err.__class__.__name__}")
                continue
            if response.status_code == 503:
                errors.append(f"{url}: 503")
                continue
            self._current = (self._current + attempt) % len(self.urls)
            return response
        raise MasterUnavailable("no master answered: " + "; ".join(errors))


def node_manifest(config: AgentConfig) -> dict[str, Any]:
    return {
        "apiVersion": "berth/v1",
        "kind": "Node",
        "metadata": {"name": config.name, "labels": config.labels},
        "spec": {"address": config.address, "sshPort": config.ssh_port, "sshUser": config.ssh_user,
                 "runtime": config.runtime},
    }


def node_resources(config: AgentConfig) -> dict[str, Any]:
    total = capacity()
    return {"capacity": total,
            "allocatable": allocatable(total, cpu_millis(config.reserved_cpu),
                                       memory_bytes(config.reserved_memory))}


def register(masters: Masters, config: AgentConfig) -> dict[str, Any]:
    """Create the Node (or find it registered already); then report its resources."""
    node = node_manifest(config)
    created = masters.request("POST", "/api/v1/nodes", node)
    if created.status_code == 409:
        _warn_if_moved(masters, node)
    elif created.status_code >= 400:
        raise RegistrationRefused(f"registering {config.name}: {created.status_code} {created.text}")
    status = masters.request("PATCH", f"/api/v1/nodes/{config.name}/status",
                             {"status": node_resources(config)}, _MERGE)
    if status.status_code >= 400:
        raise RegistrationRefused(f"reporting {config.name}: {status.status_code} {status.text}")
    return status.json()


def _warn_if_moved(masters: Masters, node: dict[str, Any]) -> None:
    """The registered Node stays as the admins keep it; say so if this host's settings differ."""
    name = node["metadata"]["name"]
    answer = masters.request("GET", f"/api/v1/nodes/{name}")
    if answer.status_code != 200:
        return
    stored = answer.json().get("spec") or {}
    differ = [f"{key} {stored.get(key)!r} (configured here: {node['spec'][key]!r})" for key in _REACH
              if stored.get(key) != node["spec"][key]]
    if differ:
        log.warning("node %s is registered with %s: an agent cannot change its Node's spec; an admin "
                    "must change it, or delete the Node for this agent to register it afresh",
                    name, ", ".join(differ))
