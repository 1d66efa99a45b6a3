"""NetworkPolicies on real lab hosts (three hosts deployed by Ansible, a master on each, so the
agents' informers follow several masters; h3 runs docker): a server selected by a
policy takes only its allowed peers, from another host and from its own, directly or through a
Service (the policy judges the pod reached, after the translation); a pod no policy selects stays
open; deleting the policy reopens the server; an egress policy with an ipBlock confines a pod, and
its DNS works only once a policy allows it. Every connection is made from inside a pod."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from berth.lab.hosts import Lab
from master.objects.conditions import ready_condition
from tests.harness import wait_until
from tests.test_lab import deployed_lab
from tests.test_network_lab import api, in_pod, pod_on, running

# the lab's making (three masters, a dockerd) is most of the first test's time
pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"), pytest.mark.timeout(480)]
POLICIES = "/api/v1/namespaces/default/networkpolicies"
SERVE = ["nc", "-ll", "-p", "9000", "-e", "hostname"]  # answers each caller with the pod's name


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with deployed_lab("np", tmp_path_factory.mktemp("cli"), "--hosts", "3", "--runtime", "h3=docker") as made:
        yield made


def labelled(name: str, node: str, labels: dict[str, str], command: list[str]) -> dict:
    pod = pod_on(name, node, command)
    pod["metadata"]["labels"] = labels
    pod["spec"]["containers"][0]["ports"] = [{"name": "serve", "containerPort": 9000}]
    return pod


def answer(lab: Lab, caller: dict, target: dict | str, port: int = 9000) -> str:
    """The target's name if the caller reaches its port (a pod's, or an address's), else ""
    (refused: dropped, 2 s)."""
    address = target if isinstance(target, str) else target["status"]["podIP"]
    called = in_pod(lab, caller, "nc", "-w", "2", address, str(port))
    return called.stdout.strip()


SERVICE = {"apiVersion": "berth/v1", "kind": "Service", "metadata": {"name": "server"},
           "spec": {"selector": {"app": "server", "tier": "front"},  # h2's server, not the docker host's
                    "ports": [{"port": 80, "targetPort": "serve"}]}}


@pytest.fixture(scope="module")
def pods(lab: Lab) -> Iterator[dict[str, dict]]:
    """server and open on h2; a client and a stranger on h1 and h2 (the near ones on h2); a server and
    a stranger on h3, the docker host."""
    h1, h2, h3 = lab.host_names()
    wait_until(lambda: all(ready_condition(api(lab, f"/api/v1/nodes/{h}").json()) for h in lab.host_names()),
               120, interval=0.5, what="every node Ready")
    made = {"server": labelled("server", h2, {"app": "server", "tier": "front"}, SERVE),
            "open": labelled("open", h2, {"app": "open"}, SERVE),
            "client": labelled("client", h1, {"role": "client"}, ["sleep", "3600"]),
            "client-near": labelled("client-near", h2, {"role": "client"}, ["sleep", "3600"]),
            "stranger": labelled("stranger", h1, {"app": "stranger"}, ["sleep", "3600"]),
            "stranger-near": labelled("stranger-near", h2, {}, ["sleep", "3600"]),
            "docker-server": labelled("docker-server", h3, {"app": "server"}, SERVE),
            "docker-stranger": labelled("docker-stranger", h3, {}, ["sleep", "3600"])}
    for body in made.values():
        created = api(lab, "/api/v1/namespaces/default/pods", "POST", body)
        assert created.status_code == 201, created.text
    created = api(lab, "/api/v1/namespaces/default/services", "POST", SERVICE)
    assert created.status_code == 201, created.text
    try:
        found = {name: wait_until(lambda n=name: running(lab, n), 120, interval=0.5, what=f"{name} running")
                 for name in made}
        for caller in ("client", "stranger", "stranger-near", "docker-stranger"):  # open before any policy
            for target in ("server", "open", "docker-server"):
                wait_until(lambda c=caller, t=target: answer(lab, found[c], found[t]) == t, 30, interval=0.5,
                           what=f"{caller} reaching {target} before any policy")
        service_ip = api(lab, "/api/v1/namespaces/default/services/server").json()["spec"]["clusterIP"]
        wait_until(lambda: answer(lab, found["stranger"], service_ip, 80) == "server", 60, interval=0.5,
                   what="the server's Service answering (its endpoint ready, in every host's table)")
        yield found
    finally:
        for name in ("server-in", "stranger-out"):
            api(lab, f"{POLICIES}/{name}", "DELETE")
        api(lab, "/api/v1/namespaces/default/services/server", "DELETE")
        for name in made:
            api(lab, f"/api/v1/namespaces/default/pods/{name}", "DELETE")


SERVER_IN = {"apiVersion": "berth/v1", "kind": "NetworkPolicy", "metadata": {"name": "server-in"},
             "spec": {"podSelector": {"matchLabels": {"app": "server"}}, "policyTypes": ["Ingress"],
                      "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}],
                                   "ports": [{"port": "serve"}]}]}}  # the server's named port


def test_an_ingress_policy_lets_in_only_its_peers_and_its_deletion_reopens(lab: Lab, pods: dict) -> None:
    created = api(lab, POLICIES, "POST", SERVER_IN)
    assert created.status_code == 201, created.text
    server, other = pods["server"], pods["open"]
    wait_until(lambda: answer(lab, pods["stranger"], server) == "", 30, interval=0.5,
               what="the stranger on another host refused")
    assert answer(lab, pods["stranger-near"], server) == ""  # on the server's own host: bridged, refused too
    assert answer(lab, pods["client"], server) == "server"  # another host
    assert answer(lab, pods["client-near"], server) == "server"  # the same host
    assert answer(lab, pods["stranger"], other) == "open"  # no policy selects it: open
    docker = pods["docker-server"]  # on the docker host: its own bridge, the same table
    assert answer(lab, pods["client"], docker) == "docker-server"
    assert answer(lab, pods["stranger"], docker) == ""
    assert answer(lab, pods["docker-stranger"], docker) == ""  # same host
    assert answer(lab, pods["docker-stranger"], server) == ""  # from the docker host to h2's
    service_ip = api(lab, "/api/v1/namespaces/default/services/server").json()["spec"]["clusterIP"]
    assert answer(lab, pods["client"], service_ip, 80) == "server"  # through the Service: the pod judges
    assert answer(lab, pods["stranger"], service_ip, 80) == ""
    assert answer(lab, pods["stranger-near"], service_ip, 80) == ""
    assert api(lab, f"{POLICIES}/server-in", "DELETE").status_code == 200
    wait_until(lambda: answer(lab, pods["stranger"], server) == "server", 30, interval=0.5,
               what="the server open again once its policy is gone")


def test_an_egress_policy_with_an_ip_block_and_dns_only_when_allowed(lab: Lab, pods: dict) -> None:
    stranger, server, other = pods["stranger"], pods["server"], pods["open"]
    h2_cidr = api(lab, f"/api/v1/nodes/{server['spec']['nodeName']}").json()["spec"]["podCIDR"]
    policy = {"apiVersion": "berth/v1", "kind": "NetworkPolicy", "metadata": {"name": "stranger-out"},
              "spec": {"podSelector": {"matchLabels": {"app": "stranger"}}, "policyTypes": ["Egress"],
                       "egress": [{"to": [{"ipBlock": {"cidr": h2_cidr,
                                                       "except": [f"{other['status']['podIP']}/32"]}}]}]}}
    created = api(lab, POLICIES, "POST", policy)
    assert created.status_code == 201, created.text

    def looked_up() -> str:  # the cluster DNS's answer for a name it does not hold, or a timeout
        found = in_pod(lab, stranger, "timeout", "4", "nslookup", "nobody.default.svc.cluster.local")
        return found.stdout + found.stderr

    wait_until(lambda: answer(lab, stranger, other) == "", 30, interval=0.5, what="the excepted pod refused")
    assert answer(lab, stranger, server) == "server"  # inside the block
    assert "NXDOMAIN" not in looked_up()  # egress isolated: DNS is not allowed
    policy["spec"]["egress"].append({"ports": [{"port": 53, "protocol": "UDP"}]})
    policy["metadata"]["resourceVersion"] = created.json()["metadata"]["resourceVersion"]
    replaced = api(lab, f"{POLICIES}/stranger-out", "PUT", policy)
    assert replaced.status_code == 200, replaced.text
    wait_until(lambda: "NXDOMAIN" in looked_up(), 30, interval=0.5, what="DNS allowed by the policy")
    assert answer(lab, stranger, other) == ""
    assert api(lab, f"{POLICIES}/stranger-out", "DELETE").status_code == 200
    wait_until(lambda: answer(lab, stranger, other) == "open", 30, interval=0.5,
               what="the stranger free again once its policy is gone")
