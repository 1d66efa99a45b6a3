"""This host's part of the pod network: the engine's bridge network on the node's pod CIDR,
routes to the other hosts' pods, and the host's nftables table (the Services' data path among
it). The kernel and the engine are the edges here; what to do is decided by pure functions
(routes.py, services.py, network_policy.py, ruleset.py), from what the informers hold of Nodes,
Services and Endpoints, and of NetworkPolicies, Namespaces and Pods (every pod, other nodes' as peers).

The node's pod CIDR is the masters' to give (node-ipam); until it has one and all of this is
in place, the agent's heartbeats say its runtime is not ready (runtime_health.py), so no pod
is placed on a host that cannot give it an address. Work is level-triggered: each sync
looks at every node the informer holds and puts the host right, so a missed change or a
failed command is mended by the next one (at once on a change, else every RESYNC_SECONDS).
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from agent.cluster_dns import ClusterDns
from agent.network_policy import PodRules, resolve
from agent.prometheus import AgentMetrics
from agent.routes import (
    VXLAN_DEVICE,
    VXLAN_MTU,
    Peer,
    installed_routes,
    local_networks,
    over_vxlan,
    peers,
    route_changes,
    vxlan_device,
    vxlan_peers,
    wanted_routes,
)
from agent.ruleset import render
from agent.runtime_health import failure_text
from agent.services import ServicePort, service_ports
from berth.objects import Obj
from berth.podnet import NETWORK, ROUTE_PROTOCOL, gateway, ipv4_address, ipv4_network

log = logging.getLogger(__name__)
INFORMED = ("Node", "Service", "Endpoints", "NetworkPolicy", "Namespace", "Pod")  # what its informers follow
RESYNC_SECONDS = 30.0
# At start, the table waits for every informer's first list, at most this long: a table made from
# Network policies without the pods yet would open every isolated pod of a restarted agent's host.
# Past it, what is known is rendered (an older master that refuses a kind must not keep the host's
# network down).
LIST_WAIT_SECONDS = 10.0
RETRY_SECONDS = 2.0
FORWARDING = Path("/proc/sys/net/ipv4/ip_forward")
# Bridged IPv4 (pod to pod on this host) through the ip family's hooks, so the network policies'
# forward chain sees it; per network namespace, on by default where bridge netfilter is built in
BRIDGE_FILTER = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")


def inspect_network(runtime: str) -> list[str]:
    """Prints the subnets of the engine's pod network (fails when it does not exist)."""
    template = "{{range .Subnets}}{{.Subnet}} {{end}}" if runtime == "podman" else \
        "{{range .IPAM.Config}}{{.Subnet}} {{end}}"
    return [runtime, "network", "inspect", "--format", template, "--", NETWORK]


def create_network(runtime: str, pod_cidr: str, mtu: int | None = None) -> list[str]:
    """A bridge network on the node's pod CIDR. The engine's own DNS is off (the cluster's is
    given to each pod); docker's masquerade is off too (the host's table decides NAT). `mtu`:
    the pods' (under VXLAN, room for its headers)."""
    common = ["network", "create", "--driver", "bridge", "--subnet", pod_cidr, "--gateway", gateway(pod_cidr)]
    if runtime == "podman":
        return [runtime, *common, "--disable-dns", *(["--opt", f"mtu={mtu}"] if mtu else []), "--", NETWORK]
    return [runtime, *common, "--opt", "com.docker.network.bridge.enable_ip_masquerade=false",
            *(["--opt", f"com.docker.network.driver.mtu={mtu}"] if mtu else []), "--", NETWORK]


def _run(argv: list[str], stdin: str | None = None) -> str:
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=30, check=True).stdout


