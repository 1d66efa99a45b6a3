"""`berth-agent`: registers this host's Node with the masters and keeps it reported."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import click

from agent.app_metrics import AppMetrics
from agent.cluster_dns import ClusterDns
from agent.config import AgentConfig
from agent.engine import Listings
from agent.facts import usage
from agent.fencing import Fenced, SelfFence
from agent.informer import Informer, spread
from agent.masters import ApiError, Masters, MasterUnavailable
from agent.metrics import MetricsCollector
from agent.pod_network import INFORMED, PodNetwork
from agent.probes import ProbeRunner
from agent.prometheus import AgentMetrics
from agent.registration import RegistrationRefused, register
from agent.runtime_events import RuntimeEventWatch, event_source
from agent.runtime_health import RuntimeHealth
from berth.settings import load_settings_file

log = logging.getLogger("berth.agent")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--name", help="The Node's name (DNS-1123 label).")
@click.option("--address", help="The address masters reach this host's sshd at.")
@click.option("--master", "masters", multiple=True, help="A master's API URL (repeat).")
@click.option("--token-file", help="File holding this agent's API token.")
@click.option("--ca-file", help="The cluster's CA, which the masters' certificates are verified with.")
@click.option("--heartbeat-interval", type=float, help="Seconds between heartbeats (default 1).")
@click.option("--prometheus-port", type=int,
              help="Port of the agent's own Prometheus metrics, on prometheus_address (127.0.0.1 unless "
                   "set; default 9101; 0: off).")
@click.option("--pod-network/--no-pod-network", default=None,
              help="Make this host's part of the pod network (default: on).")
@click.option("--once", is_flag=True, help="Register, then exit.")
def main(config_file: str | None, once: bool, **flags: object) -> None:
    try:
        file_values = load_settings_file(config_file) if config_file else {}
        config = AgentConfig.build(file_values, flags)
        token = config.token()
    except (OSError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    logging.basicConfig(level=config.log_level.upper(),
                        format=f"%(asctime)s agent {config.name} %(levelname)s: %(message)s")
    def connect(timeout: float = 5.0, urls: list[str] | None = None) -> Masters:
        """A client of its own (a requests.Session is not shared between threads), verifying the CA;
        `urls`: the masters in another order (informers spread over them)."""
        return Masters(urls or config.masters, token, timeout, config.ca_file)

    masters = connect()
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    registered = _register_until_done(masters, config, stopping)
    if once or not registered:
        return
    # each its own client: a requests.Session is not shared between threads
    fence = SelfFence(config.runtime, config.fence_after_seconds,
                      record=Path(config.token_file).parent / "fenced.json")  # the agent's state dir
    app = AppMetrics(interval=config.metrics_interval)
    observed = AgentMetrics()  # the agent's own Prometheus families (agent/prometheus.py)
    if config.prometheus_port:
        observed.serve(config.prometheus_address, config.prometheus_port)

    def listed(pods: list[dict]) -> None:  # the node's pods, as the probe runner lists them
        fence.pods(pods)
        app.pods(pods)

    probes = ProbeRunner(connect(), config.name, config.runtime, listed=listed, metrics=observed)
    listings = Listings(config.runtime)  # one engine listing for the runtime check and the readings
    metrics = MetricsCollector(connect(), config.name, config.runtime,
                               interval=config.metrics_interval, app=app.snapshot, listings=listings)
    runtime_events = RuntimeEventWatch(connect(), config.name, config.runtime,
                                       source=event_source(config.runtime, Path(config.podman_events_file)),
                                       changed=metrics.changed)
    network = PodNetwork(config.name, config.runtime, enabled=config.pod_network, dns=ClusterDns(),
                         backend=config.pod_network_backend, metrics=observed)
    runtime = RuntimeHealth(config.runtime, config.runtime_check_seconds, network=lambda: network.problem,
                            listings=listings)
    # each informer its own client: a requests.Session is not shared between threads
    informers = [Informer(connect(urls=spread(config.masters, config.name, i)).client, kind,
                          network.informed(kind)) for i, kind in enumerate(INFORMED)]
    autoscalers = Informer(connect(urls=spread(config.masters, config.name, len(INFORMED))).client,
                           "HorizontalPodAutoscaler", app.autoscalers)  # which of its pods' paths to time
    probes.start()
    runtime_events.start()
    runtime.start()
    metrics.start()
    app.start()
    if config.metrics_interval:
        autoscalers.start()
    if config.pod_network:
        network.start()
        for informer in informers:
            informer.start()
    # heartbeats wait briefly for each master: a master cut off behind a kept connection would
    # otherwise hold one for the whole read timeout and make this healthy node look dead
    beats = connect(HEARTBEAT_TIMEOUT)
    heartbeat_until(beats, config, stopping, probes.pods_changed, fence, runtime, observed)
    observed.stop()
    runtime.stop()
    metrics.stop()
    app.stop()
    autoscalers.stop()
    for informer in informers:
        informer.stop()
    network.stop()
    if network.dns is not None:
        network.dns.stop()
    runtime_events.stop()
    probes.stop()


def _register_until_done(masters: Masters, config: AgentConfig, stopping: threading.Event) -> bool:
    backoff = 0.5
    while not stopping.is_set():
        try:
            register(masters, config)
            log.info("registered node %s", config.name)
            return True
        except RegistrationRefused as err:
            raise click.ClickException(str(err)) from err
        except MasterUnavailable as err:
            log.warning("%s; retrying in %.1fs", err, backoff)
            stopping.wait(backoff)
            backoff = min(backoff * 2, 10.0)
    return False


HEARTBEAT_TIMEOUT = 1.5  # seconds a heartbeat waits for one master, to connect and to be answered
SUMMARY_EVERY = 3600  # heartbeats between two summary lines in the log (an hour at 1 s)


def heartbeat_until(masters: Masters, config: AgentConfig, stopping: threading.Event,
                    pods_changed: Callable[[int], None] | None = None,
                    fence: SelfFence | None = None, runtime: RuntimeHealth | None = None,
                    metrics: AgentMetrics | None = None) -> None:
    """One small request per interval, to any master; nothing accumulates between beats. Each
    carries the host's usage and whether its container engine works (`runtime`'s latest check).
    The answer tells the revision of the node's pods (`pods_changed`: the probe runner's cue), and
    the interval to beat at once the cluster is large: the masters stretch it as the cluster grows,
    as Nomad's servers tell their clients the TTL (master/heartbeat_rate.py); until a master has
    told one, and whenever an answer tells none (a small cluster, an older master), the configured
    `heartbeat_interval`.

    Counters only (no list of past beats), so the agent can run for months; a summary line
    every SUMMARY_EVERY beats tells an operator (and bench/agent_soak.py) it is alive; `metrics`
    counts each beat's end and times each answer (agent/prometheus.py).
    """
    metrics = metrics or AgentMetrics()
    path = f"/api/v1/nodes/{config.name}/heartbeat"
    sent = refused = unanswered = 0
    interval = config.heartbeat_interval
    while not stopping.wait(interval):
        sent += 1
        if sent % SUMMARY_EVERY == 0:
            log.info("%d heartbeats sent: %d refused, %d unanswered", sent, refused, unanswered)
        body = {**usage(), **(runtime.report() if runtime else {})}
        sent_at = time.monotonic()
        try:
            answer = masters.call("POST", path, body)
            metrics.heartbeat("accepted", time.monotonic() - sent_at)
        except MasterUnavailable as err:
            metrics.heartbeat("unanswered")
            unanswered += 1
            log.warning("heartbeat: %s", err)
            if fence is not None:
                fence.no_answer()
            continue
        except ApiError as err:
            metrics.heartbeat("refused", time.monotonic() - sent_at)
            if err.status == 404:  # the Node was deleted: register it again
                _register_until_done(masters, config, stopping)
            else:
                refused += 1
                log.warning("heartbeat refused: %s", err)
                if fence is not None:
                    fence.no_answer()  # not accepted: as good as unanswered for the fence
            continue
        if fence is not None and (fenced := fence.contact()) is not None and report_fenced(
                masters, config.name, fenced):
            fence.reported()
        if pods_changed is not None:
            pods_changed(_pods_revision(answer))
        told = told_interval(answer, config.heartbeat_interval)
        if told != interval:
            log.info("heartbeating every %gs, as the masters tell", told)
            interval = told


def report_fenced(masters: Masters, name: str, fenced: Fenced) -> bool:
    """The Node's SelfFenced condition (its own status, which an agent may write), for the leader to
    tell as an event; read and written at one resourceVersion. False: not written (a conflict with
    the leader's own writes as the node comes back): tried again at the next beat."""
    condition = {"type": "SelfFenced", "status": "True", "reason": "NoMasterReachable",
                 "message": f"no master accepted a heartbeat for {fenced.silent_seconds:.0f} s: stopped "
                            f"{fenced.stopped} container(s) at {fenced.at}", "lastTransitionTime": fenced.at}
    for _ in range(3):
        try:
            node = masters.call("GET", f"/api/v1/nodes/{name}") or {}
            status = node.get("status") or {}
            others = [c for c in status.get("conditions") or [] if c.get("type") != "SelfFenced"]
            read_at = (node.get("metadata") or {}).get("resourceVersion")
            body = {"metadata": {"resourceVersion": read_at},
                    "status": {**status, "conditions": [*others, condition]}}
            masters.call("PUT", f"/api/v1/nodes/{name}/status", body)
            return True
        except (ApiError, MasterUnavailable) as err:
            log.warning("reporting the self-fence: %s", err)
    return False


MIN_TOLD_INTERVAL, MAX_TOLD_INTERVAL = 0.2, 60.0  # what an agent takes from a master's answer


def told_interval(answer: object, configured: float) -> float:
    """The interval a heartbeat's answer tells (`heartbeatIntervalSeconds`), kept within
    [MIN_TOLD_INTERVAL, MAX_TOLD_INTERVAL] so no answer can make an agent flood the masters or
    fall silent; `configured` when the answer tells none or something that is not a number."""
    told = answer.get("heartbeatIntervalSeconds") if isinstance(answer, dict) else None
    if isinstance(told, bool) or not isinstance(told, int | float) or told != told:  # NaN
        return configured
    return min(MAX_TOLD_INTERVAL, max(MIN_TOLD_INTERVAL, float(told)))


def _pods_revision(answer: object) -> int:
    try:
        return int(answer.get("podsRevision") or 0)  # type: ignore[attr-defined] - checked below
    except (ValueError, AttributeError, TypeError):
        return 0


if __name__ == "__main__":
    main()
