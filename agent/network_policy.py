"""NetworkPolicies resolved into what each of this host's pods may send and receive: pure, no I/O.

Kubernetes' semantics (networking.k8s.io/v1): a pod no policy selects is open. A pod selected by a
policy whose policyTypes name Ingress is isolated for ingress, and then takes only what the
ingress rules of all the policies selecting it allow (their union); egress likewise, apart. A rule
allows traffic from (to) any of its peers, on any of its ports; an empty `from` (`to`) is every
peer, empty `ports` every port. A peer is a podSelector (pods of the policy's namespace), a
namespaceSelector (every pod of the namespaces it selects, a namespace's labels carrying
`kubernetes.io/metadata.name` as Kubernetes sets it), both (the pods selected in those
namespaces), or an ipBlock (its `cidr` less its `except`s). A named port is looked up in the
selected pod's containers for ingress, in each peer pod's for egress.

What the data path needs is plain data: per pod of this node that some policy isolates, its
address and, per direction, a tuple of `Allow`s (None: not isolated that way). Everything read
here came through the API, which validated it; it is parsed again (addresses, CIDRs, port
numbers) because it becomes nftables text.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from berth.objects import Obj
from berth.podnet import ipv4_address

PROTOCOLS = {"TCP": "tcp", "UDP": "udp"}
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"  # every namespace has it, as in Kubernetes
TERMINAL = ("Succeeded", "Failed")


@dataclass(frozen=True, order=True)
class Ports:
    """One protocol's ports: (first, last) ranges; none: every port of the protocol."""

    protocol: str  # nft's: tcp or udp
    ranges: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, order=True)
class Allow:
    """What one rule lets through for one pod. `peers`: the other side's networks (collapsed CIDRs),
    None for anyone; `ports`: None for any. `endpoints`: instead of peers and ports, exact (address,
    protocol, port) triples: an egress rule's named ports, resolved in each peer pod."""

    peers: tuple[str, ...] | None = None
    ports: tuple[Ports, ...] | None = None
    endpoints: tuple[tuple[str, str, int], ...] = ()


@dataclass(frozen=True, order=True)
class PodRules:
    ip: str
    namespace: str
    name: str
    ingress: tuple[Allow, ...] | None  # None: not isolated for ingress
    egress: tuple[Allow, ...] | None


@dataclass(frozen=True)
class _Pod:
    namespace: str
    name: str
    ip: str
    node: str | None
    labels: Mapping[str, str]
    ports: Mapping[tuple[str, str], int]  # (name, protocol) -> number


