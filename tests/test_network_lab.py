"""The pod network on real lab hosts deployed by Ansible (two podman hosts, one docker, a master on
each, so the agents' informers follow several masters): every pod an address of its node's pod CIDR,
reached from any host's pods by that address, with its own source address kept; Services; a host's
network made again after its restart; then NetworkPolicies."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
from collections.abc import Iterator

import pytest
import requests
from click.testing import CliRunner

from berth.cli.main import main as berth
from berth.containers import container_name
from berth.lab import deploy, hosts
from berth.lab.hosts import Lab
from master.objects.conditions import ready_condition
from tests.harness import wait_until
from tests.test_lab import deployed_lab

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with deployed_lab("nw", tmp_path_factory.mktemp("cli"), "--hosts", "3", "--runtime", "h3=docker") as made:
        yield made


def api(lab: Lab, path: str, method: str = "GET", body: dict | None = None,
        content_type: str = "application/json") -> requests.Response:
    for url in deploy.api_urls(lab):
        try:
            return requests.request(method, url + path, data=None if body is None else json.dumps(body),
                                    timeout=10, verify=str(deploy.ca_file(lab)),
                                    headers={"Authorization": f"Bearer {deploy.admin_token(lab)}",
                                             "Content-Type": content_type})
        except requests.RequestException:
            continue
    raise requests.ConnectionError("no master answers")


def pod_on(name: str, node: str, command: list[str]) -> dict:
    return {"apiVersion": "berth/v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1, "containers": [
                {"name": "main", "image": "localhost/busybox:lab", "command": command,
                 "resources": {"requests": {"cpu": "10m", "memory": "8Mi"}}}]}}


def running(lab: Lab, name: str) -> dict | None:
    pod = api(lab, f"/api/v1/namespaces/default/pods/{name}").json()
    status = pod.get("status") or {}
    return pod if status.get("phase") == "Running" and status.get("podIP") else None


def in_pod(lab: Lab, pod: dict, *command: str) -> subprocess.CompletedProcess:
    """A command inside the pod's container, on its own host (traffic never leaves the lab)."""
    host = pod["spec"]["nodeName"]
    return hosts.in_host(lab, host, [lab.runtime(host), "exec", "--", container_name(pod, "main"), *command],
                         check=False, timeout=30)


def called_from(netstat: str, address: str) -> bool:
    """`netstat -tn` shows a connection from `address` (as itself, or IPv4 mapped in IPv6)."""
    return re.search(rf"(?:^|[ :]){re.escape(address)}:\d+ ", netstat, re.MULTILINE) is not None


def test_pods_on_different_hosts_reach_each_other_by_their_own_addresses(lab: Lab) -> None:
    names = lab.host_names()
    wait_until(lambda: all(ready_condition(api(lab, f"/api/v1/nodes/{h}").json()) for h in names), 90,
               interval=0.5, what="every node Ready (its pod network made)")
    cidrs = {h: api(lab, f"/api/v1/nodes/{h}").json()["spec"]["podCIDR"] for h in names}
    assert len(set(cidrs.values())) == len(names), cidrs
    for host in names:  # what Ansible's agent role lays on every host (per network namespace in the lab)
        kernel = hosts.in_host(lab, host, ["sysctl", "-n", "net.ipv4.ip_forward",
                                           "net.ipv4.conf.all.rp_filter"])
        assert kernel.stdout.split() == ["1", "2"], (host, kernel.stdout)
    client_host, outside_host, server_host = names  # h3 runs docker, the others podman
    show_peer = ["nc", "-ll", "-p", "9000", "-e", "netstat", "-tn"]  # answers each caller with who called
    for pod in (pod_on("server", server_host, show_peer), pod_on("client", client_host, ["sleep", "3600"])):
        created = api(lab, "/api/v1/namespaces/default/pods", "POST", pod)
        assert created.status_code == 201, created.text
    try:
        server = wait_until(lambda: running(lab, "server"), 90, interval=0.5, what="the server pod running")
        client = wait_until(lambda: running(lab, "client"), 90, interval=0.5, what="the client pod running")
        for pod, host in ((server, server_host), (client, client_host)):
            address = ipaddress.IPv4Address(pod["status"]["podIP"])
            assert address in ipaddress.IPv4Network(cidrs[host]), (pod["status"]["podIP"], cidrs[host])
        assert in_pod(lab, client, "hostname").stdout.strip() == "client"
        called = in_pod(lab, client, "nc", "-w", "3", server["status"]["podIP"], "9000")
        # the server saw the client's own address: no NAT between pods
        assert called_from(called.stdout, client["status"]["podIP"]), called.stdout + called.stderr
        # to anything else (a host's own address), a pod's traffic leaves as its host's
        outside = lab.address(outside_host)
        listen = "(timeout 60 busybox nc -ll -p 9100 -e busybox netstat -tn >/dev/null 2>&1 &)"
        hosts.in_host(lab, outside_host, ["sh", "-c", listen])
        seen = wait_until(lambda: in_pod(lab, client, "nc", "-w", "3", outside, "9100").stdout or None, 30,
                          interval=0.5, what="the outside listener answering")
        assert called_from(seen, lab.address(client_host)), seen
        assert not called_from(seen, client["status"]["podIP"]), seen
    finally:
        for name in ("server", "client"):
            api(lab, f"/api/v1/namespaces/default/pods/{name}", "DELETE")



