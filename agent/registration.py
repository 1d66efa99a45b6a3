"""Registering this host's Node: idempotent, so a restarted agent just registers again.

An agent creates its Node once; after that it writes only the Node's status. Its spec
(address, SSH port and user, runtime, taints) is the admins': an agent token that could
change its address could point the runtime at another host.
"""

from __future__ import annotations

import logging
from typing import Any

from agent.config import AgentConfig
from agent.facts import allocatable, capacity
from agent.masters import ApiError, Masters
from berth.quantity import cpu_millis, memory_bytes

log = logging.getLogger(__name__)
_MERGE = "application/merge-patch+json"
_REACH = ("address", "sshPort", "sshUser", "runtime")  # how the runtime reaches this host


class RegistrationRefused(RuntimeError):
    """Not worth retrying: a master refused the request (bad token, wrong node name, bad input)."""


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
    try:
        masters.call("POST", "/api/v1/nodes", node)
    except ApiError as err:
        if err.status != 409:
            raise RegistrationRefused(f"registering {config.name}: HTTP {err.status} {err}") from None
        _warn_if_moved(masters, node)
    try:
        return masters.call("PATCH", f"/api/v1/nodes/{config.name}/status",
                            {"status": node_resources(config)}, _MERGE)
    except ApiError as err:
        raise RegistrationRefused(f"reporting {config.name}: HTTP {err.status} {err}") from None


def _warn_if_moved(masters: Masters, node: dict[str, Any]) -> None:
    """The registered Node stays as the admins keep it; say so if this host's settings differ."""
    name = node["metadata"]["name"]
    try:
        stored = (masters.call("GET", f"/api/v1/nodes/{name}") or {}).get("spec") or {}
    except ApiError:
        return
    differ = [f"{key} {stored.get(key)!r} (configured here: {node['spec'][key]!r})" for key in _REACH
              if stored.get(key) != node["spec"][key]]
    if differ:
        log.warning("node %s is registered with %s: an agent cannot change its Node's spec; an admin "
                    "must change it, or delete the Node for this agent to register it afresh",
                    name, ", ".join(differ))
