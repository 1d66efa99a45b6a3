"""What a container uses, read from its cgroup's files: pure parsing, no I/O.

The kernel keeps every container's counters in its cgroup; reading two small files costs
microseconds, where asking the engine (`podman stats`) starts a process of tens of MB. A
container's cgroup is found from its first process's `/proc/PID/cgroup`, which names it for
each hierarchy: cgroup v1 (one hierarchy per controller: `cpuacct`, `memory`) or v2 (the
unified one, `0::`). CPU is the cumulative time used, turned into millicores over the
interval between two readings; memory is the working set, as Kubernetes reports it: usage
less the inactive file cache, which the kernel reclaims first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class CgroupFiles:
    """Where one container's counters are (absolute paths)."""

    cpu_usage: Path  # v1 cpuacct.usage (ns); v2 cpu.stat (usage_usec)
    memory_usage: Path  # v1 memory.usage_in_bytes; v2 memory.current
    memory_stat: Path
    v2: bool


def cgroup_files(proc_cgroup: str, root: Path = CGROUP_ROOT) -> CgroupFiles | None:
    """From `/proc/PID/cgroup`'s text: v1's cpuacct and memory hierarchies when both are named,
    else the unified (v2) one; None when neither is there."""
    v1: dict[str, str] = {}
    unified = None
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3 or ".." in parts[2]:
            continue
        _, controllers, path = parts
        for controller in controllers.split(","):
            v1[controller] = path.lstrip("/")
        if controllers == "":
            unified = path.lstrip("/")
    if "cpuacct" in v1 and "memory" in v1:
        cpu, memory = root / "cpuacct" / v1["cpuacct"], root / "memory" / v1["memory"]
        return CgroupFiles(cpu / "cpuacct.usage", memory / "memory.usage_in_bytes", memory / "memory.stat",
                           v2=False)
    if unified is not None:
        # a pure v2 host mounts the unified hierarchy at the root; a hybrid one under "unified"
        hybrid = (root / "unified").is_dir() and not (root / "cgroup.controllers").exists()
        group = (root / "unified" if hybrid else root) / unified
        return CgroupFiles(group / "cpu.stat", group / "memory.current", group / "memory.stat", True)
    return None


def cpu_nanoseconds(text: str, v2: bool) -> int:
    """Cumulative CPU time: v1's file is nanoseconds; v2's cpu.stat says usage_usec."""
    if not v2:
        return int(text.strip())
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "usage_usec":
            return int(value) * 1000
    raise ValueError("cpu.stat without usage_usec")


def working_set(usage_text: str, stat_text: str, v2: bool) -> int:
    """Usage less the inactive file cache (v1 counts the hierarchy's: total_inactive_file)."""
    wanted = "inactive_file" if v2 else "total_inactive_file"
    inactive = 0
    for line in stat_text.splitlines():
        key, _, value = line.partition(" ")
        if key == wanted:
            inactive = int(value)
    return max(0, int(usage_text.strip()) - inactive)


def millicores(before_ns: int, after_ns: int, seconds: float) -> int:
    """The CPU used between two readings, in thousandths of a core (0 when the counter went back:
    the container restarted with a new cgroup)."""
    if seconds <= 0 or after_ns < before_ns:
        return 0
    return round((after_ns - before_ns) / 1e6 / seconds)
