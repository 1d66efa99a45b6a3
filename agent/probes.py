"""Liveness and readiness probes, run by the agent on its own host, as a kubelet runs them.

The agent reads the pods bound to its node (a field selector on spec.nodeName: the API
lets an agent read only its own node's pods) when they changed, which each heartbeat's
answer tells (`podsRevision`, master/reports/pod_revisions.py), and every
`resync_seconds` anyway. For each running container with probes, a probe runs every
periodSeconds after initialDelaySeconds: exec (`podman exec -- CONTAINER CMD...`: the
command is never read as options), httpGet (2xx/3xx from the pod's address) or tcpSocket
(a connection opens). failureThreshold failures in a row make the verdict unhealthy,
successThreshold successes healthy again. The verdicts are reported to the masters when
one changes and every `report_seconds` anyway (a new leader keeps none). What the leader
does with them (restart, Ready) is master/runtime/planner.py's business."""

from __future__ import annotations

import http.client
import logging
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from agent.masters import ApiError, Masters, MasterUnavailable
from agent.prometheus import AgentMetrics
from berth.containers import container_name
from berth.objects import Obj

log = logging.getLogger(__name__)
PROBES = (("liveness", "livenessProbe"), ("readiness", "readinessProbe"))


@dataclass
class ProbeState:
    """One probe of one start of one container."""

    started_at: str
    due: float
    healthy: bool  # liveness starts healthy, readiness not (as in Kubernetes)
    successes: int = 0
    failures: int = 0
    message: str = ""


def run_probe(probe: Obj, runtime: str, container: str, pod_ip: str) -> tuple[bool, str]:
    """(succeeded, why not) for one attempt; never raises (one bad probe must not stop the others)."""
    try:
        timeout = float(probe.get("timeoutSeconds", 1))
        if probe.get("exec"):
            done = subprocess.run([runtime, "exec", "--", container, *probe["exec"]["command"]],
                                  capture_output=True, timeout=timeout + 5, check=False)
            return done.returncode == 0, f"exec exited {done.returncode}"
        if not pod_ip:
            return False, "the pod has no address yet"
        if probe.get("httpGet"):
            action = probe["httpGet"]
            connection = http.client.HTTPConnection(pod_ip, int(action["port"]), timeout=timeout)
            try:
                connection.request("GET", action.get("path") or "/")
                status = connection.getresponse().status
            finally:
                connection.close()
            return 200 <= status < 400, f"HTTP {status}"
        with socket.create_connection((pod_ip, int(probe["tcpSocket"]["port"])), timeout=timeout):
            return True, ""
    except (OSError, subprocess.SubprocessError, http.client.HTTPException, ValueError, TypeError,
            KeyError) as err:  # ValueError: a path http.client refuses (InvalidURL), a bad port ...
        return False, f"{err.__class__.__name__}: {err}"[:200]


class ProbeRunner:
    def __init__(self, masters: Masters, node: str, runtime: str, resync_seconds: float = 60.0,
                 report_seconds: float = 10.0,
                 listed: Callable[[list[Obj]], None] = lambda pods: None,
                 metrics: AgentMetrics | None = None) -> None:
        """`metrics`: counts each probe attempt's result (agent/prometheus.py)."""
        self.masters = masters
        self.metrics = metrics or AgentMetrics()
        self.listed = listed  # told each listing of the node's pods (the self-fence's opt-outs)
        self.node = node
        self.runtime = runtime
        self.resync_seconds = resync_seconds
        self.report_seconds = report_seconds
        self._pods_revision: int | None = None  # the latest a heartbeat's answer told
        self._listed_revision: int | None = None  # the one the last listing was asked at
        self._states: dict[tuple[str, str, str], ProbeState] = {}
        self._targets: dict[tuple[str, str, str], tuple[Obj, str, str]] = {}  # probe, container, pod IP
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="probes", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def pods_changed(self, revision: int) -> None:
        """From the heartbeat loop: the node's pods as of `revision` (listed in the next tick if new)."""
        self._pods_revision = revision

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        synced = reported = 0.0
        changed = False
        while not self._stop.wait(0.2):
            now = time.monotonic()
            try:
                wanted = self._pods_revision
                if wanted != self._listed_revision or now - synced >= self.resync_seconds:
                    synced = now
                    pods = self._pods()
                    self.listed(pods)
                    changed |= self.sync(pods, now)
                    self._listed_revision = wanted
                changed |= self.run_due(now)
                if changed or now - reported >= self.report_seconds:
                    self.report()
                    reported, changed = now, False
            except MasterUnavailable as err:
                log.warning("probes: %s", err)
            except Exception:  # a bad round must not end the loop
                log.exception("probe round failed")

    def _pods(self) -> list[Obj]:
        try:
            answer = self.masters.call("GET", f"/api/v1/pods?fieldSelector=spec.nodeName%3D{self.node}")
        except ApiError as err:
            raise MasterUnavailable(f"listing this node's pods: {err}") from None
        return (answer or {}).get("items") or []

    def sync(self, pods: list[Obj], now: float) -> bool:
        """Probes for the containers running now; a container started again starts its probes afresh."""
        wanted: dict[tuple[str, str, str], tuple[Obj, str, str, str]] = {}
        for pod in pods:
            status = pod.get("status") or {}
            started = {s["name"]: (s.get("state") or {}).get("running", {}).get("startedAt")
                       for s in status.get("containerStatuses") or []}
            for container in pod["spec"]["containers"]:
                start = started.get(container["name"])
                if not start:
                    continue
                for kind, field in PROBES:
                    if container.get(field):
                        key = (pod["metadata"]["uid"], container["name"], kind)
                        wanted[key] = (container[field], container_name(pod, container["name"]),
                                       status.get("podIP") or "", start)
        changed = set(self._states) != set(wanted)
        for key in list(self._states):
            if key not in wanted or self._states[key].started_at != wanted[key][3]:
                del self._states[key]
                changed = True
        for key, (probe, name, pod_ip, start) in wanted.items():
            self._targets[key] = (probe, name, pod_ip)
            if key not in self._states:
                self._states[key] = ProbeState(start, now + float(probe.get("initialDelaySeconds", 0)),
                                               healthy=key[2] == "liveness")
        self._targets = {k: v for k, v in self._targets.items() if k in wanted}
        return changed

    def run_due(self, now: float) -> bool:
        changed = False
        for key, state in list(self._states.items()):
            if now < state.due:
                continue
            probe, name, pod_ip = self._targets[key]
            state.due = now + float(probe.get("periodSeconds", 10))
            ok, why = run_probe(probe, self.runtime, name, pod_ip)
            self.metrics.probed(key[2], ok)
            if ok:
                state.successes, state.failures = state.successes + 1, 0
                if not state.healthy and state.successes >= int(probe.get("successThreshold", 1)):
                    state.healthy, state.message, changed = True, "", True
            else:
                state.failures, state.successes = state.failures + 1, 0
                if state.healthy and state.failures >= int(probe.get("failureThreshold", 3)):
                    state.healthy, state.message, changed = False, f"{key[2]} probe failed: {why}", True
                    log.info("%s %s: %s", key[1], key[2], state.message)
        return changed

    def report(self) -> None:
        results = [{"podUID": uid, "container": container, "probe": kind, "healthy": state.healthy,
                    "startedAt": state.started_at, "message": state.message}
                   for (uid, container, kind), state in self._states.items()]
        try:
            self.masters.call("POST", f"/api/v1/nodes/{self.node}/probes", {"results": results})
        except ApiError as err:
            log.warning("probe report refused: %s", err)
