"""Whether this host's container engine works, told with every heartbeat, as a kubelet tells its
runtime's status (and its network's) in the Node's Ready condition.

A heartbeat alone says the agent lives, not that the host can run pods: with a broken engine
(a bad upgrade, a full disk under its storage, a wedged lock) the agent heartbeats on while no
container can start or be seen. So every `period` the engine lists Berth's containers; a
failure is tried again after RETRY_SECONDS, and only FAILURES failures in a row make the host
not ready (one slow listing under load must not move every pod off it); one success makes it
ready again. The master turns that into Ready=False, reason RuntimeNotReady, and the
`node.berth.io/not-ready:NoExecute` taint (master/liveness.py).

The check runs in its own thread: a hung engine must delay neither the heartbeats nor the
self-fence. Each listing costs the engine's start (20 ms of CPU for podman, more with many
containers), so the period is long (30 s by default), and a listing the usage readings made
within it counts (engine.Listings): on a host with containers, the engine is listed about
twice a minute in all.
"""

from __future__ import annotations

import logging
import subprocess
import threading
from collections.abc import Callable

from agent.engine import Listings, list_command

log = logging.getLogger(__name__)
RETRY_SECONDS = 2.0
FAILURES = 2  # failed listings in a row that make the runtime not ready
MESSAGE_LIMIT = 400


def failure_text(err: Exception) -> str:
    """What went wrong, short enough for a condition's message (the engine's stderr if it said)."""
    if isinstance(err, subprocess.CalledProcessError):
        said = (err.stderr or "").strip() if isinstance(err.stderr, str) else ""
        text = f"exit status {err.returncode}" + (f": {said}" if said else "")
    elif isinstance(err, subprocess.TimeoutExpired):
        text = f"no answer in {err.timeout:.0f} s"
    else:
        text = f"{err.__class__.__name__}: {err}"
    return text[:MESSAGE_LIMIT]


class RuntimeHealth:
    def __init__(self, runtime: str, period: float, run: Callable[[list[str]], str] = list_command,
                 network: Callable[[], str | None] = lambda: None, listings: Listings | None = None) -> None:
        """`network`: what is wrong with the host's pod network (pod_network.py), if anything: a
        host that cannot give pods addresses is not ready either, as a kubelet says NetworkReady."""
        self.runtime = runtime
        self.network = network
        # a listing the usage readings made within the period proves the engine works as well
        self.listings = listings or Listings(runtime, run)
        self.period = period
        self.run = run
        self.failures = 0
        self.problem: str | None = None  # set once FAILURES listings in a row failed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="runtime-health", daemon=True)

    def start(self) -> None:
        if self.period > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def report(self) -> dict[str, object]:
        """The heartbeat's fields about the runtime."""
        problem = self.problem or self.network()
        if problem is None:
            return {"runtimeReady": True}
        return {"runtimeReady": False, "runtimeMessage": problem}

    def check(self) -> bool:
        """One listing; True if the engine answered."""
        try:
            # a listing made within the last half period (by the usage readings) counts; its own
            # from the period before does not, and after a failure it always asks again
            self.listings.get(max_age=self.period / 2 if self.failures == 0 else 0.0)
        except (subprocess.SubprocessError, OSError, ValueError, KeyError, TypeError) as err:
            self.failures += 1
            if self.failures >= FAILURES:
                problem = f"{self.runtime} does not list containers: {failure_text(err)}"
                if self.problem is None:
                    log.error("container runtime is not ready: %s", problem)
                self.problem = problem
            return False
        if self.problem is not None:
            log.info("container runtime is ready again")
        self.failures, self.problem = 0, None
        return True

    def _loop(self) -> None:
        while not self._stop.is_set():
            ok = self.check()
            if self._stop.wait(self.period if ok or self.failures >= FAILURES else RETRY_SECONDS):
                return