ECHO = {"apiVersion": "berth/v1", "kind": "Deployment", "metadata": {"name": "echo"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "echo"}}, "template": {
            "metadata": {"labels": {"app": "echo"}},
            "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
                "name": "main", "image": "localhost/busybox:lab",
                # each replica answers with its own name; it is ready while /tmp/ready exists
                "command": ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && touch /tmp/ready && "
                                        "exec httpd -f -p 8080 -h /www"],
                "ports": [{"name": "http", "containerPort": 8080}],
                "readinessProbe": {"exec": {"command": ["cat", "/tmp/ready"]}, "periodSeconds": 1,
                                   "failureThreshold": 1},
                "resources": {"requests": {"cpu": "10m", "memory": "8Mi"}}}]}}}}
ECHO_SERVICE = {"apiVersion": "berth/v1", "kind": "Service", "metadata": {"name": "echo"},
                "spec": {"type": "NodePort", "selector": {"app": "echo"},
                         "ports": [{"port": 80, "targetPort": "http"}]}}
NOBODY = {"apiVersion": "berth/v1", "kind": "Service", "metadata": {"name": "nobody"},
          "spec": {"selector": {"app": "nobody"}, "ports": [{"port": 80}]}}


def ready_replicas(lab: Lab) -> list[dict]:
    pods = api(lab, "/api/v1/namespaces/default/pods?labelSelector=app=echo").json()["items"]
    def ready(pod: dict) -> bool:
        conditions = (pod.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    return [p for p in pods if not p["metadata"].get("deletionTimestamp") and ready(p)]


def endpoint_ips(lab: Lab, name: str) -> tuple[set[str], set[str]]:
    """(ready, not ready) addresses of the service's Endpoints."""
    found = api(lab, f"/api/v1/namespaces/default/endpoints/{name}")
    subsets = found.json().get("subsets") or [] if found.status_code == 200 else []
    return ({a["ip"] for s in subsets for a in s.get("addresses") or []},
            {a["ip"] for s in subsets for a in s.get("notReadyAddresses") or []})


def who_answers(lab: Lab, client: dict, target: str, port: int, times: int) -> list[str]:
    """`times` requests from the client pod (a bounded loop inside it): each answer's first line."""
    script = (f'for i in $(seq {times}); do printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 3 {target} {port} '
              '| tail -n 1; done')
    return in_pod(lab, client, "sh", "-c", script).stdout.split()


@pytest.fixture(scope="module")
def echo(lab: Lab) -> Iterator[tuple[dict, dict]]:
    """The echo deployment behind its NodePort service, and a client pod: (service, client)."""
    for path, body in (("deployments", ECHO), ("services", ECHO_SERVICE), ("services", NOBODY),
                       ("pods", pod_on("caller", lab.host_names()[0], ["sleep", "3600"]))):
        created = api(lab, f"/api/v1/namespaces/default/{path}", "POST", body)
        assert created.status_code == 201, created.text
    try:
        wait_until(lambda: len(ready_replicas(lab)) == 3, 120, interval=0.5, what="3 echo replicas ready")
        wait_until(lambda: len(endpoint_ips(lab, "echo")[0]) == 3, 30, interval=0.5, what="3 endpoints")
        client = wait_until(lambda: running(lab, "caller"), 90, interval=0.5, what="the caller pod running")
        yield api(lab, "/api/v1/namespaces/default/services/echo").json(), client
    finally:
        for path in ("deployments/echo", "services/echo", "services/nobody", "pods/caller"):
            api(lab, f"/api/v1/namespaces/default/{path}", "DELETE")


def test_a_cluster_ip_spreads_over_every_ready_replica(lab: Lab, echo: tuple[dict, dict]) -> None:
    service, client = echo
    replicas = {p["metadata"]["name"] for p in ready_replicas(lab)}
    answers = wait_until(lambda: (seen := who_answers(lab, client, service["spec"]["clusterIP"], 80, 30))
                         and set(seen) == replicas and seen, 60, interval=1,
                         what="30 requests to the cluster IP reaching every replica")
    assert len(answers) == 30 and set(answers) == replicas


def test_client_ip_affinity_keeps_a_client_on_one_replica(lab: Lab, echo: tuple[dict, dict]) -> None:
    service, client = echo
    sticky = {"spec": {"sessionAffinity": "ClientIP"}}
    changed = api(lab, "/api/v1/namespaces/default/services/echo", "PATCH", sticky,
                  content_type="application/merge-patch+json")
    assert changed.status_code == 200, changed.text
    try:
        # the agents reload their table on the change: then every answer to one client is one replica's
        answers = wait_until(lambda: (seen := who_answers(lab, client, service["spec"]["clusterIP"], 80, 10))
                             and len(seen) == 10 and len(set(seen)) == 1 and seen, 60, interval=1,
                             what="10 requests of one client answered by one replica")
        assert len(set(answers)) == 1
    finally:
        back = api(lab, "/api/v1/namespaces/default/services/echo", "PATCH",
                   {"spec": {"sessionAffinity": "None"}}, content_type="application/merge-patch+json")
        assert back.status_code == 200, back.text
    cluster_ip = service["spec"]["clusterIP"]
    spread = wait_until(lambda: len(set(seen := who_answers(lab, client, cluster_ip, 80, 30))) > 1 and seen,
                        60, interval=1, what="requests spread again without affinity")
    assert len(spread) == 30


def test_service_names_resolve_from_a_pod(lab: Lab, echo: tuple[dict, dict]) -> None:
    service, client = echo
    cluster_ip = service["spec"]["clusterIP"]
    for name in ("echo.default.svc.cluster.local", "echo", "echo.default", "echo.default.svc"):
        answered = who_answers(lab, client, name, 80, 1)  # resolved by the pod's resolver, search list
        assert answered and answered[0].startswith("echo-"), (name, answered)
    looked_up = in_pod(lab, client, "nslookup", "echo.default.svc.cluster.local")
    assert cluster_ip in looked_up.stdout, looked_up.stdout + looked_up.stderr
    missing = in_pod(lab, client, "nslookup", "nope.default.svc.cluster.local")
    assert cluster_ip not in missing.stdout and missing.returncode != 0


def test_a_node_port_answers_on_every_hosts_address(lab: Lab, echo: tuple[dict, dict]) -> None:
    service, _ = echo
    node_port = service["spec"]["ports"][0]["nodePort"]
    assert 30000 <= node_port <= 32767
    replicas = {p["metadata"]["name"] for p in ready_replicas(lab)}
    for host in lab.host_names():  # asked from inside another lab host: only lab addresses are used
        asking = lab.host_names()[(lab.host_names().index(host) + 1) % 3]
        answer = hosts.in_host(lab, asking, ["curl", "-s", "--max-time", "5",
                                             f"http://{lab.address(host)}:{node_port}/"], check=False)
        assert answer.stdout.strip() in replicas, (host, answer.stdout, answer.stderr)


def test_a_service_without_endpoints_is_refused_at_once(lab: Lab, echo: tuple[dict, dict]) -> None:
    _, client = echo
    nobody = api(lab, "/api/v1/namespaces/default/services/nobody").json()["spec"]["clusterIP"]
    refused = in_pod(lab, client, "nc", "-w", "10", nobody, "80")
    assert refused.returncode != 0 and "refused" in refused.stderr.lower(), refused.stderr


def test_a_not_ready_replica_gets_no_traffic_then_one_left_gets_all(lab: Lab, echo: tuple) -> None:
    service, client = echo
    cluster_ip = service["spec"]["clusterIP"]
    tired = sorted(ready_replicas(lab), key=lambda p: p["metadata"]["name"])[0]
    in_pod(lab, tired, "rm", "/tmp/ready")  # its readiness probe fails from its next period
    wait_until(lambda: tired["status"]["podIP"] in endpoint_ips(lab, "echo")[1], 30, interval=0.2,
               what="the tired replica among the not-ready addresses")
    answers = who_answers(lab, client, cluster_ip, 80, 30)
    assert len(answers) == 30 and tired["metadata"]["name"] not in answers, answers
    in_pod(lab, tired, "touch", "/tmp/ready")
    scaled = api(lab, "/api/v1/namespaces/default/deployments/echo", "PATCH", {"spec": {"replicas": 1}},
                 content_type="application/merge-patch+json")
    assert scaled.status_code == 200, scaled.text
    wait_until(lambda: len(endpoint_ips(lab, "echo")[0]) == 1, 60, interval=0.2, what="one endpoint left")
    [last] = ready_replicas(lab) or [None]
    answers = who_answers(lab, client, cluster_ip, 80, 10)
    assert answers == [last["metadata"]["name"]] * 10, answers


def _routes(lab: Lab, host: str) -> str:
    return hosts.in_host(lab, host, ["ip", "route", "show", "proto", "177"]).stdout


def test_a_restarted_host_gets_its_routes_and_rules_back(lab: Lab, echo: tuple[dict, dict]) -> None:
    """Nothing of the pod network is kept on the host: its agent makes it all again on start. Its Node
    deleted meanwhile, the other hosts drop their route to its pods; registered again, they route to
    its new range."""
    service, _ = echo
    victim, other = lab.host_names()[1], lab.host_names()[0]
    cidrs = {h: api(lab, f"/api/v1/nodes/{h}").json()["spec"]["podCIDR"] for h in lab.host_names()}
    hosts.crash_host(lab, victim)
    wait_until(lambda: ready_condition(api(lab, f"/api/v1/nodes/{victim}").json()) is False, 30, interval=0.5,
               what=f"{victim} NotReady")
    deleted = api(lab, f"/api/v1/nodes/{victim}", "DELETE")
    assert deleted.status_code == 200, deleted.text
    wait_until(lambda: cidrs[victim] not in _routes(lab, other), 30, interval=0.5,
               what=f"{other}'s route to the deleted node's pods gone")
    started = CliRunner().invoke(berth, ["lab", "start", "--name", lab.name, victim], catch_exceptions=False)
    assert started.exit_code == 0, started.output
    node = wait_until(lambda: (n := api(lab, f"/api/v1/nodes/{victim}").json())
                      and ready_condition(n) is True and n["spec"].get("podCIDR") and n, 90, interval=0.5,
                      what=f"{victim} registered, Ready")
    cidrs[victim] = node["spec"]["podCIDR"]
    wait_until(lambda: cidrs[victim] in _routes(lab, other), 30, interval=0.5,
               what=f"{other} routing to the registered node's pods")
    routes = _routes(lab, victim)
    assert all(cidrs[h] in routes for h in lab.host_names() if h != victim), routes
    listing = ["nft", "list", "table", "ip", "berth"]
    table = wait_until(lambda: (text := hosts.in_host(lab, victim, listing).stdout)
                       and service["spec"]["clusterIP"] in text and text, 30, interval=0.5,
                       what=f"the echo service's rules on {victim}")
    assert all(cidr in table for cidr in cidrs.values()), table


# NetworkPolicies, on the same lab after its host restart (a lab of their own cost a deployment):
# a server selected by a policy takes only its allowed peers, from another host and from its own,
# directly or through a Service (the policy judges the pod reached, after the translation); a pod no
# policy selects stays open; deleting the policy reopens the server; an egress policy with an ipBlock
# confines a pod, and its DNS works only once a policy allows it. Every connection is made from
# inside a pod.

POLICIES = "/api/v1/namespaces/default/networkpolicies"
SERVE = ["nc", "-ll", "-p", "9000", "-e", "hostname"]  # answers each caller with the pod's name


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

    def looked_up() -> str:  # the cluster DNS's answer for a name it does not hold (the Service
        # "nobody" above is one it holds), or a timeout
        found = in_pod(lab, stranger, "timeout", "4", "nslookup", "no-such-service.default.svc.cluster.local")
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
