"""The whole lab: hosts deployed by ansible/site.yml over SSH, agents heartbeating masters."""

from __future__ import annotations

import json
import os
import re
import socket
import ssl
import stat
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
import requests
import yaml
from click.testing import CliRunner
from cryptography import x509
from playwright.sync_api import Locator, Page, expect

from berth import certs
from berth.cli.main import main as berth
from berth.cli.rollouts import REVISION
from berth.containers import container_name
from berth.lab import deploy, hosts
from berth.lab.hosts import Lab
from master.objects.conditions import condition, ready_condition
from master.runtime.driver import DRIVERS
from tests.browser import chromium, signed_in
from tests.conftest import TEST_ROOT
from tests.harness import wait_until
from tests.test_lab import deployed_lab

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")
# the web page's test saves its screenshot here (README's docs/ui.png: BERTH_UI_SCREENSHOT=docs/ui.png)
SCREENSHOT = Path(os.environ.get("BERTH_UI_SCREENSHOT") or TEST_ROOT / "ui.png")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    # a host is listed only on signals: store changes, and the agents' runtime events (no resync
    # within the tests' time), so a change on a host is seen only if its agent reported it; an
    # agent checks its engine every 5 s, not 30 (a broken engine is told in 5-15 s, not 30-70)
    with deployed_lab("lc", tmp_path_factory.mktemp("cli"), "--hosts", "3",
                      "--var", "berth_runtime_resync_seconds=3600",
                      "--var", "berth_runtime_check_seconds=5") as made:
        yield made


def api(lab: Lab, path: str, index: int = 0) -> requests.Response:
    return requests.get(deploy.api_urls(lab)[index] + path, timeout=5, verify=str(deploy.ca_file(lab)),
                        headers={"Authorization": f"Bearer {deploy.admin_token(lab)}"})


def ready(lab: Lab, host: str) -> bool | None:
    for index in range(3):
        try:
            return ready_condition(api(lab, f"/api/v1/nodes/{host}", index).json())
        except (requests.RequestException, ValueError):
            continue
    return None


def test_all_nodes_ready_and_the_cli_works_right_after(lab: Lab) -> None:
    # lab up returned once all were Ready; under heavy machine load a heartbeat can be late
    wait_until(lambda: all(ready(lab, h) for h in lab.host_names()), 60, what="all Ready")
    result = subprocess.run([sys.executable, "-m", "berth.cli.main", "get", "nodes"], text=True,
                            capture_output=True, timeout=60, cwd=Path(__file__).resolve().parent.parent,
                            env={"PATH": "/usr/bin:/bin", "BERTH_CONFIG": str(lab.cli_config)})
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()[1:]]
    assert [(r[0], r[1]) for r in rows] == [("h1", "Ready"), ("h2", "Ready"), ("h3", "Ready")]
    assert rows[0][2] == "master,worker"


def test_a_pod_runs_on_a_host_through_the_deployed_masters(lab: Lab) -> None:
    """The runtime's SSH key and pinned host keys as the playbook laid them."""
    env = {"PATH": "/usr/bin:/bin", "BERTH_CONFIG": str(lab.cli_config)}
    manifest = ("kind: Pod\nmetadata: {name: lab-web}\nspec:\n  containers:\n  - name: web\n"
                "    image: localhost/busybox:lab\n    command: [sleep, '600']\n"
                "    resources: {requests: {cpu: 100m, memory: 32Mi}}\n")
    applied = subprocess.run([sys.executable, "-m", "berth.cli.main", "apply", "-f", "-"], input=manifest,
                             text=True, capture_output=True, timeout=60, env=env,
                             cwd=Path(__file__).resolve().parent.parent)
    assert applied.returncode == 0, applied.stderr
    path = "/api/v1/namespaces/default/pods/lab-web"
    wait_until(lambda: (api(lab, path).json().get("status") or {}).get("phase") == "Running", 90,
               interval=0.5, what="lab-web Running")
    status = api(lab, path).json()["status"]
    node = api(lab, path).json()["spec"]["nodeName"]
    assert status["hostIP"] == lab.address(node) and status["podIP"]
    listed = hosts.in_host(lab, node, ["podman", "ps", "--format", "{{.Names}}"]).stdout
    assert "lab-web" in listed
    # killed on its host: only the agent's report of the death makes the leader look (no resync)
    container = next(name for name in listed.split() if name.endswith("-web"))
    hosts.in_host(lab, node, ["podman", "kill", container])

    def restarted() -> bool:
        entry = ((api(lab, path).json().get("status") or {}).get("containerStatuses") or [{}])[0]
        return entry.get("restartCount") == 1 and "running" in (entry.get("state") or {})

    wait_until(restarted, 90, interval=0.5, what="the killed container restarted")


def test_the_demo_app_runs_its_web_replicas(lab: Lab) -> None:
    """What `bash lab/up.sh` applies: the web Deployment's two replicas run and pass the readiness
    probe the agents run; its Service answers on node port 30080 on every host and by its name
    from the hello pod, spread over the replicas; then the demo is deleted (its pods gracefully)
    for the tests after."""
    env = {"PATH": "/usr/bin:/bin", "BERTH_CONFIG": str(lab.cli_config)}
    project = Path(__file__).resolve().parent.parent

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "berth.cli.main", *args], text=True, capture_output=True,
                              timeout=120, env=env, cwd=project)

    applied = cli("apply", "-f", "lab/demo.yaml")
    assert applied.returncode == 0, applied.stderr
    try:
        rolled = cli("rollout", "status", "deploy/web", "--timeout=100s")
        assert rolled.returncode == 0, rolled.stdout + rolled.stderr
        web = api(lab, "/api/v1/namespaces/default/deployments/web").json()
        assert (web["status"]["readyReplicas"], web["status"]["availableReplicas"]) == (2, 2)
        pods = api(lab, "/api/v1/namespaces/default/pods?labelSelector=app=web").json()["items"]
        assert len({p["spec"]["nodeName"] for p in pods}) == 2  # spread over two hosts
        replicas = {p["metadata"]["name"] for p in pods}
        names = lab.host_names()
        for host in names:  # asked from inside the next lab host: only lab addresses are used
            asking = names[(names.index(host) + 1) % len(names)]
            url = f"http://{lab.address(host)}:30080/"
            answered = wait_until(lambda url=url, asking=asking: hosts.in_host(
                lab, asking, ["curl", "-s", "--max-time", "5", url], check=False).stdout.strip() or None, 30,
                interval=0.5, what=f"the web service on {url}")
            assert answered in replicas, (url, answered)
        wait_until(lambda: api(lab, "/api/v1/namespaces/default/pods/hello").json()["status"].get("phase")
                   == "Running", 90, interval=0.5, what="the hello pod running")
        by_name = set()
        for _ in range(20):  # bounded: both replicas answer the name within 20 requests (chance 2e-6 not)
            asked = cli("exec", "hello", "--", "sh", "-c",
                        'printf "GET / HTTP/1.0\r\n\r\n" | nc -w 3 web 80 | tail -n 1')
            by_name.add(asked.stdout.strip())
            if by_name == replicas:
                break
        assert by_name == replicas, by_name
        # the demo's autoscaler reads the web pods' CPU as the agents measure it
        wait_until(lambda: "<unknown>" not in (shown := cli("get", "hpa", "web").stdout) and "cpu: " in shown,
                   60, interval=1, what="the demo HPA showing real targets")
    finally:
        assert cli("delete", "-f", "lab/demo.yaml").returncode == 0
        def gone() -> bool:
            listed = api(lab, "/api/v1/namespaces/default/pods").json()["items"]
            return not [p for p in listed if p["metadata"].get("labels", {}).get("app") in ("web", "hello")]

        wait_until(gone, 90, interval=0.5, what="the demo's pods gone")


