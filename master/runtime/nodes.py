"""Where and how a Node's containers are reached: its address, SSH port and user, and runtime."""

from __future__ import annotations

from typing import Any

from berth.podnet import gateway
from master.runtime.driver import DRIVERS, Driver
from master.runtime.ssh import Host


def node_host(node: dict[str, Any]) -> Host:
    spec = node["spec"]
    return Host(node["metadata"]["name"], spec["address"], int(spec.get("sshPort", 22)),
                spec.get("sshUser", "root"))


def node_driver(node: dict[str, Any]) -> Driver:
    """A node with a pod CIDR puts its pods on the pod network (berth/podnet.py)."""
    driver = DRIVERS[node["spec"].get("runtime", "podman")]
    cidr = node["spec"].get("podCIDR")
    return type(driver)(gateway(cidr)) if cidr else driver
