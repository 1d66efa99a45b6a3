"""Where a Node's runtime is reached: its address, SSH port and user."""

from __future__ import annotations

from typing import Any

from master.runtime.ssh import Host


def node_host(node: dict[str, Any]) -> Host:
    spec = node["spec"]
    return Host(spec["address"], int(spec.get("sshPort", 22)), spec.get("sshUser", "root"))