POD_MANIFEST = """apiVersion: berth/v1
kind: Pod
metadata: {name: ui-pod, labels: {app: ui}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: localhost/busybox:lab
    command: [sh, -c, 'echo hello from the page; exec sleep 600']
    resources: {requests: {cpu: 50m, memory: 16Mi}}
---
apiVersion: berth/v1
kind: Deployment
metadata: {name: ui-dep}
spec:
  replicas: 1
  selector: {matchLabels: {app: ui-dep}}
  template:
    metadata: {labels: {app: ui-dep}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - {name: main, image: localhost/busybox:lab, command: [sleep, '600'],
         resources: {requests: {cpu: 50m, memory: 16Mi}}}
"""
SERVICE_MANIFEST = """---
apiVersion: berth/v1
kind: Service
metadata: {name: ui-svc}
spec:
  selector: {app: ui-dep}
  ports: [{port: 80, targetPort: 8080}]
"""
BAD_MANIFEST = """apiVersion: berth/v1
kind: Pod
metadata: {name: ui-bad}
spec:
  restartPolicy: Sometimes
  containers: [{name: main, image: localhost/busybox:lab}]
"""


def row(page: Page, name: str) -> Locator:
    """The table row whose cell holds `name` exactly."""
    return page.get_by_role("row").filter(has=page.get_by_role("cell", name=name, exact=True))


def test_the_web_page_shows_and_drives_the_cluster(lab: Lab) -> None:
    """The page of a deployed master in Debian's chromium: signed in with the admin token it lists
    every node, applies manifests (a field error named), follows a pod to Running and a scale to
    its replicas without a reload (the watch's server-sent events), cordons a node and deletes a
    pod; signed in with the viewer token it shows the same and offers no action."""
    urls = deploy.api_urls(lab)
    admin_api = requests.Session()
    admin_api.verify = str(deploy.ca_file(lab))
    admin_api.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would win over `verify`
    admin_api.headers["Authorization"] = f"Bearer {deploy.admin_token(lab)}"
    ns = urls[1] + "/api/v1/namespaces/default"
    with chromium(urls, deploy.ca_file(lab)) as browser:
        try:
            page = signed_in(browser, urls[1] + "/ui/", deploy.admin_token(lab))
            page.get_by_role("link", name="Nodes").click()
            for host in lab.host_names():
                expect(row(page, host)).to_contain_text("Ready", timeout=30_000)
            expect(page.get_by_role("table", name="nodes").get_by_role("row")).to_have_count(
                1 + len(lab.host_names()))

            page.get_by_role("link", name="Create").click()
            page.get_by_label("Manifest").fill(BAD_MANIFEST)
            page.get_by_role("button", name="Apply").click()
            expect(page.get_by_role("alert")).to_contain_text("field spec.restartPolicy")
            page.get_by_label("Manifest").fill(POD_MANIFEST + SERVICE_MANIFEST)
            page.get_by_role("button", name="Apply").click()
            applied = page.get_by_role("list", name="applied")
            expect(applied).to_contain_text("pod/ui-pod created")
            expect(applied).to_contain_text("deployment/ui-dep created")
            expect(applied).to_contain_text("service/ui-svc created")
            page.get_by_role("link", name="Services").click()
            service = row(page, "ui-svc").get_by_role("cell")
            expect(service.nth(3)).to_have_text(re.compile(r"^\d+\.\d+\.\d+\.\d+$"))  # its cluster IP
            expect(service.nth(5)).to_have_text("app=ui-dep")

            page.get_by_role("link", name="Pods").click()  # no reload from here on: the streams update it
            expect(row(page, "ui-pod")).to_contain_text("Running", timeout=90_000)
            assert row(page, "ui-pod").get_by_role("cell").nth(5).inner_text() in lab.host_names()

            page.get_by_role("link", name="Deployments").click()
            deployment = row(page, "ui-dep")
            expect(deployment.get_by_role("cell").nth(2)).to_have_text("1/1", timeout=90_000)
            deployment.get_by_label("Replicas of ui-dep").fill("2")
            deployment.get_by_role("button", name="Scale").click()
            expect(page.get_by_role("status")).to_have_text("deployment/ui-dep scaled")
            expect(deployment.get_by_role("cell").nth(6)).to_have_text("2")
            expect(deployment.get_by_role("cell").nth(2)).to_have_text("2/2", timeout=90_000)
            assert admin_api.get(f"{ns}/deployments/ui-dep", timeout=10).json()["spec"]["replicas"] == 2

            page.get_by_role("link", name="Nodes").click()
            last = lab.host_names()[-1]
            row(page, last).get_by_role("button", name="Cordon").click()
            expect(row(page, last)).to_contain_text("SchedulingDisabled")
            row(page, last).get_by_role("button", name="Uncordon").click()
            expect(row(page, last).get_by_role("cell").nth(1)).to_have_text("Ready")

            viewer = signed_in(browser, urls[2] + "/ui/", deploy.viewer_token(lab))
            expect(viewer.get_by_role("link", name="Create")).to_have_count(0)
            for view in ("Nodes", "Pods", "Deployments", "Services", "Events"):
                viewer.get_by_role("link", name=view).click()
                expect(viewer.get_by_role("region", name=view).get_by_role("row")).not_to_have_count(1)
                shown = [b.inner_text() for b in viewer.get_by_role("button").all() if b.is_visible()]
                assert set(shown) <= {"Logs", "Events", "Sign out"}, (view, shown)
            viewer.get_by_role("link", name="Pods").click()
            row(viewer, "ui-pod").get_by_role("button", name="Logs").click()
            expect(viewer.locator("pre")).to_contain_text("hello from the page", timeout=30_000)

            page.get_by_role("link", name="Overview").click()  # the screenshot: usage bars filled in
            expect(page.get_by_text("?", exact=True)).to_have_count(0, timeout=30_000)
            page.screenshot(path=str(SCREENSHOT), full_page=True)

            # a second revision of ui-dep, then undone: its first template back
            page.get_by_role("link", name="Create").click()
            page.get_by_label("Manifest").fill(POD_MANIFEST.split("---\n")[1].replace("'600'", "'601'"))
            page.get_by_role("button", name="Apply").click()
            expect(applied).to_contain_text("deployment/ui-dep configured")
            page.get_by_role("link", name="Deployments").click()
            wait_until(lambda: any((rs["metadata"].get("annotations") or {}).get(REVISION) == "2"
                                   for rs in admin_api.get(f"{ns}/replicasets", timeout=10).json()["items"]),
                       60, interval=0.5, what="ui-dep's second revision")
            deployment.get_by_role("button", name="Undo").click()
            expect(page.get_by_role("status")).to_have_text("deployment/ui-dep rolled back to revision 1")
            template = admin_api.get(f"{ns}/deployments/ui-dep", timeout=10).json()["spec"]["template"]
            assert template["spec"]["containers"][0]["command"] == ["sleep", "600"]

            # drain: refused for a pod no controller makes again, then forced; each pod evicted
            node = admin_api.get(f"{ns}/pods/ui-pod", timeout=10).json()["spec"]["nodeName"]
            page.get_by_role("link", name="Nodes").click()
            row(page, node).get_by_role("button", name="Drain").click()
            expect(page.get_by_role("alert")).to_contain_text(
                "cannot delete Pods that declare no controller (use --force to override): default/ui-pod")
            page.get_by_role("button", name="Drain anyway (--force)").click()
            expect(page.get_by_role("status")).to_have_text(f"node/{node} drained", timeout=120_000)
            expect(row(page, node).get_by_role("cell").nth(1)).to_have_text("Ready,SchedulingDisabled")
            expect(row(page, node).get_by_role("cell").nth(6)).to_have_text("0")
            row(page, node).get_by_role("button", name="Uncordon").click()
            expect(row(page, node).get_by_role("cell").nth(1)).to_have_text("Ready")

            page.get_by_role("link", name="Pods").click()
            replica = page.get_by_role("row").filter(has_text="ui-dep-").first.get_by_role("cell").nth(1)
            expect(replica).to_have_text(re.compile(r"^ui-dep-"))
            name = replica.inner_text()
            row(page, name).get_by_role("button", name="Delete").click()
            expect(row(page, name)).to_have_count(0, timeout=60_000)
            assert page.errors == [] and viewer.errors == []  # type: ignore[attr-defined]
        finally:
            admin_api.delete(f"{ns}/services/ui-svc", timeout=10)
            admin_api.delete(f"{ns}/deployments/ui-dep", timeout=10)
            admin_api.delete(f"{ns}/pods/ui-pod", timeout=10)

            def gone() -> bool:
                listed = admin_api.get(f"{ns}/pods", timeout=10).json()["items"]
                return not [p for p in listed if p["metadata"]["name"] == "ui-pod"
                            or p["metadata"].get("labels", {}).get("app") == "ui-dep"]

            wait_until(gone, 90, interval=0.5, what="the page's pods gone")


