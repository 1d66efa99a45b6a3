"""Packets traced through the rendered policy rules, against Kubernetes' semantics read straight from
the objects (an oracle that shares no code with agent/network_policy.py), on clusters Hypothesis
makes: as kube-proxy's helpers_test.go traces packets through its nftables rules."""

from __future__ import annotations

import ipaddress
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.network_policy import resolve
from agent.ruleset import render

NODE = "h1"
NAMESPACES = ("default", "other")
LABELS = st.fixed_dictionaries({}, optional={"app": st.sampled_from(["a", "b"]),
                                             "role": st.sampled_from(["x", "y"])})
SELECTOR = st.fixed_dictionaries({}, optional={
    "matchLabels": st.fixed_dictionaries({}, optional={"app": st.sampled_from(["a", "b"])}),
    "matchExpressions": st.lists(st.one_of(
        st.fixed_dictionaries({"key": st.just("role"), "operator": st.sampled_from(["In", "NotIn"]),
                               "values": st.lists(st.sampled_from(["x", "y"]), min_size=1, max_size=2)}),
        st.fixed_dictionaries({"key": st.sampled_from(["role", "app"]),
                               "operator": st.sampled_from(["Exists", "DoesNotExist"])})), max_size=1)})
NS_SELECTOR = st.fixed_dictionaries({}, optional={"matchLabels": st.fixed_dictionaries(
    {}, optional={"team": st.sampled_from(["t1", "t2"])})})
PEER = st.one_of(
    st.fixed_dictionaries({"podSelector": SELECTOR}),
    st.fixed_dictionaries({"namespaceSelector": NS_SELECTOR}),
    st.fixed_dictionaries({"podSelector": SELECTOR, "namespaceSelector": NS_SELECTOR}),
    st.fixed_dictionaries({"ipBlock": st.sampled_from([
        {"cidr": "10.244.0.0/24"}, {"cidr": "10.244.0.0/24", "except": ["10.244.0.4/30"]},
        {"cidr": "10.244.0.0/16", "except": ["10.244.0.8/29", "10.244.0.0/30"]}])}))
PORT = st.one_of(
    st.fixed_dictionaries({"port": st.sampled_from([80, 53, 8080])},
                          optional={"protocol": st.sampled_from(["TCP", "UDP"])}),
    st.fixed_dictionaries({"port": st.just(80), "endPort": st.sampled_from([80, 90, 8080])}),
    st.fixed_dictionaries({"port": st.sampled_from(["http", "dns"])},
                          optional={"protocol": st.sampled_from(["TCP", "UDP"])}),
    st.fixed_dictionaries({"protocol": st.sampled_from(["TCP", "UDP"])}))
RULE = st.fixed_dictionaries({}, optional={"peers": st.lists(PEER, max_size=2),
                                           "ports": st.lists(PORT, max_size=2)})
POLICY = st.fixed_dictionaries({
    "namespace": st.sampled_from(NAMESPACES), "podSelector": SELECTOR,
    "types": st.sampled_from([["Ingress"], ["Egress"], ["Ingress", "Egress"]]),
    "ingress": st.lists(RULE, max_size=2), "egress": st.lists(RULE, max_size=2)})
POD = st.fixed_dictionaries({"namespace": st.sampled_from(NAMESPACES), "labels": LABELS,
                             "local": st.booleans(), "http": st.sampled_from([80, 8080, None])})