class PodNetwork:
    def __init__(self, node: str, runtime: str, run: Callable[..., str] = _run,
                 forwarding: Path = FORWARDING, enabled: bool = True, dns: ClusterDns | None = None,
                 backend: str = "host-gw", bridge_filter: Path = BRIDGE_FILTER,
                 metrics: AgentMetrics | None = None) -> None:
        """`enabled` False: nothing is done, and nothing is reported wrong (an agent that does not
        run on the host it reports, as tests run one). `metrics`: counts the table's loads."""
        self.node = node
        self.metrics = metrics or AgentMetrics()
        self.backend = backend  # routes.py BACKENDS
        self._vxlan_peers: list[Peer] | None = None  # the peers whose VXLAN entries were last written
        self.dns = dns  # answers this host's pods on its bridge address (cluster_dns.py)
        self.runtime = runtime
        self.run = run
        self.forwarding = forwarding
        self.bridge_filter = bridge_filter
        self._bridge_warned = False
        self.problem: str | None = "the pod network is not set up yet" if enabled else None
        self._seen: dict[str, list[Obj]] = {kind: [] for kind in INFORMED}
        self._network_ok: str | None = None  # the pod CIDR the engine's network was found on
        self._loaded: str | None = None  # the ruleset last loaded
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._listed: set[str] = set()  # kinds whose informer has listed them
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="pod-network", daemon=True)

    def start(self) -> None:
        self._started = time.monotonic()
        self._thread.start()

    def listed(self, now: float) -> bool:
        """Every informer has listed its kind, or the wait for them is over."""
        return set(INFORMED) <= self._listed or now - self._started >= LIST_WAIT_SECONDS

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def informed(self, kind: str) -> Callable[[dict[tuple[str, str], Obj]], None]:
        """What an informer of `kind` calls with every change (in its thread): taken up by this one."""
        def changed(objects: dict[tuple[str, str], Obj]) -> None:
            self._seen[kind] = list(objects.values())
            self._listed.add(kind)
            if kind == "Service" and self.dns is not None:
                self.dns.services_changed(self._seen[kind])
            self._wake.set()
        return changed

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(RESYNC_SECONDS if self.problem is None else RETRY_SECONDS)
            self._wake.clear()
            if not self._stop.is_set() and self.listed(time.monotonic()):
                self.sync(self._seen["Node"], service_ports(self._seen["Service"], self._seen["Endpoints"]),
                          resolve(self._seen["NetworkPolicy"], self._seen["Pod"], self._seen["Namespace"],
                                  self.node))

    def sync(self, nodes: list[Obj], services: list[ServicePort] | None = None,
             policies: list[PodRules] | None = None) -> None:
        mine = next((n for n in nodes if (n.get("metadata") or {}).get("name") == self.node), None)
        # parsed again, not trusted: it becomes ip, engine and nft arguments
        pod_cidr = ipv4_network(((mine or {}).get("spec") or {}).get("podCIDR"))
        if not pod_cidr:
            self._said("no pod CIDR is assigned to this node yet (the masters' node-ipam gives one)")
            return
        try:
            self._engine_network(pod_cidr)
            if self.dns is not None:
                self.dns.serve(gateway(pod_cidr))
            self.forwarding.write_text("1\n")
            if policies:
                self._bridge_filter()
            self._routes(mine, pod_cidr, peers(nodes, self.node))
            ruleset = render(pod_cidr, [p.pod_cidr for p in peers(nodes, self.node)], services, policies)
            if ruleset != self._loaded:
                self._load(ruleset)
        except (subprocess.SubprocessError, OSError, ValueError) as err:
            self._said(f"setting up the pod network failed: {failure_text(err)}")
            return
        if self.problem is not None:
            log.info("pod network ready: pods on %s, routes to %d other node(s) (%s)", pod_cidr,
                     len(peers(nodes, self.node)), self.backend)
        self.problem = None

    def _load(self, ruleset: str) -> None:
        """The host's table replaced in one `nft -f` transaction: a data-path reload, counted."""
        try:
            self.run(["nft", "-f", "-"], stdin=ruleset)
        except BaseException:
            self.metrics.reloaded(False)
            raise
        self.metrics.reloaded(True)
        self._loaded = ruleset

    def _routes(self, mine: Obj, pod_cidr: str, all_peers: list[Peer]) -> None:
        """The VXLAN device (made whatever the backend: a peer may send over it), then each peer's
        route, direct or over it, then the VXLAN entries of the peers reached over it."""
        try:
            self.run(["ip", "-json", "link", "show", "dev", VXLAN_DEVICE])
        except subprocess.CalledProcessError:
            self._vxlan_peers = None
            local = ipv4_address((mine.get("spec") or {}).get("address"))
            if local is None:
                raise ValueError("this node's address is not an IPv4 address: VXLAN needs one") from None
            for argv in vxlan_device(local, pod_cidr):
                self.run(argv)
        networks = local_networks(self.run(["ip", "-json", "addr"]))
        installed = installed_routes(self.run(["ip", "-json", "route", "show", "proto", ROUTE_PROTOCOL]))
        for argv in route_changes(installed, wanted_routes(all_peers, self.backend, networks)):
            self.run(argv)
        tunnelled = [p for p in all_peers if over_vxlan(p, self.backend, networks)]
        if tunnelled != self._vxlan_peers:
            for argv in vxlan_peers(tunnelled):
                self.run(argv)
            self._vxlan_peers = tunnelled

    def _bridge_filter(self) -> None:
        """Written only when off. A host without bridge netfilter (the file absent) still routes and
        filters every other pod's traffic, so it is said in the log (once), not made NotReady: only a
        pod of this host reaching another of it would pass no policy."""
        if not self.bridge_filter.exists():
            if not self._bridge_warned:
                log.warning("%s is missing: traffic between pods of this host passes no network policy "
                            "(load br_netfilter)", self.bridge_filter)
            self._bridge_warned = True
            return
        if self.bridge_filter.read_text().strip() != "1":
            self.bridge_filter.write_text("1\n")

    def _said(self, problem: str) -> None:
        if problem != self.problem:
            log.warning("pod network: %s", problem)
        self.problem = problem

    def _engine_network(self, pod_cidr: str) -> None:
        """Made once; one found on another subnet is replaced only if no container uses it (the
        engine refuses to remove it otherwise, and the error says so)."""
        if self._network_ok == pod_cidr:
            return
        try:
            subnets = self.run(inspect_network(self.runtime)).split()
        except subprocess.CalledProcessError:
            subnets = None  # none yet
        if subnets is not None and subnets != [pod_cidr]:
            log.warning("the engine's network %s is on %s, this node's pod CIDR is %s: replacing it",
                        NETWORK, " ".join(subnets), pod_cidr)
            self.run([self.runtime, "network", "rm", "--", NETWORK])
        if subnets != [pod_cidr]:
            self.run(create_network(self.runtime, pod_cidr, VXLAN_MTU if self.backend == "vxlan" else None))
        self._network_ok = pod_cidr