def test_the_cluster_key_works_only_from_the_masters_and_only_for_commands(lab: Lab) -> None:
    """authorized_keys gives the runtime's key `restrict` (but a terminal, for `exec -t`) and `from=`
    the masters' addresses."""
    masters = ",".join(lab.address(h) for h in deploy.masters_of(lab))
    key = lab.root / "secrets" / "cluster-ssh-key"
    public = key.with_suffix(".pub").read_text().strip()
    for host in lab.host_names():
        lines = (lab.host_dir(host) / "authorized_keys").read_text().splitlines()
        mine = [line for line in lines if public.split()[1] in line]
        assert mine == [f'restrict,pty,from="{masters}" {public}']

    def ssh(*args: str) -> list[str]:
        # -n: ssh makes its stdin non-blocking, and the one it would inherit is this process's
        return ["ssh", "-n", "-i", str(key), "-o", f"UserKnownHostsFile={lab.known_hosts}",
                "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=10", *args]

    # from this machine (the lab bridge's address, no master's), the key is refused
    outside = subprocess.run(ssh(f"root@{lab.address('h2')}", "true"), capture_output=True, text=True,
                             stdin=subprocess.DEVNULL, timeout=30)
    assert outside.returncode == 255 and "Permission denied" in outside.stderr, outside.stderr
    # from a master's host it runs commands (the runtime's own use), and forwards nothing
    plain = hosts.in_host(lab, "h1", ssh(f"root@{lab.address('h2')}", "hostname"), check=False)
    assert plain.returncode == 0 and plain.stdout.strip() == "h2", plain.stderr
    terminal = hosts.in_host(lab, "h1", ssh("-tt", f"root@{lab.address('h2')}", "tty"), check=False)
    assert terminal.returncode == 0 and "/dev/pts/" in terminal.stdout, terminal.stderr
    forward = hosts.in_host(lab, "h1", ssh("-o", "ExitOnForwardFailure=yes", "-R", "17999:127.0.0.1:22",
                                           f"root@{lab.address('h2')}", "true"), check=False)
    assert forward.returncode == 255, forward.stdout


def changed_tasks(output: str) -> dict[str, list[str]]:
    """Each host's tasks that said `changed` in an ansible-playbook run's output, by task name."""
    changed: dict[str, list[str]] = {}
    task = ""
    for line in output.splitlines():
        if line.startswith(("TASK [", "RUNNING HANDLER [")):
            task = line[line.index("[") + 1:line.rindex("]")]
        elif line.startswith("changed: ["):
            host = line[len("changed: ["):line.index("]")]
            changed.setdefault(host, []).append(task)
    return changed


def test_the_playbook_run_again_starts_a_stopped_agent_and_changes_nothing_else(lab: Lab) -> None:
    """site.yml run again (one run for both, a run costs about a minute of the machine's CPU): it
    changes nothing, the same CA and certificates, but the agent an operator finds stopped: its
    node NotReady until the run starts it again, Ready after."""
    tls = deploy.ca_file(lab).parent
    made = {path.name: path.read_bytes() for path in tls.iterdir()}
    run_dir = str(lab.host_dir("h3") / "berth" / "run")
    hosts.in_host(lab, "h3", [sys.executable, "-m", "berth.lab.supervisor", "stop", "berth-agent",
                              "--dir", run_dir])
    wait_until(lambda: ready(lab, "h3") is False, 30, what="h3 NotReady")
    output = deploy.run_playbook(lab)
    recap = output[output.rfind("PLAY RECAP"):]
    assert changed_tasks(output) == {"h3": ["service : berth-agent running (lab supervisor)"]}, recap
    assert {path.name: path.read_bytes() for path in tls.iterdir()} == made  # the same CA and certificates
    wait_until(lambda: ready(lab, "h3") is True, 30, what="h3 Ready again")


def test_masters_serve_https_only_with_their_addresses_as_names(lab: Lab) -> None:
    """TLS by default: the CLI config carries the CA; each master's certificate names its address and
    host; a plain-HTTP request gets the fixed 400 and no data; the key is its master's alone."""
    config = yaml.safe_load(lab.cli_config.read_text())  # type: ignore[attr-defined]
    assert config["certificate-authority"] == str(deploy.ca_file(lab))
    assert all(url.startswith("https://") for url in config["servers"])
    context = ssl.create_default_context(cafile=deploy.ca_file(lab))
    for host in deploy.masters_of(lab):
        address = lab.address(host)
        with closing(socket.create_connection((address, deploy.API_PORT), timeout=10)) as raw, \
                context.wrap_socket(raw, server_hostname=address) as sock:
            der = sock.getpeercert(binary_form=True)
        assert der is not None and {address, host} <= certs.sans_of(x509.load_der_x509_certificate(der))
        plain = requests.get(f"http://{address}:{deploy.API_PORT}/api/v1/nodes", timeout=10,
                             headers={"Authorization": f"Bearer {deploy.admin_token(lab)}"})
        assert (plain.status_code, plain.text) == (400, "Client sent an HTTP request to an HTTPS server.\n")
        key = deploy.state_dir(lab, host) / "master" / "tls.key"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_leader_sigkill_flaps_no_node(lab: Lab) -> None:
    status = api(lab, "/api/v1/cluster").json()
    leader = next(h for h in deploy.masters_of(lab) if status["leader"].startswith(lab.address(h) + ":"))
    other = next(i for i, h in enumerate(deploy.masters_of(lab)) if h != leader)
    since = api(lab, "/api/v1/cluster", other).json()["revision"]
    events: list[dict] = []
    url = f"{deploy.api_urls(lab)[other]}/api/v1/watch?kind=Node&since={since}&timeoutSeconds=8"

    def watch() -> None:
        headers = {"Authorization": f"Bearer {deploy.admin_token(lab)}"}
        with requests.get(url, headers=headers, stream=True, timeout=20,
                          verify=str(deploy.ca_file(lab))) as stream:
            for line in stream.iter_lines():  # one at a time: the first bookmark says it listens
                events.append(json.loads(line))

    watcher = threading.Thread(target=watch)
    watcher.start()
    wait_until(lambda: events, 15, what="the watch's first bookmark")
    pid = (lab.host_dir(leader) / "berth" / "run" / "berth-master.pid").read_text().strip()
    hosts.in_host(lab, leader, ["kill", "-9", pid])  # its supervisor starts it again
    watcher.join(timeout=30)
    assert [e for e in events if e["type"] == "MODIFIED" and ready_condition(e["object"]) is False] == []
    assert all(ready(lab, h) for h in lab.host_names())


