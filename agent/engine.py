"""Berth's running containers on this host, as the engine lists them: one listing for the
agent's every use (the self-fence, the runtime check, the usage readings), each argument its
own list element, no user string in any."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from berth.containers import CONTAINER, MANAGED, POD_UID, SANDBOX

LIST_TIMEOUT = 10.0  # seconds an engine listing may take before it counts as a failure


def list_command(argv: list[str]) -> str:
    """Runs one listing command (no shell), its output; raises on failure or after LIST_TIMEOUT."""
    return subprocess.run(argv, capture_output=True, text=True, timeout=LIST_TIMEOUT, check=True).stdout


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


class Listings:
    """One engine listing shared by the agent's readers: each says how old a listing it can use,
    and the engine is asked again only when the last one is older (a listing costs the engine's
    start, tens of ms of CPU: the runtime check and the usage readings share one)."""

    def __init__(self, runtime: str, run: Callable[[list[str]], str] = list_command,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.runtime = runtime
        self.run = run
        self.clock = clock
        self._lock = threading.Lock()
        self._last: tuple[float, list[Running]] | None = None

    def get(self, max_age: float = 0.0) -> list[Running]:
        """Raises what the engine's failure raised (a failure is never kept)."""
        with self._lock:
            if self._last is not None and self.clock() - self._last[0] < max_age:
                return self._last[1]
            found = running(self.runtime, self.run)
            self._last = (self.clock(), found)
            return found