def _dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _port(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536 else None


def _pod(obj: Obj) -> _Pod | None:
    meta, spec, status = _dict(obj.get("metadata")), _dict(obj.get("spec")), _dict(obj.get("status"))
    ip = ipv4_address(status.get("podIP"))
    if not ip or status.get("phase") in TERMINAL:
        return None
    named = {}
    for container in spec.get("containers") or []:
        for port in _dict(container).get("ports") or []:
            port = _dict(port)
            number, protocol = _port(port.get("containerPort")), PROTOCOLS.get(port.get("protocol", "TCP"))
            if isinstance(port.get("name"), str) and number and protocol:
                named.setdefault((port["name"], protocol), number)
    labels = {str(k): str(v) for k, v in _dict(meta.get("labels")).items()}
    return _Pod(str(meta.get("namespace") or "default"), str(meta.get("name") or ""), ip,
                spec.get("nodeName"), labels, named)


def selects(selector: object, labels: Mapping[str, str]) -> bool:
    """Kubernetes' LabelSelector: every matchLabels pair and every expression holds; {} selects all.
    A selector that cannot be read selects nothing (never everything)."""
    if not isinstance(selector, dict):
        return False
    for key, value in _dict(selector.get("matchLabels")).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        expression = _dict(expression)
        key, operator = expression.get("key"), expression.get("operator")
        values = expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True


def _ip_block(block: dict) -> list[ipaddress.IPv4Network]:
    try:
        networks = [ipaddress.IPv4Network(block.get("cidr"))]
        for excepted in block.get("except") or []:
            cut = ipaddress.IPv4Network(excepted)
            networks = [part for network in networks
                        for part in ((network,) if not cut.overlaps(network) else
                                     () if network.subnet_of(cut) else network.address_exclude(cut))]
    except (ValueError, TypeError):
        return []
    return networks


class _Cluster:
    """The pods and namespaces as the resolution asks for them, indexed once."""

    def __init__(self, pods: Iterable[Obj], namespaces: Iterable[Obj]) -> None:
        self.pods = [p for p in (_pod(o) for o in pods) if p is not None]
        self.by_namespace: dict[str, list[_Pod]] = {}
        for pod in self.pods:
            self.by_namespace.setdefault(pod.namespace, []).append(pod)
        self._peers: dict[tuple[str, str], list[_Pod]] = {}  # (namespace, peer) -> its pods, asked once
        self.namespace_labels: dict[str, dict[str, str]] = {}
        for ns in namespaces:
            meta = _dict(ns.get("metadata"))
            if isinstance(meta.get("name"), str):
                self.namespace_labels[meta["name"]] = {
                    **{str(k): str(v) for k, v in _dict(meta.get("labels")).items()},
                    NAMESPACE_NAME_LABEL: meta["name"]}

    def labels_of_namespace(self, name: str) -> dict[str, str]:
        return self.namespace_labels.get(name) or {NAMESPACE_NAME_LABEL: name}

    def peer_pods(self, peer: dict, namespace: str) -> list[_Pod]:
        """The pods a peer names, seen from a policy of `namespace` (the same peer in many policies is
        worked out once)."""
        key = (namespace, json.dumps(peer, sort_keys=True))
        if key not in self._peers:
            self._peers[key] = self._peer_pods(peer, namespace)
        return self._peers[key]

    def _peer_pods(self, peer: dict, namespace: str) -> list[_Pod]:
        pod_selector, ns_selector = peer.get("podSelector"), peer.get("namespaceSelector")
        if ns_selector is None:
            spaces = [namespace]
        else:
            spaces = [ns for ns in {*self.by_namespace, *self.namespace_labels}
                      if selects(ns_selector, self.labels_of_namespace(ns))]
        found = [p for ns in spaces for p in self.by_namespace.get(ns, ())]
        return found if pod_selector is None else [p for p in found if selects(pod_selector, p.labels)]


def _number(ip: str) -> int:
    return int.from_bytes(socket.inet_aton(ip), "big")  # parsed already (ipv4_address): a tenth of ipaddress


def _networks(blocks: list[ipaddress.IPv4Network], ips: Iterable[str]) -> tuple[str, ...]:
    """The blocks (collapsed) and the addresses no block holds, in address order: elements of an
    interval set, which must not overlap. A pod's address is not made an ipaddress object: a rule
    may name thousands of pods and be resolved at every change."""
    collapsed = list(ipaddress.collapse_addresses(blocks))
    spans = [(int(n.network_address), int(n.broadcast_address)) for n in collapsed]
    found = [(int(n.network_address), str(n.network_address) if n.prefixlen == 32 else str(n))
             for n in collapsed]
    for ip in ips:
        number = _number(ip)
        if not any(first <= number <= last for first, last in spans):
            found.append((number, ip))
    return tuple(text for _, text in sorted(found))


@dataclass(frozen=True)
class _Rule:
    """One rule, resolved once for every pod its policy selects: peers as networks (None: anyone),
    the pods among them (for egress named ports), and its port entries."""

    peers: tuple[str, ...] | None
    peer_pods: tuple[_Pod, ...] | None
    ports: tuple[dict, ...]
    spans: tuple[tuple[int, int], ...] = ()  # its ipBlocks' networks, as first and last address

    def in_blocks(self, pods: list[_Pod]) -> list[_Pod]:
        """The pods whose address an ipBlock of the rule holds, not selected already."""
        if not self.spans:
            return []
        selected = {p.ip for p in self.peer_pods or ()}
        return [p for p in pods if p.ip not in selected
                and any(first <= _number(p.ip) <= last for first, last in self.spans)]


def _rule(rule: dict, peers_key: str, namespace: str, cluster: _Cluster) -> _Rule:
    listed = [_dict(p) for p in rule.get(peers_key) or []]
    ports = tuple(_dict(p) for p in rule.get("ports") or [])
    if not listed:
        return _Rule(None, None, ports)
    blocks: list[ipaddress.IPv4Network] = []
    pods: dict[str, _Pod] = {}
    for peer in listed:
        if "ipBlock" in peer:
            blocks += _ip_block(_dict(peer["ipBlock"]))
        elif "podSelector" in peer or "namespaceSelector" in peer:
            for pod in cluster.peer_pods(peer, namespace):
                pods[pod.ip] = pod
    spans = tuple((int(n.network_address), int(n.broadcast_address)) for n in blocks)
    return _Rule(_networks(blocks, pods), tuple(pods[ip] for ip in sorted(pods, key=_number)), ports, spans)


Numbered = tuple[str, int | None, int | None]  # protocol, first, last (None: every port)


def _numbered(entry: dict, named_in: Mapping[tuple[str, str], int] | None) -> Numbered | None:
    """(protocol, first, last) of a port entry; a name through `named_in`; None: matches nothing."""
    protocol = PROTOCOLS.get(entry.get("protocol", "TCP"))
    port = entry.get("port")
    if protocol is None:
        return None
    if port is None:
        return protocol, None, None
    if isinstance(port, str):
        number = (named_in or {}).get((port, protocol))
        return (protocol, number, number) if number else None
    first = _port(port)
    if first is None:
        return None
    last = _port(entry.get("endPort")) or first
    return protocol, first, max(first, last)


def _ports(entries: Iterable[Numbered]) -> tuple[Ports, ...]:
    by_protocol: dict[str, set[tuple[int, int]] | None] = {}
    for protocol, first, last in entries:
        if first is None or last is None:
            by_protocol[protocol] = None  # every port of it
        elif protocol not in by_protocol or by_protocol[protocol] is not None:
            by_protocol.setdefault(protocol, set()).add((first, last))  # type: ignore[union-attr]
    return tuple(Ports(p, tuple(sorted(r)) if r is not None else ()) for p, r in sorted(by_protocol.items()))


def _ingress_allow(rule: _Rule, target: _Pod) -> list[Allow]:
    if not rule.ports:
        return [Allow(rule.peers, None)] if rule.peers is None or rule.peers else []
    entries = [e for e in (_numbered(p, target.ports) for p in rule.ports) if e]
    if not entries or (rule.peers is not None and not rule.peers):
        return []
    return [Allow(rule.peers, _ports(entries))]


def _egress_allow(rule: _Rule, everyone: list[_Pod]) -> list[Allow]:
    if not rule.ports:
        return [Allow(rule.peers, None)] if rule.peers is None or rule.peers else []
    numbered = [e for e in (_numbered(p, None) for p in rule.ports
                            if not isinstance(p.get("port"), str)) if e]
    allows = [Allow(rule.peers, _ports(numbered))] if numbered and (rule.peers is None or rule.peers) else []
    named = [p for p in rule.ports if isinstance(p.get("port"), str)]
    if named:  # the name is the peer pod's: one triple per pod that has it (anyone: every pod; an
        # ipBlock: every pod in it)
        peers = everyone if rule.peer_pods is None else [*rule.peer_pods, *rule.in_blocks(everyone)]
        triples = {(pod.ip, protocol, number) for pod in peers for entry in named
                   for protocol, number, _ in [_numbered(entry, pod.ports) or ("", None, None)] if number}
        if triples:
            allows.append(Allow(endpoints=tuple(sorted(triples))))
    return allows


def _types(spec: dict) -> list[str]:
    types = spec.get("policyTypes")
    if isinstance(types, list):
        return [t for t in types if t in ("Ingress", "Egress")]
    return ["Ingress", *(["Egress"] if spec.get("egress") else [])]


def resolve(policies: Iterable[Obj], pods: Iterable[Obj], namespaces: Iterable[Obj],
            node: str) -> list[PodRules]:
    """The rules of each pod bound to `node` that some policy isolates, sorted by address (an
    unchanged cluster resolves to the same rules, and the same table)."""
    cluster = _Cluster(pods, namespaces)
    mine = [p for p in cluster.pods if p.node == node]
    mine_by_namespace: dict[str, list[_Pod]] = {}
    for pod in mine:
        mine_by_namespace.setdefault(pod.namespace, []).append(pod)
    rules_seen: dict[str, _Rule] = {}  # the same rule in several policies of a namespace: resolved once

    def rule_of(rule: object, peers_key: str, namespace: str) -> _Rule:
        key = json.dumps([namespace, peers_key, rule], sort_keys=True)
        if key not in rules_seen:
            rules_seen[key] = _rule(_dict(rule), peers_key, namespace, cluster)
        return rules_seen[key]

    ingress: dict[str, list[Allow]] = {}
    egress: dict[str, list[Allow]] = {}
    for policy in sorted(policies, key=lambda o: (_dict(o.get("metadata")).get("namespace") or "",
                                                   _dict(o.get("metadata")).get("name") or "")):
        namespace = str(_dict(policy.get("metadata")).get("namespace") or "default")
        spec = _dict(policy.get("spec"))
        targets = [p for p in mine_by_namespace.get(namespace, ())
                   if selects(spec.get("podSelector"), p.labels)]
        if not targets:
            continue
        types = _types(spec)
        if "Ingress" in types:
            rules = [rule_of(r, "from", namespace) for r in spec.get("ingress") or []]
            for target in targets:
                ingress.setdefault(target.ip, []).extend(a for r in rules for a in _ingress_allow(r, target))
        if "Egress" in types:
            rules = [rule_of(r, "to", namespace) for r in spec.get("egress") or []]
            allows = [a for r in rules for a in _egress_allow(r, cluster.pods)]
            for target in targets:
                egress.setdefault(target.ip, []).extend(allows)
    found = []
    for pod in sorted(mine, key=lambda p: ipaddress.IPv4Address(p.ip)):
        if pod.ip in ingress or pod.ip in egress:
            found.append(PodRules(pod.ip, pod.namespace, pod.name,
                                  _unique(ingress[pod.ip]) if pod.ip in ingress else None,
                                  _unique(egress[pod.ip]) if pod.ip in egress else None))
    return found


def _unique(allows: list[Allow]) -> tuple[Allow, ...]:
    """Sorted, each once; an Allow of anyone on any port makes the others moot."""
    if Allow(None, None) in allows:
        return (Allow(None, None),)
    return tuple(sorted(set(allows), key=lambda a: (a.peers is None, a.peers or (), a.ports is None,
                                                     a.ports or (), a.endpoints)))