def test_a_follower_cut_off_from_the_leader_deposes_no_one(lab: Lab) -> None:
    """Bug (issue 11): cutting two masters apart pushed the term from 3 to 12 within seconds and
    made a live node NotReady. With PreVote (master/store/prevote.py) the cut-off follower asks
    for an election, is told no by the master that still hears the leader, and raises nothing."""
    leader = wait_until(lambda: _leader_host(lab), 30, what="a leader")
    masters = deploy.masters_of(lab)
    follower = next(h for h in masters if h != leader)
    at_leader, at_follower = masters.index(leader), masters.index(follower)
    term = api(lab, "/api/v1/cluster", at_leader).json()["term"]
    asked = api(lab, "/api/v1/cluster", at_follower).json()["preVoteRounds"]
    CliRunner().invoke(berth, ["lab", "partition", "--name", lab.name, leader, follower],
                       catch_exceptions=False)
    try:
        # the positive signal: the follower lost the leader and asked, twice, for an election
        wait_until(lambda: api(lab, "/api/v1/cluster", at_follower).json()["preVoteRounds"] >= asked + 2,
                   60, interval=0.3, what="the cut-off follower asking for an election")
        status = api(lab, "/api/v1/cluster", at_leader).json()
        assert (status["state"], status["term"]) == ("leader", term)
        assert api(lab, "/api/v1/cluster", at_follower).json()["term"] == term
        nodes = api(lab, "/api/v1/nodes", at_leader).json()["items"]
        assert all(ready_condition(n) for n in nodes), [n["metadata"]["name"] for n in nodes]
    finally:
        CliRunner().invoke(berth, ["lab", "heal", "--name", lab.name], catch_exceptions=False)
    wait_until(lambda: _leader_host(lab, (at_follower,)) == leader, 30, interval=0.3,
               what="the follower following the same leader again")
    assert api(lab, "/api/v1/cluster", at_leader).json()["term"] == term


HEAL = """apiVersion: berth/v1
kind: Deployment
metadata: {{name: heal}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: heal}}}}
  template:
    metadata: {{labels: {{app: heal}}}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: web
        image: localhost/busybox:lab
        command: [sleep, "3600"]
        resources: {{requests: {{cpu: 50m, memory: 16Mi}}}}
"""


def cli(lab: Lab, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "berth.cli.main", *args], input=stdin, text=True,
                          capture_output=True, timeout=120, cwd=Path(__file__).resolve().parent.parent,
                          env={"PATH": "/usr/bin:/bin", "BERTH_CONFIG": str(lab.cli_config)})


def heal_pods(lab: Lab) -> list[dict]:
    return api(lab, "/api/v1/namespaces/default/pods?labelSelector=app=heal", _answering(lab)).json()["items"]


def _answering(lab: Lab) -> int:
    """A master that answers (a crashed or cut-off host's may not)."""
    for index in range(3):
        try:
            if api(lab, "/readyz", index).status_code == 200:
                return index
        except requests.RequestException:
            continue
    raise requests.ConnectionError("no master answers")


def running_elsewhere(lab: Lab, host: str, replicas: int) -> bool:
    serving = [p for p in heal_pods(lab) if p["spec"].get("nodeName") != host
               and not p["metadata"].get("deletionTimestamp")
               and any(c["type"] == "Ready" and c["status"] == "True"
                       for c in (p.get("status") or {}).get("conditions") or [])]
    return len(serving) == replicas


def containers_on(lab: Lab, host: str) -> int:
    """The deployment's containers the host's podman runs (counted on the host, not the API)."""
    listed = hosts.in_host(lab, host, ["podman", "ps", "--filter", "label=berth.namespace=default",
                                       "--format", "{{.Names}}"], check=False)
    if listed.returncode != 0:  # not a count: asked again (wait_until retries on ValueError)
        raise ValueError(f"podman ps on {host}: {listed.stderr.strip()[:300]}")
    return sum(1 for name in listed.stdout.split() if name.startswith("berth-default-heal-") and
               name.endswith("-web"))


def exact(lab: Lab, replicas: int) -> bool:
    return sum(containers_on(lab, h) for h in lab.host_names()) == replicas


def settled(lab: Lab) -> bool:
    """Every master answers and names the same leader in the same term: an earlier test's
    partition or crash is over (an election it caused may take a few rounds to end)."""
    seen = set()
    for index in range(3):
        status = api(lab, "/api/v1/cluster", index).json()
        if not status.get("leader"):
            return False
        seen.add((status["leader"], status["term"]))
    return len(seen) == 1


def deployed_heal(lab: Lab, replicas: int) -> str:
    """The deployment rolled out; the name of a host that holds a replica and does not lead."""
    wait_until(lambda: settled(lab), 90, interval=0.5, what="every master following one leader")
    applied = cli(lab, "apply", "-f", "-", stdin=HEAL.format(replicas=replicas))
    assert applied.returncode == 0, applied.stderr
    path = "/api/v1/namespaces/default/deployments/heal"  # reads are local: every master has it first
    wait_until(lambda: all(api(lab, path, i).status_code == 200 for i in range(3)), 30, interval=0.2,
               what="the deployment on every master")
    rolled = cli(lab, "rollout", "status", "deploy/heal", "--timeout=90s")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    leader = wait_until(lambda: _leader_host(lab), 30, what="a leader")
    return next(p["spec"]["nodeName"] for p in heal_pods(lab) if p["spec"]["nodeName"] != leader)


def remove_heal(lab: Lab) -> None:
    cli(lab, "delete", "deploy", "heal")
    wait_until(lambda: not heal_pods(lab) and exact(lab, 0), 90, interval=0.5,
               what="the heal deployment gone")


def test_a_crashed_hosts_replicas_run_elsewhere_and_it_comes_back_with_none(lab: Lab) -> None:
    """The seed's self-healing: a crashed host's replicas are made again elsewhere within seconds
    (SSH fails too, so they go without waiting out their tolerations); started again, the host
    keeps none of its old copies: the exact count runs, counted with podman on every host."""
    victim = deployed_heal(lab, 3)
    try:
        hosts.crash_host(lab, victim)
        wait_until(lambda: ready(lab, victim) is False, 30, what=f"crashed {victim} NotReady")
        wait_until(lambda: running_elsewhere(lab, victim, 3), 60, interval=0.5,
                   what="three replicas ready on the other hosts")
        wait_until(lambda: not [p for p in heal_pods(lab) if p["spec"].get("nodeName") == victim], 60,
                   interval=0.5, what="the crashed host's pods gone from the API")
        result = CliRunner().invoke(berth, ["lab", "start", "--name", lab.name, victim],
                                    catch_exceptions=False)
        assert result.exit_code == 0, result.output
        wait_until(lambda: ready(lab, victim) is True, 90, what=f"{victim} Ready after start")
        node = f"/api/v1/nodes/{victim}"
        wait_until(lambda: not api(lab, node, _answering(lab)).json()["spec"].get("taints"), 60,
                   interval=0.5, what="the returning taint taken off once the host is clean")
        wait_until(lambda: exact(lab, 3), 60, interval=0.5, what="exactly 3 containers across the hosts")
        try:
            wait_until(lambda: all(api(lab, "/readyz", i).status_code == 200 for i in range(3)), 60,
                       interval=0.5, what="every master back")
        except TimeoutError:
            print((lab.host_dir(victim) / "berth" / "run" / "berth-master.log").read_text()[-3000:])
            print(hosts.in_host(lab, victim, ["ps", "-ef"], check=False).stdout)
            raise
    finally:
        remove_heal(lab)


