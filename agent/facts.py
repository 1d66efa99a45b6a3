"""What the agent reports about its host, read with psutil: pure dicts, no I/O beyond psutil."""

from __future__ import annotations

import os
from typing import Any

import psutil


def capacity() -> dict[str, int]:
    """CPU in millicores, memory in bytes: what the host has (or its lab size says)."""
    return {"cpu": (os.cpu_count() or 1) * 1000, "memory": psutil.virtual_memory().total}


def allocatable(total: dict[str, int], reserved_cpu: int, reserved_memory: int) -> dict[str, int]:
    """What pods may request: capacity minus what the system keeps for itself."""
    return {"cpu": max(0, total["cpu"] - reserved_cpu),
            "memory": max(0, total["memory"] - reserved_memory)}


def usage() -> dict[str, Any]:
    memory = psutil.virtual_memory()
    return {"cpuPercent": psutil.cpu_percent(interval=None),
            "memoryUsed": memory.total - memory.available}
