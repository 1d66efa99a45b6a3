"""Berth's running containers on this host, as the engine lists them: one listing for the
agent's every use (the self-fence, the runtime check, the usage readings), each argument its
own list element, no user string in any."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from berth.containers import CONTAINER, MANAGED, POD_UID, SANDBOX


@dataclass(frozen=True)
class Running:
    id: str
    pid: int  # its first process, on this host (0 when the engine did not say)
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def pod_uid(self) -> str:
        return self.labels.get(POD_UID, "")

    @property
    def container(self) -> str:
        """The pod's container it runs ("" for a pod's sandbox, which runs none of the pod's)."""
        return "" if self.labels.get(SANDBOX) == "true" else self.labels.get(CONTAINER, "")


def running(runtime: str, run: Callable[[list[str]], str]) -> list[Running]:
    """Podman's listing says each one's pid; docker's does not, so its ids are inspected."""
    mine = f"label={MANAGED}=true"
    if runtime == "podman":
        listed = json.loads(run(["podman", "ps", "--filter", mine, "--format", "json"]) or "[]")
        return [Running(c["Id"], int(c.get("Pid") or 0), c.get("Labels") or {}) for c in listed]
    ids = run(["docker", "ps", "--quiet", "--no-trunc", "--filter", mine]).split()
    if not ids:
        return []
    inspected = json.loads(run(["docker", "inspect", "--", *ids]) or "[]")
    return [Running(c["Id"], int((c.get("State") or {}).get("Pid") or 0),
                    (c.get("Config") or {}).get("Labels") or {})
            for c in inspected if (c.get("State") or {}).get("Running")]