def test_a_host_cut_off_from_every_master_stops_its_own_copies(lab: Lab) -> None:
    """A partition: the masters cannot reach the host (SSH fails: its pods go at once) and its agent
    cannot reach a master that leads: after fence_after_seconds it stops its copies, so two run
    for a bounded time only; healed, the total is exact again."""
    victim = deployed_heal(lab, 3)
    others = [h for h in lab.host_names() if h != victim]
    try:
        for other in others:
            CliRunner().invoke(berth, ["lab", "partition", "--name", lab.name, victim, other],
                               catch_exceptions=False)
        wait_until(lambda: running_elsewhere(lab, victim, 3), 60, interval=0.5,
                   what="three replicas ready on the reachable hosts")
        agent_log = lab.host_dir(victim) / "berth" / "run" / "berth-agent.log"
        try:  # the agent's own word that it fenced, and then nothing of the deployment runs there
            wait_until(lambda: "self-fence: no master" in agent_log.read_text()
                       and containers_on(lab, victim) == 0, 90, interval=0.5,
                       what="the cut-off host's agent stopping its copies")
        except TimeoutError:
            _print_logs(lab, victim)
            raise
    finally:
        CliRunner().invoke(berth, ["lab", "heal", "--name", lab.name], catch_exceptions=False)
    try:
        wait_until(lambda: ready(lab, victim) is True, 90, what=f"{victim} Ready after the heal")
        wait_until(lambda: exact(lab, 3), 60, interval=0.5, what="exactly 3 containers after the heal")

        def told() -> bool:
            events = api(lab, "/api/v1/namespaces/default/events", _answering(lab)).json()["items"]
            return any(e["reason"] == "SelfFenced" and e["involvedObject"]["name"] == victim for e in events)

        try:
            wait_until(told, 60, interval=0.5, what="the agent's self-fence told as an event on its node")
        except TimeoutError:
            _print_logs(lab, victim)
            raise
        node = f"/api/v1/nodes/{victim}"
        wait_until(lambda: not api(lab, node, _answering(lab)).json()["spec"].get("taints"), 60,
                   interval=0.5, what="the returning taint taken off once the host is clean")
        assert exact(lab, 3)
    finally:
        remove_heal(lab)


def _print_logs(lab: Lab, victim: str) -> None:
    """What a failed self-healing test needs to be understood: the masters' and the agent's words."""
    for host in deploy.masters_of(lab):
        log = (lab.host_dir(host) / "berth" / "run" / "berth-master.log").read_text()
        print(f"--- {host} master:", "\n".join(line for line in log.splitlines()[-3000:]
                                               if "node_check" in line or "node-check" in line
                                               or "leading" in line or "runtime" in line
                                               or "taint" in line or "evict" in line)[-6000:])
    agent = lab.host_dir(victim) / "berth" / "run" / "berth-agent.log"
    print(f"--- {victim} agent:", agent.read_text()[-3000:])
    print(hosts.in_host(lab, victim, ["ps", "-eo", "pid,stat,args"], check=False).stdout)


def test_a_silent_agent_is_restarted_over_ssh_and_nothing_is_evicted(lab: Lab) -> None:
    """Only the agent fails (stopped with SIGSTOP, so its supervisor does not restart it): the
    leader finds the host answering and its pods running, keeps them, and restarts the agent."""
    victim = deployed_heal(lab, 3)
    before = {p["metadata"]["uid"] for p in heal_pods(lab)}

    def restart_told() -> bool:  # the master answering may be a follower a moment behind
        events = api(lab, "/api/v1/namespaces/default/events", _answering(lab)).json()["items"]
        return any(e["reason"] == "AgentRestarted" and e["involvedObject"]["name"] == victim for e in events)
    try:
        pid = (lab.host_dir(victim) / "berth" / "run" / "berth-agent.pid").read_text().strip()
        hosts.in_host(lab, victim, ["kill", "-STOP", pid])
        try:
            wait_until(lambda: ready(lab, victim) is False, 30, what=f"{victim} NotReady")
            wait_until(lambda: ready(lab, victim) is True, 60,
                       what=f"{victim} Ready again: its agent restarted")
            assert {p["metadata"]["uid"] for p in heal_pods(lab)} == before  # nothing evicted, nothing made
            wait_until(restart_told, 10, interval=0.5, what=f"an AgentRestarted event on {victim}")
        except (AssertionError, TimeoutError):
            _print_logs(lab, victim)
            raise
        assert exact(lab, 3)
    finally:
        remove_heal(lab)


BROKEN_ENGINE = "#!/bin/sh\necho 'Error: this engine was broken by a test' >&2\nexit 125\n"


def _restarts_told(lab: Lab, node: str) -> int:
    events = api(lab, "/api/v1/namespaces/default/events", _answering(lab)).json()["items"]
    return sum(e.get("count", 1) for e in events
               if e["reason"] == "AgentRestarted" and e["involvedObject"]["name"] == node)


def test_a_host_whose_engine_fails_is_not_ready_and_its_pods_move(lab: Lab) -> None:
    """The agent heartbeats but its container engine fails (podman answering every command with
    an error, a file bound over it inside the host): the agent says so, the node turns NotReady
    (Ready False, reason RuntimeNotReady, not Unknown) with the not-ready taint, its replicas move,
    and its agent is not restarted (it is heard). The engine mended, the host is cleaned of the old
    copies before it takes work, and the total is exact."""
    victim = deployed_heal(lab, 3)
    restarts = _restarts_told(lab, victim)
    broken = lab.host_dir(victim) / "broken-podman"
    broken.write_text(BROKEN_ENGINE)
    broken.chmod(0o755)
    node = f"/api/v1/nodes/{victim}"

    def ready_says() -> dict:
        return condition(api(lab, node, _answering(lab)).json(), "Ready") or {}

    hosts.in_host(lab, victim, ["mount", "--bind", str(broken), "/usr/bin/podman"])
    try:
        try:
            wait_until(lambda: ready_says().get("reason") == "RuntimeNotReady", 60, interval=0.5,
                       what=f"{victim} NotReady for its engine")
        except TimeoutError:
            _print_logs(lab, victim)
            raise
        said = ready_says()
        assert said["status"] == "False" and "broken by a test" in said["message"], said
        taints = api(lab, node, _answering(lab)).json()["spec"].get("taints")
        assert {"key": "node.berth.io/not-ready", "effect": "NoExecute"} in taints, taints
        wait_until(lambda: running_elsewhere(lab, victim, 3), 60, interval=0.5,
                   what="three replicas ready on the other hosts")
        wait_until(lambda: not [p for p in heal_pods(lab) if p["spec"].get("nodeName") == victim], 60,
                   interval=0.5, what="the failing host's pods gone from the API")
        assert _restarts_told(lab, victim) == restarts  # it heartbeats: its agent is not to blame
    finally:
        hosts.in_host(lab, victim, ["umount", "/usr/bin/podman"], check=False)
    try:
        wait_until(lambda: ready(lab, victim) is True, 60, what=f"{victim} Ready with its engine mended")
        wait_until(lambda: not api(lab, node, _answering(lab)).json()["spec"].get("taints"), 60,
                   interval=0.5, what="the returning taint taken off once the host is clean")
        wait_until(lambda: exact(lab, 3), 60, interval=0.5, what="exactly 3 containers across the hosts")
    finally:
        remove_heal(lab)