def objects(pods: list[dict], policies: list[dict], team: dict[str, str]) -> tuple[list, list, list]:
    made_pods = []
    for i, p in enumerate(pods):
        ports = [{"name": "dns", "containerPort": 53, "protocol": "UDP"}]
        if p["http"]:
            ports.append({"name": "http", "containerPort": p["http"], "protocol": "TCP"})
        made_pods.append({"metadata": {"name": f"p{i}", "namespace": p["namespace"], "labels": p["labels"]},
                          "spec": {"nodeName": NODE if p["local"] else "h2",
                                   "containers": [{"ports": ports}]},
                          "status": {"phase": "Running", "podIP": f"10.244.0.{i + 2}"}})
    made_policies = []
    for i, p in enumerate(policies):
        def rules(key: str, peers_key: str, p: dict = p) -> list[dict]:
            return [{**({peers_key: r["peers"]} if "peers" in r else {}),
                     **({"ports": r["ports"]} if "ports" in r else {})} for r in p[key]]
        made_policies.append({"metadata": {"name": f"np{i}", "namespace": p["namespace"]},
                              "spec": {"podSelector": p["podSelector"], "policyTypes": p["types"],
                                       "ingress": rules("ingress", "from"), "egress": rules("egress", "to")}})
    namespaces = [{"metadata": {"name": ns, "labels": {"team": team[ns]}}} for ns in NAMESPACES]
    return made_pods, made_policies, namespaces


# --- the oracle: Kubernetes' reading, straight from the objects ----------------------------

def matches(selector: dict, labels: dict) -> bool:
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        has, value, values = e["key"] in labels, labels.get(e["key"]), e.get("values", [])
        if not {"In": has and value in values, "NotIn": not has or value not in values,
                "Exists": has, "DoesNotExist": not has}[e["operator"]]:
            return False
    return True


def peer_matches(peer: dict, policy_ns: str, other: dict | None, other_ip: str, ns_labels: dict) -> bool:
    if "ipBlock" in peer:
        address = ipaddress.IPv4Address(other_ip)
        block = peer["ipBlock"]
        return address in ipaddress.IPv4Network(block["cidr"]) and not any(
            address in ipaddress.IPv4Network(e) for e in block.get("except") or [])
    if other is None:
        return False
    meta = other["metadata"]
    if "namespaceSelector" in peer:
        labels = {**ns_labels[meta["namespace"]], "kubernetes.io/metadata.name": meta["namespace"]}
        if not matches(peer["namespaceSelector"], labels):
            return False
    elif meta["namespace"] != policy_ns:
        return False
    return "podSelector" not in peer or matches(peer["podSelector"], meta["labels"])


def port_matches(entry: dict, protocol: str, port: int, named_in: dict) -> bool:
    if entry.get("protocol", "TCP") != protocol:
        return False
    wanted = entry.get("port")
    if wanted is None:
        return True
    if isinstance(wanted, str):
        return any(p["name"] == wanted and p["protocol"] == protocol and p["containerPort"] == port
                   for p in named_in["spec"]["containers"][0]["ports"])
    return wanted <= port <= entry.get("endPort", wanted)


def direction_allows(pod: dict, direction: str, other: dict | None, other_ip: str, protocol: str, port: int,
                     policies: list, ns_labels: dict) -> bool:
    kind, peers_key = ("Ingress", "from") if direction == "ingress" else ("Egress", "to")
    selecting = [p for p in policies if p["metadata"]["namespace"] == pod["metadata"]["namespace"]
                 and kind in p["spec"]["policyTypes"]
                 and matches(p["spec"]["podSelector"], pod["metadata"]["labels"])]
    if not selecting:
        return True
    named_in = pod if direction == "ingress" else other
    for policy in selecting:
        for rule in policy["spec"][direction]:
            peers = rule.get(peers_key) or []
            if peers and not any(peer_matches(p, policy["metadata"]["namespace"], other, other_ip, ns_labels)
                                 for p in peers):
                continue
            ports = rule.get("ports") or []
            if not ports:
                return True
            if named_in is not None and any(port_matches(e, protocol, port, named_in) for e in ports):
                return True  # a named port is the selected pod's (ingress) or the peer pod's (egress)
            if named_in is None and any(not isinstance(e.get("port"), str)
                                        and port_matches(e, protocol, port, {}) for e in ports):
                return True  # no pod there: numbers only
    return False


# --- the trace: a packet through the rendered forward chain ---------------------------------

