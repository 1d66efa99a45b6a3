"""The running release of Berth: what a master's `/version` and an agent's `berth_build_info` say.

Read from the installed distribution's metadata (the wheel Ansible installed), so a process that
was not restarted after an upgrade still tells the release it started with: a rolling upgrade
(ansible/upgrade.yml) waits on it.
"""

from __future__ import annotations

import platform
from functools import cache
from importlib.metadata import PackageNotFoundError, version


@cache
def release() -> str:
    """This process's release, read once (at its first call; the process's own start in practice)."""
    try:
        return version("berth")
    except PackageNotFoundError:  # a bare checkout on PYTHONPATH, never installed
        return "0.0.0+unknown"


def version_info() -> dict[str, str]:
    """Kubernetes' `/version` names: major, minor, gitVersion ("v" and the release), platform."""
    parts = release().split(".")
    return {"major": parts[0], "minor": parts[1] if len(parts) > 1 else "0",
            "gitVersion": f"v{release()}",
            "platform": f"{platform.system().lower()}/{platform.machine()}",
            "pythonVersion": platform.python_version()}