def _leader_host(lab: Lab, asking: tuple[int, ...] = (0, 1, 2)) -> str | None:
    """The leader as the first master of `asking` that answers sees it (None: none known)."""
    for index in asking:
        try:
            status = api(lab, "/api/v1/cluster", index).json()
        except (requests.RequestException, ValueError):
            continue
        if status.get("leader"):
            return next(h for h in deploy.masters_of(lab)
                        if status["leader"].startswith(lab.address(h) + ":"))
    return None


def _pod(lab: Lab, name: str, index: int) -> dict:
    return api(lab, f"/api/v1/namespaces/default/pods/{name}", index).json()


def _containers(lab: Lab, pod_name: str) -> dict[str, list[str]]:
    """Per host: the states of the pod's containers there."""
    podman = DRIVERS["podman"]
    found = {}
    for host in lab.host_names():
        listed = podman.parse_list(hosts.in_host(lab, host, podman.list_managed()).stdout)
        found[host] = [s.state for s in listed if s.labels.get("berth.pod") == pod_name and not s.sandbox]
    return found


def test_a_leader_cut_off_acts_on_no_host_and_the_new_leader_acts_once(lab: Lab) -> None:
    """Fencing: a leader cut off by a partition believes it leads for a while; it must not act."""
    old = wait_until(lambda: _leader_host(lab), 30, what="a leader")
    others = [h for h in deploy.masters_of(lab) if h != old]
    majority = deploy.masters_of(lab).index(others[0])
    admin = {"Authorization": f"Bearer {deploy.admin_token(lab)}"}
    pinned = {"apiVersion": "berth/v1", "kind": "Pod", "metadata": {"name": "pinned"},
              "spec": {"nodeName": old, "containers": [{"name": "main", "image": "localhost/busybox:lab",
                                                        "command": ["sleep", "600"]}]}}
    created = requests.post(deploy.api_urls(lab)[majority] + "/api/v1/namespaces/default/pods",
                            json=pinned, headers=admin, timeout=10, verify=str(deploy.ca_file(lab)))
    assert created.status_code == 201, created.text
    wait_until(lambda: (_pod(lab, "pinned", majority).get("status") or {}).get("phase") == "Running", 90,
               interval=0.5, what="pinned Running on the leader's host")
    for other in others:
        CliRunner().invoke(berth, ["lab", "partition", "--name", lab.name, old, other],
                           catch_exceptions=False)
    try:
        # the old leader's own host is the one it can still reach: its pod's container dies there
        running = hosts.in_host(lab, old, ["podman", "ps", "--format", "{{.Names}}"]).stdout.split()
        name = next(n for n in running if "-pinned-" in n and n.endswith("-main"))
        hosts.in_host(lab, old, ["podman", "kill", name])
        majority_side = tuple(deploy.masters_of(lab).index(h) for h in others)
        wait_until(lambda: _leader_host(lab, majority_side) in others, 60, interval=0.5,
                   what="a new leader in the majority")
        # the positive signal: the cut-off master itself says it no longer leads; from then on it
        # runs no round at all, and until then its rounds could not commit their fence
        cut_off = deploy.masters_of(lab).index(old)
        wait_until(lambda: api(lab, "/api/v1/cluster", cut_off).json()["state"] != "leader", 60,
                   interval=0.5, what="the cut-off master stepping down")
        assert _containers(lab, "pinned")[old] == ["exited"], "the cut-off leader restarted a container"
    finally:
        CliRunner().invoke(berth, ["lab", "heal", "--name", lab.name], catch_exceptions=False)
    # healed: the one leader restarts it, once
    wait_until(lambda: _containers(lab, "pinned")[old] == ["running"], 90, interval=0.5,
               what="pinned restarted after the heal")
    wait_until(lambda: _pod(lab, "pinned", majority)["status"]["containerStatuses"][0]["restartCount"] == 1,
               60, interval=0.5, what="restart count 1")

    def settled() -> dict | None:  # a later round saw it running (its start time known), restarts still 1
        entry = _pod(lab, "pinned", majority)["status"]["containerStatuses"][0]
        return entry if (entry["state"].get("running") or {}).get("startedAt") else None

    assert wait_until(settled, 60, interval=0.5, what="a round after the restart")["restartCount"] == 1
    assert sum(len(states) for states in _containers(lab, "pinned").values()) == 1


PROBED = """kind: Pod
metadata: {name: probed}
spec:
  terminationGracePeriodSeconds: 25
  containers:
  - name: web
    image: localhost/busybox:lab
    command: [sh, -c, 'touch /tmp/healthy; echo ok > /tmp/index.html; exec httpd -f -p 8080 -h /tmp']
    livenessProbe: {exec: {command: [test, -e, /tmp/healthy]}, periodSeconds: 1, failureThreshold: 2}
    readinessProbe: {httpGet: {path: /index.html, port: 8080}, periodSeconds: 1}
---
kind: Pod
metadata: {name: never-ready}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: localhost/busybox:lab
    command: [sleep, '600']
    readinessProbe: {tcpSocket: {port: 9}, periodSeconds: 1}
"""


def _ready_condition(pod: dict) -> str | None:
    ready = condition(pod, "Ready")
    return None if ready is None else ready["status"]


def test_probes_run_by_the_agent_restart_the_unhealthy_and_gate_ready(lab: Lab) -> None:
    env = {"PATH": "/usr/bin:/bin", "BERTH_CONFIG": str(lab.cli_config)}
    root = Path(__file__).resolve().parent.parent

    def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "berth.cli.main", *args], input=stdin, text=True,
                              capture_output=True, timeout=60, cwd=root, env=env)

    applied = cli("apply", "-f", "-", stdin=PROBED)
    assert applied.returncode == 0, applied.stderr
    wait_until(lambda: _ready_condition(_pod(lab, "probed", 0)) == "True", 90, interval=0.5,
               what="probed Ready (readiness probe passing)")
    wait_until(lambda: (_pod(lab, "never-ready", 0).get("status") or {}).get("phase") == "Running", 90,
               interval=0.5, what="never-ready Running")
    node = _pod(lab, "probed", 0)["spec"]["nodeName"]
    container = container_name(_pod(lab, "probed", 0), "web")

    def started() -> str:
        return hosts.in_host(lab, node, ["podman", "inspect", "--format", "{{.State.StartedAt}}",
                                         container]).stdout.strip()

    first_start = started()
    assert cli("exec", "probed", "--", "rm", "/tmp/healthy").returncode == 0

    def killing() -> bool:
        events = cli("get", "events", "-o", "json").stdout
        return '"Killing"' in events and "probed" in events

    wait_until(killing, 90, interval=0.5, what="probed's liveness restart begun (Killing)")
    # the agent ran its probes round after round meanwhile: never-ready's failing readiness
    # probe kept it not Ready, and readiness restarts nothing
    assert _ready_condition(_pod(lab, "never-ready", 0)) == "False"
    assert _pod(lab, "never-ready", 0)["status"]["containerStatuses"][0]["restartCount"] == 0
    # httpd ignores SIGTERM: its restart takes the whole 25 s grace, in the background; meanwhile
    # a new pod on the same host starts
    bystander = ("kind: Pod\nmetadata: {name: bystander}\nspec:\n  nodeName: " + node +
                 "\n  containers:\n  - {name: main, image: localhost/busybox:lab, command: [sleep, '600']}\n")
    assert cli("apply", "-f", "-", stdin=bystander).returncode == 0
    wait_until(lambda: (_pod(lab, "bystander", 0).get("status") or {}).get("phase") == "Running", 60,
               interval=0.3, what="bystander Running")
    assert started() == first_start  # the unhealthy container is still being stopped, and the
    stopping = _pod(lab, "probed", 0)["status"]["containerStatuses"][0]  # status says so (the bug:
    assert stopping["restartCount"] == 0 and stopping["ready"] is False  # RESTARTS 1, no start)
    assert stopping["state"]["running"]["startedAt"]
    wait_until(lambda: _pod(lab, "probed", 0)["status"]["containerStatuses"][0]["restartCount"] == 1, 90,
               interval=0.5, what="probed restarted by its liveness probe")
    last = _pod(lab, "probed", 0)["status"]["containerStatuses"][0]["lastState"]["terminated"]
    assert last["reason"] == "Unhealthy" and "liveness" in last["message"]
    wait_until(lambda: _ready_condition(_pod(lab, "probed", 0)) == "True", 90, interval=0.5,
               what="probed Ready again after the restart")
    assert _pod(lab, "probed", 0)["status"]["containerStatuses"][0]["restartCount"] == 1
    assert started() != first_start