def parse(table: str) -> tuple[dict, dict, dict]:
    sets = {m[1]: [e.strip() for e in m[2].split(",")] for m in re.finditer(
        r"set (np-peers-\w+) \{[^}]*elements = \{ ([^}]*) \}", table)}
    maps = {m[1]: dict(e.split(" : jump ") for e in m[2].split(", ")) for m in re.finditer(
        r"map policy-(\w+) \{[^}]*?elements = \{ ([^}]*) \}", table)}
    chains = {m[1]: [line.strip() for line in m[2].strip().splitlines()] for m in re.finditer(
        r"chain (np-(?:ingress|egress)-\w+) \{\n(.*?)\n\t\}", table, re.S)}
    return sets, maps, chains


def in_set(ip: str, elements: list[str]) -> bool:
    return any(ipaddress.IPv4Address(ip) in ipaddress.IPv4Network(e) for e in elements)


def chain_allows(lines: list[str], sets: dict, src: str, dst: str, protocol: str, port: int) -> bool:
    for line in lines:
        if line == "drop":
            return False
        rest = line.removesuffix("return").strip()
        ok = True
        if rest.startswith("ip daddr . meta l4proto . th dport"):
            triples = re.search(r"\{ (.*) \}", rest)[1].split(", ")
            ok = f"{dst} . {protocol} . {port}" in triples
            rest = ""
        for side, name in re.findall(r"ip (saddr|daddr) @(\S+)", rest):
            ok = ok and in_set(src if side == "saddr" else dst, sets[name])
        if m := re.search(r"meta l4proto (tcp|udp)", rest):
            ok = ok and protocol == m[1]
        if m := re.search(r"(tcp|udp) dport \{ (.*) \}", rest):
            spans = [tuple(map(int, (x.split("-") * 2)[:2])) for x in m[2].split(", ")]
            ok = ok and protocol == m[1] and any(a <= port <= b for a, b in spans)
        if ok:
            return True
    raise AssertionError(f"a chain without a final verdict: {lines}")


def traced(table: str, src: str, dst: str, protocol: str, port: int) -> bool:
    sets, maps, chains = parse(table)
    for direction, address in (("egress", src), ("ingress", dst)):
        chain = maps.get(direction, {}).get(address)
        if chain and not chain_allows(chains[chain], sets, src, dst, protocol, port):
            return False
    return True


@settings(max_examples=500, deadline=None)
@given(pods=st.lists(POD, min_size=2, max_size=5), policies=st.lists(POLICY, max_size=3),
       team=st.fixed_dictionaries({ns: st.sampled_from(["t1", "t2"]) for ns in NAMESPACES}),
       outside=st.sampled_from(["10.244.0.5", "10.244.0.9", "10.244.7.1", "192.168.1.1"]))
def test_every_packet_meets_kubernetes_verdict(pods: list, policies: list, team: dict, outside: str) -> None:
    made_pods, made_policies, namespaces = objects(pods, policies, team)
    table = render("10.244.0.0/24", [], [], resolve(made_policies, made_pods, namespaces, NODE))
    by_ip = {p["status"]["podIP"]: p for p in made_pods}
    addresses = [*by_ip, outside]  # an address no pod holds: only ipBlocks (or none) may allow it
    for src in addresses:
        for dst in addresses:
            source, target = by_ip.get(src), by_ip.get(dst)
            if src == dst or (source is None and target is None):
                continue
            for protocol, port in (("tcp", 80), ("tcp", 85), ("tcp", 8080), ("udp", 53), ("udp", 80)):
                k8s = "TCP" if protocol == "tcp" else "UDP"
                ns_labels = namespaces_of(team)
                expected = all((  # each side judged on its own host: here, only this node's pods
                    source is None or source["spec"]["nodeName"] != NODE
                    or direction_allows(source, "egress", target, dst, k8s, port, made_policies, ns_labels),
                    target is None or target["spec"]["nodeName"] != NODE
                    or direction_allows(target, "ingress", source, src, k8s, port, made_policies, ns_labels)))
                assert traced(table, src, dst, protocol, port) == expected, (src, dst, protocol, port, table)


def namespaces_of(team: dict[str, str]) -> dict[str, dict[str, str]]:
    return {ns: {"team": t} for ns, t in team.items()}
