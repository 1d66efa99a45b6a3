"""`berth describe netpol`, laid out as kubectl's page for a NetworkPolicy."""

from __future__ import annotations

from datetime import datetime

from berth.cli.columns import label_selector_text
from berth.cli.describe import events_lines, header, section
from berth.objects import Obj

WIDTH = 22


def _peer_lines(peer: Obj) -> list[str]:
    if isinstance(peer.get("ipBlock"), dict):
        block = peer["ipBlock"]
        excepted = ", ".join(block.get("except") or [])
        return ["IPBlock:", f"  CIDR: {block.get('cidr')}", f"  Except: {excepted}"]
    lines = []
    if "podSelector" in peer:
        lines.append(f"PodSelector: {label_selector_text(peer.get('podSelector'))}")
    if "namespaceSelector" in peer:
        lines.append(f"NamespaceSelector: {label_selector_text(peer.get('namespaceSelector'))}")
    return lines


def _rules(rules: list[Obj], key: str, word: str) -> list[str]:
    lines: list[str] = []
    for number, rule in enumerate(rules):
        if number:
            lines.append("    ----------")
        ports = rule.get("ports") or []
        if not ports:
            lines.append("    To Port: <any> (traffic allowed to all ports)")
        for port in ports:
            end = f"-{port['endPort']}" if port.get("endPort") else ""
            lines.append(f"    To Port: {port.get('port', '<any>')}{end}/{port.get('protocol', 'TCP')}")
        peers = rule.get(key) or []
        if not peers:
            side = "source" if key == "from" else "destination"
            lines.append(f"    {word}: <any> (traffic not restricted by {side})")
        else:
            lines.append(f"    {word}:")
            for peer in peers:
                lines += [f"      {line}" for line in _peer_lines(peer)]
    return lines


def describe_policy(policy: Obj, events: list[Obj] | None, now: datetime,
                    events_error: str | None = None) -> str:
    spec = policy.get("spec") or {}
    types = spec.get("policyTypes") or ["Ingress"]
    lines = header(policy, WIDTH)
    lines.append("Spec:")
    lines.append(f"  PodSelector:     {label_selector_text(spec.get('podSelector'))} "
                 f"(Allowing the specific traffic to pods in this namespace)")
    for direction, key, word in (("Ingress", "from", "From"), ("Egress", "to", "To")):
        traffic = "ingress" if direction == "Ingress" else "egress"
        rules = spec.get(traffic) or []
        if direction not in types:
            lines.append(f"  Not affecting {traffic} traffic")
        elif not rules:
            lines.append(f"  Allowing {traffic} traffic:")
            lines.append(f"    <none> (Selected pods are isolated for {traffic} connectivity)")
        else:
            lines.append(f"  Allowing {traffic} traffic:")
            lines += _rules(rules, key, word)
    section(lines, "  Policy Types", [", ".join(types)], WIDTH)
    lines += events_lines(policy, events, now, events_error)
    return "\n".join(lines) + "\n"