def test_scheduling_on_the_real_hosts(lab: Lab) -> None:
    """20 pods spread over the 3 hosts and run; reasons per node for what fits nowhere."""
    env = {"PATH": "/usr/bin:/bin", "BERTH_CONFIG": str(lab.cli_config)}
    root = Path(__file__).resolve().parent.parent
    # replicas of one owner, as a deployment's: spread evenly whatever else already runs on the hosts
    owner = "ownerReferences: [{kind: Deployment, name: spread}]"
    spread = "".join(f"---\nkind: Pod\nmetadata: {{name: spread-{i}, labels: {{app: spread}}, {owner}}}\n"
                     f"spec:\n  terminationGracePeriodSeconds: 0\n  containers:\n  - name: main\n"
                     f"    image: localhost/busybox:lab\n    command: [sleep, '600']\n"
                     f"    resources: {{requests: {{cpu: 10m, memory: 8Mi}}}}\n" for i in range(20))
    misfits = ("---\nkind: Pod\nmetadata: {name: too-big}\nspec:\n  containers:\n  - name: main\n"
               "    image: localhost/busybox:lab\n    resources: {requests: {memory: 4000Gi}}\n"
               "---\nkind: Pod\nmetadata: {name: picky}\nspec:\n  nodeSelector: {disk: nvme}\n"
               "  containers:\n  - name: main\n    image: localhost/busybox:lab\n")
    applied = subprocess.run([sys.executable, "-m", "berth.cli.main", "apply", "-f", "-"],
                             input=spread + misfits, text=True, capture_output=True, timeout=60, cwd=root,
                             env=env)
    assert applied.returncode == 0, applied.stderr
    pods_path = "/api/v1/namespaces/default/pods?labelSelector=app%3Dspread"

    def running() -> list[dict] | None:
        items = api(lab, pods_path).json()["items"]
        done = [p for p in items if (p.get("status") or {}).get("phase") == "Running"]
        return done if len(done) == 20 else None

    placed = wait_until(running, 180, interval=1.0, what="20 pods Running")
    assert sorted(Counter(p["spec"]["nodeName"] for p in placed).values()) == [6, 7, 7]

    def reason(name: str) -> str | None:
        scheduled = condition(_pod(lab, name, 0), "PodScheduled")
        return scheduled["message"] if scheduled and scheduled["status"] == "False" else None

    assert wait_until(lambda: reason("too-big"), 30, what="too-big's reason") == \
        "0/3 nodes fit: 3 Insufficient memory"
    assert wait_until(lambda: reason("picky"), 30, what="picky's reason") == \
        "0/3 nodes fit: 3 node(s) didn't match Pod's node selector"
    described = subprocess.run([sys.executable, "-m", "berth.cli.main", "describe", "pod", "too-big"],
                               text=True, capture_output=True, timeout=60, cwd=root, env=env).stdout
    assert "FailedScheduling" in described
    subprocess.run([sys.executable, "-m", "berth.cli.main", "delete", "pods", "-l", "app=spread", "--now"],
                   capture_output=True, timeout=120, cwd=root, env=env)


# --- persistent volumes (issue 16) -------------------------------------------------------------

CLAIMED = """apiVersion: berth/v1
kind: PersistentVolumeClaim
metadata: {{name: {name}}}
spec:
  {storage_class}accessModes: [{mode}]
  resources: {{requests: {{storage: 64Mi}}}}
---
apiVersion: berth/v1
kind: Pod
metadata: {{name: {name}, labels: {{app: {name}}}}}
spec:
  terminationGracePeriodSeconds: 1
  volumes: [{{name: data, persistentVolumeClaim: {{claimName: {name}}}}}]
  containers:
  - name: main
    image: localhost/busybox:lab
    command: [sh, -c, "[ -f /data/kept ] || echo {name}-$RANDOM$RANDOM > /data/kept; sync; exec sleep 3600"]
    volumeMounts: [{{name: data, mountPath: /data}}]
"""


def claimed(name: str, storage_class: str = "", mode: str = "ReadWriteOnce") -> str:
    return CLAIMED.format(name=name, mode=mode,
                          storage_class=f"storageClassName: {storage_class}\n  " if storage_class else "")


def obj(lab: Lab, path: str) -> dict | None:
    answer = api(lab, path, _answering(lab))
    return answer.json() if answer.status_code == 200 else None


def running_on(lab: Lab, name: str) -> str | None:
    """The node of the pod `name` once it runs (None before)."""
    found = obj(lab, f"/api/v1/namespaces/default/pods/{name}")
    running = found is not None and (found.get("status") or {}).get("phase") == "Running"
    return found["spec"]["nodeName"] if running else None


def on_host_path(lab: Lab, host: str, path: str) -> Path:
    """A path under a lab host's /var/lib/berth, as the machine sees it (the host's own directory)."""
    return lab.host_dir(host) / "var-lib-berth" / path.removeprefix("/var/lib/berth/")


def read_kept(lab: Lab, name: str) -> str:
    done = cli(lab, "exec", name, "--", "cat", "/data/kept")
    return done.stdout.strip() if done.returncode == 0 else ""


