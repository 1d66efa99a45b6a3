"""One master: the store, the API app, the agents' soft state and the leader loops, in one object.

The Server watches leadership. When this master becomes the leader it starts a term:
the books forget what an earlier term heard (ReportBooks.new_term), then every loop
leads. When it stops leading, every loop follows at once: no round starts, and the
background work a loop began (graceful stops, liveness restarts) is cancelled or fenced
(LeaderLoop.stopped_leading). Rounds are fenced as well: each loop asks the store again
before a round, and the runtime commits a Raft barrier before it acts on a host.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from flask import Flask

from master.api.app import create_app
from master.api.audit_log import AuditLog
from master.api.auth import TokenBook
from master.api.context import ApiContext
from master.api.streams import StreamSlots
from master.autoscaling.decide import Settings as AutoscalerSettings
from master.config import MasterConfig
from master.controllers.autoscaler import Autoscaler
from master.controllers.deployments import DeploymentController
from master.controllers.disruption import DisruptionController
from master.controllers.endpoints import EndpointsController
from master.controllers.event_reaper import EventReaper
from master.controllers.garbage_collector import GarbageCollector
from master.controllers.leader_loop import LeaderLoop
from master.controllers.namespaces import NamespaceController
from master.controllers.node_check import NodeCheck
from master.controllers.node_ipam import NodeIpam
from master.controllers.node_lifecycle import NodeLifecycle
from master.controllers.rebalancer import Rebalancer
from master.controllers.replicasets import ReplicaSetController
from master.controllers.scheduling import SchedulingController
from master.controllers.taint_eviction import TaintEviction
from master.controllers.volumes import SshCommands, VolumeController
from master.observability import ClusterCollector, MasterMetrics
from master.peer_auth import peer_key
from master.rbac.cache import RbacCache
from master.reports.books import ReportBooks
from master.reports.relay import ReportRelay
from master.runtime.attention import Attention
from master.runtime.controller import RuntimeController
from master.runtime.planner import Backoff
from master.runtime.ssh import SshPool
from master.store.encryption import Keyring
from master.store.replicated import Store

log = logging.getLogger(__name__)
LEADERSHIP_POLL_SECONDS = 0.1  # how soon a change of leader reaches the loops


class Server:
    def __init__(self, config: MasterConfig, tokens: TokenBook, password: str | None,
                 ssh: SshPool | None, user_ssh: SshPool | None, keyring: Keyring | None = None) -> None:
        """`ssh`: the runtime's pool; `user_ssh`: logs and exec (a user's streams never hold the
        sessions the runtime needs). Either is None without an SSH key. `keyring`: what seals
        Secrets (None: stored in clear)."""
        self.config = config
        self.metrics = MasterMetrics()  # this master's alone (`GET /metrics`, master/observability.py)
        self.store = Store(config.raft_address, config.peers, config.data_dir, password, config.timings,
                           window_size=config.watch_window, window_bytes=config.watch_window_bytes,
                           write_timeout=config.write_timeout, keyring=keyring, metrics=self.metrics)
        self.books = ReportBooks(Attention(config.runtime_resync_seconds), self.store)
        self.store.add_listener(self.books.pod_revisions.observe)
        key = peer_key(password) if password else None
        self.audit = AuditLog(os.path.join(config.data_dir, "audit.log"), config.audit_log_max_bytes,
                              config.audit_log_backups)
        self.ctx = ApiContext(store=self.store, tokens=tokens, max_body_bytes=config.max_body_bytes,
                              max_object_bytes=config.max_object_bytes,
                              streams=StreamSlots(config.stream_limit, config.stream_limit_per_token),
                              peer_apis=config.peer_apis, peer_ca_file=config.tls_ca_file,
                              peer_key=key, ssh=user_ssh, books=self.books,
                              default_eviction_seconds=config.default_eviction_seconds,
                              max_heartbeats_per_second=config.max_heartbeats_per_second,
                              rebalance=config.rebalance_config(), service_cidr=config.service_cidr,
                              host_path_namespaces=list(config.host_path_namespaces),
                              service_node_port_range=config.service_node_port_range, audit=self.audit,
                              rbac=RbacCache(self.store), metrics=self.metrics)
        if key is not None and config.peer_apis:
            self.ctx.relay = ReportRelay(self.store, self.books, config.peer_apis, key,
                                         period=config.heartbeat_relay_seconds, ca_file=config.tls_ca_file,
                                         metrics=self.metrics)
        else:
            log.warning("no Raft password: followers forward each agent report to the leader on its own")
        self.app: Flask = create_app(self.ctx)
        # NotReady hosts are tried on a pool of their own, with short timeouts: a gone host must
        # cost the check seconds, and never hold the runtime's sessions
        check_ssh = (SshPool(config.ssh_key_file, config.ssh_known_hosts_file, per_host=2,  # type: ignore[arg-type]
                             connect_timeout=2.0, command_timeout=5.0, session_wait=1.0)
                     if "node-check" in config.controllers and ssh is not None else None)
        self.pools = [p for p in (ssh, user_ssh, check_ssh) if p is not None]
        self.loops = [self._loops(ssh, check_ssh)[name]() for name in config.controllers]
        if config.rebalance:  # a setting of its own, not in `controllers`: it moves pods, so it is asked for
            self.loops.append(Rebalancer(self.store, self.ctx.now, self.ctx.uid, config.rebalance_config(),
                                         period=config.rebalance_period_seconds))
        for loop in self.loops:
            loop.observed = self.metrics
        self.metrics.register(ClusterCollector(
            self.store.status,
            lambda: self.store.read(lambda state: (state.list("Node"), state.list("Pod")))[0],
            lambda: [(loop.name, loop.queue_depth) for loop in self.loops]))
        self._leading = False
        self._stop = threading.Event()
        self._watch = threading.Thread(target=self._watch_leadership, name="leadership", daemon=True)

    def _loops(self, ssh: SshPool | None, check_ssh: SshPool | None) -> dict[str, Callable[[], LeaderLoop]]:
        config, store, ctx, books = self.config, self.store, self.ctx, self.books
        eviction = TaintEviction(store, ctx.now, ctx.uid, checks=books.host_checks,
                                 evict_when_unreachable=config.evict_when_host_unreachable)
        return {
            "node-lifecycle": lambda: NodeLifecycle(store, books.heartbeats, config.node_grace_seconds,
                                                    ctx.now, config.max_heartbeats_per_second),
            "scheduler": lambda: SchedulingController(store, ctx.now, ctx.uid, config.scheduler_config()),
            "taint-eviction": lambda: eviction,
            "node-check": lambda: NodeCheck(store, check_ssh, books.host_checks,  # type: ignore[arg-type]
                                            ctx.now, ctx.uid, config.agent_restart_command,
                                            period=config.host_check_seconds, on_verdict=eviction.wake),
            "event-reaper": lambda: EventReaper(store, lambda: datetime.now(UTC), config.event_ttl_seconds),
            "namespace": lambda: NamespaceController(store, ctx.now),
            "deployment": lambda: DeploymentController(store, ctx.now, ctx.uid),
            "replicaset": lambda: ReplicaSetController(store, ctx.now, ctx.uid,
                                                       default_eviction_seconds=config.default_eviction_seconds),
            "garbage-collector": lambda: GarbageCollector(store, ctx.now),
            "disruption": lambda: DisruptionController(store, ctx.now),
            "node-ipam": lambda: NodeIpam(store, config.cluster_cidr, config.node_cidr_mask_size, ctx.now,
                                          ctx.uid),
            "endpoints": lambda: EndpointsController(store, ctx.now, ctx.uid),
            "horizontal-pod-autoscaler": lambda: Autoscaler(
                store, books.metrics, ctx.now, ctx.uid,
                AutoscalerSettings(config.horizontal_pod_autoscaler_tolerance,
                                   config.horizontal_pod_autoscaler_downscale_stabilization_seconds),
                period=config.horizontal_pod_autoscaler_sync_period_seconds),
            "persistent-volume": lambda: VolumeController(store, ctx.now, ctx.uid,
                                                          SshCommands(ssh) if ssh is not None else None),
            "runtime": lambda: RuntimeController(store, ssh, ctx.now, ctx.uid,  # type: ignore[arg-type] - checked
                                                 Backoff(base=config.restart_backoff_seconds), books.probes,
                                                 books.attention),
        }

    def start(self) -> None:
        self.audit.start()
        if self.ctx.relay is not None:
            self.ctx.relay.start()
        for loop in self.loops:
            loop.start()
        self._watch.start()

    def started_leading(self) -> None:
        names, _ = self.store.read(lambda s: [n["metadata"]["name"] for n in s.list("Node")])
        self.books.new_term(names)
        log.info("leading: %d loops start a term", len(self.loops))
        for loop in self.loops:
            loop.lead()

    def stopped_leading(self) -> None:
        log.info("no longer leading: the loops stop and their background work is cancelled")
        for loop in self.loops:
            loop.follow()

    def _watch_leadership(self) -> None:
        while not self._stop.wait(LEADERSHIP_POLL_SECONDS):
            leading = self.store.is_leader()
            if leading == self._leading:
                continue
            try:
                if leading:
                    self.started_leading()
                else:
                    self.stopped_leading()
                self._leading = leading
            except Exception:  # tried again at the next poll
                log.exception("leadership change failed")

    def close(self) -> None:
        self._stop.set()
        if self._watch.is_alive():
            self._watch.join(timeout=5)
        for loop in self.loops:
            loop.stop()
        if self.ctx.relay is not None:
            self.ctx.relay.stop()
        self.ctx.sessions.close_all()
        for pool in self.pools:
            pool.close()
        self.store.close()
        self.audit.close()