def test_a_local_claim_pins_its_pod_to_one_node_and_keeps_its_data(lab: Lab) -> None:
    """The default class (local, WaitForFirstConsumer): the claim binds where the scheduler put its
    first pod; a new pod of the claim goes to that node again and reads what the first one wrote."""
    assert cli(lab, "apply", "-f", "-", stdin=claimed("local-data")).returncode == 0
    try:
        node = wait_until(lambda: running_on(lab, "local-data"), 90, interval=0.5, what="the pod running")
        claim = obj(lab, "/api/v1/namespaces/default/persistentvolumeclaims/local-data")
        assert claim is not None and claim["status"]["phase"] == "Bound"
        volume = obj(lab, f"/api/v1/persistentvolumes/{claim['spec']['volumeName']}")
        assert volume is not None and volume["spec"]["local"]["path"].startswith("/var/lib/berth/volumes/")
        terms = volume["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
        assert terms[0]["matchExpressions"][0]["values"] == [node]
        written = wait_until(lambda: read_kept(lab, "local-data"), 30, interval=0.5, what="the file written")
        assert written.startswith("local-data-")
        on_disk = on_host_path(lab, node, volume["spec"]["local"]["path"]) / "kept"
        assert on_disk.read_text().strip() == written  # the node's own directory
        listed = cli(lab, "get", "pvc,pv")
        assert "local-data" in listed.stdout and "Bound" in listed.stdout and "local" in listed.stdout
        assert cli(lab, "delete", "pod", "local-data").returncode == 0
        wait_until(lambda: obj(lab, "/api/v1/namespaces/default/pods/local-data") is None, 60, interval=0.5,
                   what="the first pod gone")
        assert cli(lab, "apply", "-f", "-", stdin=claimed("local-data")).returncode == 0
        assert wait_until(lambda: running_on(lab, "local-data"), 90, interval=0.5, what="again") == node
        assert wait_until(lambda: read_kept(lab, "local-data"), 30, interval=0.5, what="read") == written
    finally:
        cli(lab, "delete", "pod", "local-data")
        cli(lab, "delete", "pvc", "local-data")


def test_a_claim_in_use_resists_deletion_and_its_volume_goes_with_it(lab: Lab) -> None:
    """kubernetes.io/pvc-protection: deleting a claim a pod uses marks it Terminating; it goes once
    the pod is gone, and its provisioned volume (reclaim Delete) and directory with it."""
    assert cli(lab, "apply", "-f", "-", stdin=claimed("held-data")).returncode == 0
    node = wait_until(lambda: running_on(lab, "held-data"), 90, interval=0.5, what="the pod running")
    path = "/api/v1/namespaces/default/persistentvolumeclaims/held-data"
    volume_name = obj(lab, path)["spec"]["volumeName"]  # type: ignore[index]
    volume = obj(lab, f"/api/v1/persistentvolumes/{volume_name}")
    directory = on_host_path(lab, node, volume["spec"]["local"]["path"])  # type: ignore[index]
    assert cli(lab, "delete", "pvc", "held-data").returncode == 0  # berth delete does not wait
    held = wait_until(lambda: obj(lab, path), 10, what="the claim still there")
    assert held["metadata"].get("deletionTimestamp") and "kubernetes.io/pvc-protection" in held["metadata"][
        "finalizers"]
    assert "Terminating" in cli(lab, "get", "pvc", "held-data").stdout
    assert read_kept(lab, "held-data")  # the pod still uses it
    assert cli(lab, "delete", "pod", "held-data").returncode == 0
    wait_until(lambda: obj(lab, path) is None, 60, interval=0.5, what="the claim gone with its last pod")
    wait_until(lambda: obj(lab, f"/api/v1/persistentvolumes/{volume_name}") is None, 60, interval=0.5,
               what="its volume deleted (reclaim Delete)")
    wait_until(lambda: not directory.exists(), 60, interval=0.5, what="the volume's directory removed")


def test_a_shared_claims_data_survives_a_crash_of_its_pods_host(lab: Lab) -> None:
    """The shared class: the volume is a directory on the storage host (the first host), mounted
    with sshfs where the pod runs. What the pod wrote (and synced) is read by its replacement on
    another host after the first host crashed."""
    storage = lab.host_names()[0]
    leader = wait_until(lambda: _leader_host(lab), 30, what="a leader")
    assert cli(lab, "cordon", storage).returncode == 0  # the pod runs away from the storage host ...
    spare = [h for h in lab.host_names() if h not in (storage, leader)]
    others = [h for h in lab.host_names() if h not in (storage, spare[0])]
    for host in others:
        cli(lab, "cordon", host)  # ... and from the leader, so that crashing its host keeps the masters
    victim = None
    try:
        manifest = claimed("shared-data", "shared", "ReadWriteMany")
        assert cli(lab, "apply", "-f", "-", stdin=manifest).returncode == 0
        victim = wait_until(lambda: running_on(lab, "shared-data"), 90, interval=0.5, what="the pod running")
        assert victim == spare[0]
        written = wait_until(lambda: read_kept(lab, "shared-data"), 30, interval=0.5, what="written")
        claim = obj(lab, "/api/v1/namespaces/default/persistentvolumeclaims/shared-data")
        volume = obj(lab, f"/api/v1/persistentvolumes/{claim['spec']['volumeName']}")  # type: ignore[index]
        assert volume["spec"]["sshfs"]["server"] == storage  # type: ignore[index]
        on_server = on_host_path(lab, storage, volume["spec"]["sshfs"]["path"]) / "kept"  # type: ignore[index]
        assert on_server.read_text().strip() == written  # on the storage host's disk
        mounted = hosts.in_host(lab, victim, ["cat", "/proc/mounts"], check=False).stdout
        assert "fuse.sshfs" in mounted
        # the key that mounts it logs in as the storage user, for SFTP alone: never as root, never a shell
        storage_ssh = ["ssh", "-i", "/var/lib/berth/storage/ssh-key", "-o", "BatchMode=yes",
                       "-o", "UserKnownHostsFile=/var/lib/berth/storage/known_hosts",
                       "-o", "StrictHostKeyChecking=yes"]
        as_root = hosts.in_host(lab, victim, [*storage_ssh, f"root@{lab.address(storage)}", "id"],
                                check=False, timeout=30)
        assert as_root.returncode != 0 and "uid=0" not in as_root.stdout
        as_user = hosts.in_host(lab, victim, [*storage_ssh, f"berth-storage@{lab.address(storage)}", "id"],
                                check=False, timeout=30)
        assert "uid=" not in as_user.stdout  # the forced SFTP server, whatever was asked
        hosts.crash_host(lab, victim)
        wait_until(lambda: obj(lab, "/api/v1/namespaces/default/pods/shared-data") is None, 60,
                   interval=0.5, what="the crashed host's pod deleted")
        for host in others:
            cli(lab, "uncordon", host)
        assert cli(lab, "apply", "-f", "-", stdin=manifest).returncode == 0  # its replacement
        elsewhere = wait_until(lambda: running_on(lab, "shared-data"), 90, interval=0.5, what="replacement")
        assert elsewhere not in (victim, storage)
        assert wait_until(lambda: read_kept(lab, "shared-data"), 30, interval=0.5, what="read") == written
        # ReadWriteMany: a second pod on another host (the storage host itself) at the same time
        peer = manifest.split("---\n")[1].replace("name: shared-data, labels", "name: shared-peer, labels")
        peer = peer.replace("spec:\n", f"spec:\n  nodeName: {storage}\n", 1)
        peer = peer.replace("[ -f /data/kept ] || echo shared-data-$RANDOM$RANDOM > /data/kept",
                            "echo from-peer > /data/peer")
        assert cli(lab, "apply", "-f", "-", stdin=peer).returncode == 0
        assert wait_until(lambda: running_on(lab, "shared-peer"), 90, interval=0.5, what="peer") == storage
        assert wait_until(lambda: read_kept(lab, "shared-peer"), 30, interval=0.5, what="peer") == written
        seen = cli(lab, "exec", "shared-data", "--", "cat", "/data/peer")
        assert seen.stdout.strip() == "from-peer", seen.stderr
    finally:
        for host in lab.host_names():
            cli(lab, "uncordon", host)
        cli(lab, "delete", "pod", "shared-peer")
        cli(lab, "delete", "pod", "shared-data")
        cli(lab, "delete", "pvc", "shared-data")
        if victim is not None:
            CliRunner().invoke(berth, ["lab", "start", "--name", lab.name, victim], catch_exceptions=False)
            wait_until(lambda: ready(lab, victim) is True, 90, what=f"{victim} Ready after start")
