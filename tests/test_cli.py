"""The `berth` CLI as a user runs it, against three real masters."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from berth.lab.masters import free_ports
from tests.conftest import STORE_ONLY
from tests.harness import TOKENS, MasterCluster, add_node, berth, cli_env

# The nodes here have no agent: a long grace keeps the node controller from marking them
# unreachable mid-test (its taint write once raced `berth taint` on a slow CI machine).
CLUSTER_SETTINGS = {**STORE_ONLY, "node_grace_seconds": 3600}

MANIFEST = """
apiVersion: berth/v1
kind: Pod
metadata: {name: cli-web, labels: {app: cli}}
spec:
  containers:
  - {name: web, image: localhost/busybox:lab, command: [httpd, -f],
     resources: {requests: {cpu: 100m, memory: 16Mi}}}
---
apiVersion: berth/v1
kind: ConfigMap
metadata: {name: cli-config}
data: {a: "1", b: "2"}
"""


def test_apply_get_describe_delete(cluster: MasterCluster, tmp_path: Path) -> None:
    manifest = tmp_path / "app.yaml"
    manifest.write_text(MANIFEST)
    applied = berth(cluster, "apply", "-f", str(manifest))
    assert applied.returncode == 0, applied.stderr
    assert "pod/cli-web created" in applied.stdout and "configmap/cli-config created" in applied.stdout
    assert "unchanged" in berth(cluster, "apply", "-f", "-", stdin=MANIFEST).stdout

    table = berth(cluster, "get", "po", "-l", "app=cli")
    assert table.returncode == 0 and "cli-web" in table.stdout and "NAME" in table.stdout
    as_json = json.loads(berth(cluster, "get", "pod", "cli-web", "-o", "json").stdout)
    assert as_json["metadata"]["labels"] == {"app": "cli"}
    as_yaml = yaml.safe_load(berth(cluster, "get", "cm", "cli-config", "-o", "yaml").stdout)
    assert as_yaml["data"] == {"a": "1", "b": "2"}
    described = berth(cluster, "describe", "pods", "cli-web")
    assert described.returncode == 0 and "cli-web" in described.stdout
    every = berth(cluster, "get", "configmaps", "-A")
    assert "cli-config" in every.stdout and "NAMESPACE" in every.stdout

    deleted = berth(cluster, "delete", "po", "cli-web")
    assert deleted.returncode == 0
    missing = berth(cluster, "get", "pod", "cli-web")
    assert missing.returncode == 1 and "NotFound" in missing.stderr


def test_create_conflict_and_bad_input_exit_nonzero_with_the_api_message(
    cluster: MasterCluster, tmp_path: Path,
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(MANIFEST.replace("cpu: 100m", "cpu: lots").replace("cli-web", "cli-bad"))
    result = berth(cluster, "create", "-f", str(bad))
    assert result.returncode == 1
    assert "spec.containers[0].resources.requests.cpu" in result.stderr
    assert "Traceback" not in result.stderr
    good = tmp_path / "cm.yaml"
    good.write_text("kind: ConfigMap\nmetadata: {name: once}\ndata: {k: v}\n")
    assert berth(cluster, "create", "-f", str(good)).returncode == 0
    again = berth(cluster, "create", "-f", str(good))
    assert again.returncode == 1 and "AlreadyExists" in again.stderr
    forbidden = berth(cluster, "delete", "cm", "once", role="viewer")
    assert forbidden.returncode == 1 and "Forbidden" in forbidden.stderr
    unknown = berth(cluster, "get", "gadgets")
    assert unknown.returncode == 1 and "gadgets" in unknown.stderr


def test_cluster_status_and_failover_to_the_next_master(cluster: MasterCluster) -> None:
    status = berth(cluster, "cluster", "status")
    assert status.returncode == 0, status.stderr
    assert "leader" in status.stdout and "follower" in status.stdout
    dead = f"http://127.0.0.1:{free_ports(1)[0]}"
    listed = berth(cluster, "get", "nodes", servers=[dead, cluster.masters[1].api_url])
    assert listed.returncode == 0, listed.stderr


def test_config_file_and_watch(cluster: MasterCluster, tmp_path: Path) -> None:
    config = tmp_path / ".config" / "berth" / "config.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(yaml.safe_dump({"servers": [m.api_url for m in cluster.masters],
                                      "token": TOKENS["admin"][1],
                                      "certificate-authority": str(cluster.ca_file)}))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    command = [sys.executable, "-m", "berth.cli.main"]
    root = Path(__file__).resolve().parent.parent
    # from the revision before the change: the watch sees it however late it connects
    since = cluster.status(0)["revision"]
    watcher = subprocess.Popen([*command, "watch", "cm", "--since", str(since), "--timeout", "8"], env=env,
                               cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        created = subprocess.run([*command, "apply", "-f", "-"], env=env, cwd=root, text=True,
                                 input="kind: ConfigMap\nmetadata: {name: watched}\ndata: {}\n",
                                 capture_output=True, timeout=60)
        assert created.returncode == 0, created.stderr
        out, err = watcher.communicate(timeout=30)
    finally:
        watcher.kill()
    assert "ADDED" in out and "configmap/watched" in out, (out, err)


def test_label_annotate_taint_patch_and_api_resources(cluster: MasterCluster) -> None:
    """kubectl habits: each against real masters, with kubectl's words and refusals."""
    configmap = "kind: ConfigMap\nmetadata: {name: habits}\ndata: {a: '1'}\n"
    made = berth(cluster, "create", "-f", "-", stdin=configmap)
    assert made.returncode == 0, made.stderr
    assert berth(cluster, "label", "cm", "habits", "tier=front", "team=a").stdout.strip() == \
        "configmap/habits labeled"
    refused = berth(cluster, "label", "configmap/habits", "tier=back")
    assert refused.returncode == 1 and "--overwrite is false" in refused.stderr
    assert berth(cluster, "label", "cm", "habits", "tier=back", "team-", "--overwrite").returncode == 0
    annotated = berth(cluster, "annotate", "cm", "habits", "owner=olga")
    assert annotated.stdout.strip() == "configmap/habits annotated"
    got = json.loads(berth(cluster, "get", "cm", "habits", "-o", "json").stdout)
    assert got["metadata"]["labels"] == {"tier": "back"} and got["metadata"]["annotations"]["owner"] == "olga"
    shown = berth(cluster, "get", "cm", "habits", "--show-labels").stdout.splitlines()
    assert shown[0].split()[-1] == "LABELS" and shown[1].split()[-1] == "tier=back"

    merged = berth(cluster, "patch", "cm", "habits", "-p", '{"data": {"b": "2"}}')
    assert merged.stdout.strip() == "configmap/habits patched", merged.stderr
    ops = '[{"op": "test", "path": "/data/a", "value": "1"}, {"op": "remove", "path": "/data/a"}]'
    assert berth(cluster, "patch", "cm", "habits", "--type", "json", "-p", ops).returncode == 0
    assert json.loads(berth(cluster, "get", "cm", "habits", "-o", "json").stdout)["data"] == {"b": "2"}
    failed = berth(cluster, "patch", "cm", "habits", "--type", "json", "-p", ops)  # /data/a is gone now
    assert failed.returncode == 1 and "body[0]" in failed.stderr

    node = {"kind": "Node", "metadata": {"name": "tainted"}, "spec": {"address": "10.250.0.77"}}
    assert cluster.session().post(cluster.url(0, "/api/v1/nodes"), json=node, timeout=10).status_code == 201
    tainted = berth(cluster, "taint", "node", "tainted", "gpu=yes:NoSchedule", "maint:NoExecute")
    assert tainted.stdout.strip() == "node/tainted tainted", tainted.stderr
    clash = berth(cluster, "taint", "node", "tainted", "gpu=no:NoSchedule")
    assert clash.returncode == 1 and "--overwrite is false" in clash.stderr
    untainted = berth(cluster, "taint", "node", "tainted", "maint:NoExecute-")
    assert untainted.stdout.strip() == "node/tainted untainted"
    taints = json.loads(berth(cluster, "get", "node", "tainted", "-o", "json").stdout)["spec"]["taints"]
    assert taints == [{"key": "gpu", "value": "yes", "effect": "NoSchedule"}]
    assert berth(cluster, "taint", "node", "tainted", "gpu=yes:Sometimes").returncode == 2  # not an effect

    resources = berth(cluster, "api-resources").stdout.splitlines()
    assert resources[0].split() == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    assert ["pods", "po", "berth/v1", "true", "Pod"] in [line.split() for line in resources]
    for path in ("/api/v1/namespaces/default/configmaps/habits", "/api/v1/nodes/tainted"):
        cluster.session().delete(cluster.url(0, path), timeout=10)


def test_wait_and_explain(cluster: MasterCluster) -> None:
    add_node(cluster, "waited", cpu=1000, memory=1 << 30)
    met = berth(cluster, "wait", "--for=condition=Ready", "node/waited", "--timeout=20s")
    assert met.returncode == 0 and met.stdout.strip() == "node/waited condition met", met.stderr
    late = berth(cluster, "wait", "--for=condition=Ready=False", "node/waited", "--timeout=1s")
    assert late.returncode == 1 and "timed out waiting for the condition on nodes/waited" in late.stderr
    cluster.session().delete(cluster.url(0, "/api/v1/nodes/waited"), timeout=10)
    gone = berth(cluster, "wait", "--for=delete", "node/waited", "--timeout=20s")
    assert gone.returncode == 0 and gone.stdout.strip() == "node/waited deleted", gone.stderr
    assert berth(cluster, "wait", "--for=ready", "node/waited").returncode == 2

    pod_page = berth(cluster, "explain", "pod").stdout
    assert pod_page.startswith("KIND:     Pod\nVERSION:  berth/v1\n")
    assert "spec\t<PodSpec> -required-" in pod_page
    containers = berth(cluster, "explain", "pod.spec.containers").stdout
    assert "FIELD:    containers <[]Container>" in containers and "image\t<string> -required-" in containers
    missing = berth(cluster, "explain", "pod.spec.nope")
    assert missing.returncode == 1 and 'field "nope" does not exist in Pod.spec' in missing.stderr


def test_dry_run_client_and_server_keep_nothing(cluster: MasterCluster) -> None:
    admin = cluster.session()

    def exists(path: str) -> bool:
        return admin.get(cluster.url(0, path + "?consistent=1"), timeout=10).status_code == 200

    revision = cluster.status(0)["revision"]
    made = berth(cluster, "run", "dr", "--image", "localhost/busybox:lab", "--dry-run=client", "-o", "yaml",
                 "--", "sleep", "1")
    manifest = yaml.safe_load(made.stdout)
    assert manifest["kind"] == "Pod" and manifest["spec"]["containers"][0]["command"] == ["sleep", "1"]
    server = berth(cluster, "run", "dr", "--image", "localhost/busybox:lab", "--dry-run=server")
    assert server.stdout.strip() == "pod/dr created (server dry run)", server.stderr
    refused = berth(cluster, "run", "dr", "--image", "-bad", "--dry-run=server")  # the server checks it all
    assert refused.returncode == 1 and "image" in refused.stderr
    configmap = "kind: ConfigMap\nmetadata: {name: dry}\ndata: {a: '1'}\n"
    for command in ("apply", "create"):
        for mode, suffix in (("client", "(dry run)"), ("server", "(server dry run)")):
            answer = berth(cluster, command, "-f", "-", "--dry-run=" + mode, stdin=configmap)
            assert answer.stdout.strip() == f"configmap/dry created {suffix}", (command, mode, answer.stderr)
    assert not exists("/api/v1/namespaces/default/pods/dr")
    assert not exists("/api/v1/namespaces/default/configmaps/dry")
    assert cluster.status(0)["revision"] == revision  # nothing reached the store
    assert berth(cluster, "create", "-f", "-", stdin=configmap).returncode == 0
    again = berth(cluster, "apply", "-f", "-", "--dry-run=server", stdin=configmap)
    assert again.stdout.strip() == "configmap/dry configured (server dry run)"  # remembered apply added
    kept = berth(cluster, "delete", "cm", "dry", "--dry-run=server")
    assert kept.stdout.strip() == 'configmap "dry" deleted (server dry run)', kept.stderr
    assert exists("/api/v1/namespaces/default/configmaps/dry")
    assert berth(cluster, "delete", "cm", "dry").returncode == 0


def test_get_with_jsonpath_custom_columns_sorting_and_field_selector(cluster: MasterCluster) -> None:
    admin = cluster.session()
    pods = "/api/v1/namespaces/default/pods"
    for name, node in (("fs-b", "h1"), ("fs-a", "h2")):
        pod = {"kind": "Pod", "metadata": {"name": name, "labels": {"suite": "fs"}},
               "spec": {"nodeName": node, "containers": [{"name": "c", "image": "localhost/busybox:lab"}]}}
        assert admin.post(cluster.url(0, pods), json=pod, timeout=10).status_code == 201
    names = berth(cluster, "get", "po", "-l", "suite=fs", "--sort-by", ".metadata.name",
                  "-o", "jsonpath={.items[*].metadata.name}")
    assert names.stdout == "fs-a fs-b\n", names.stderr
    table = berth(cluster, "get", "po", "-l", "suite=fs", "--sort-by", "{.spec.nodeName}",
                  "-o", "custom-columns=NAME:.metadata.name,NODE:.spec.nodeName").stdout.splitlines()
    assert [line.split() for line in table] == [["NAME", "NODE"], ["fs-b", "h1"], ["fs-a", "h2"]]
    on_h2 = berth(cluster, "get", "po", "--field-selector", "spec.nodeName=h2", "-o", "name")
    assert on_h2.stdout.strip() == "pod/fs-a", on_h2.stderr
    assert berth(cluster, "get", "po", "-o", "xml").returncode == 2
    for name in ("fs-a", "fs-b"):
        admin.delete(cluster.url(0, f"{pods}/{name}?gracePeriodSeconds=0"), timeout=10)


def test_get_watch_prints_a_row_for_each_change(cluster: MasterCluster) -> None:
    admin = cluster.session()
    configmaps = "/api/v1/namespaces/default/configmaps"
    body = {"kind": "ConfigMap", "metadata": {"name": "rows"}, "data": {"a": "1"}}
    assert admin.post(cluster.url(0, configmaps), json=body, timeout=10).status_code == 201
    env = cli_env(cluster)
    watcher = subprocess.Popen([sys.executable, "-m", "berth.cli.main", "get", "cm", "rows", "-w",
                                "--request-timeout", "8"], stdout=subprocess.PIPE, text=True, env=env,
                               cwd=Path(__file__).resolve().parent.parent)
    try:
        assert watcher.stdout is not None
        header, row = watcher.stdout.readline().split(), watcher.stdout.readline().split()
        assert header[0] == "NAME" and row[0] == "rows"  # the list first
        patched = admin.patch(cluster.url(0, f"{configmaps}/rows"), json={"data": {"b": "2"}},
                              headers={"Content-Type": "application/merge-patch+json"}, timeout=10)
        assert patched.status_code == 200
        changed = watcher.stdout.readline().split()
        assert changed[:2] == ["rows", "2"], changed  # a row, with the new count of keys
        assert watcher.wait(timeout=20) == 0  # --request-timeout ends the watch
    finally:
        watcher.kill()
        admin.delete(cluster.url(0, f"{configmaps}/rows"), timeout=10)


def test_edit_saves_what_the_editor_wrote_and_refuses_a_stale_copy(cluster: MasterCluster,
                                                                   tmp_path: Path) -> None:
    admin = cluster.session()
    configmaps = "/api/v1/namespaces/default/configmaps"
    body = {"kind": "ConfigMap", "metadata": {"name": "edited"}, "data": {"a": "1"}}
    assert admin.post(cluster.url(0, configmaps), json=body, timeout=10).status_code == 201

    def edit(editor: str) -> subprocess.CompletedProcess:
        env = {**cli_env(cluster), "EDITOR": editor}
        return subprocess.run([sys.executable, "-m", "berth.cli.main", "edit", "cm", "edited"], env=env,
                              capture_output=True, text=True, timeout=60,
                              cwd=Path(__file__).resolve().parent.parent)

    def stored() -> dict:
        return admin.get(cluster.url(0, f"{configmaps}/edited?consistent=1"), timeout=10).json()["data"]

    changed = edit("sed -i \"s/a: '1'/a: '9'/\"")
    assert changed.stdout.strip() == "configmap/edited edited", changed.stderr
    assert stored() == {"a": "9"}
    assert edit("true").stdout.strip() == "Edit cancelled, no changes made."
    # someone changes it while the editor is open: saving the stale copy is a conflict, not a loss
    script = tmp_path / "slow-editor"
    script.write_text(f"#!{sys.executable}\nimport ssl, sys, urllib.request\n"
                      f"request = urllib.request.Request({cluster.url(0, configmaps + '/edited')!r}, "
                      "method='PATCH', data=b'{\"data\": {\"b\": \"2\"}}', headers={"
                      "'Content-Type': 'application/merge-patch+json', "
                      f"'Authorization': 'Bearer {TOKENS['admin'][1]}'}})\n"
                      f"urllib.request.urlopen(request, timeout=10, context=ssl.create_default_context("
                      f"cafile={str(cluster.ca_file)!r})).read()\n"
                      "path = sys.argv[1]\n"
                      "text = open(path).read().replace(\"a: '9'\", \"a: '7'\")\n"
                      "open(path, 'w').write(text)\n")
    script.chmod(0o755)
    stale = edit(str(script))
    assert stale.returncode == 1 and "Conflict" in stale.stderr, (stale.stdout, stale.stderr)
    assert stored() == {"a": "9", "b": "2"}
    admin.delete(cluster.url(0, f"{configmaps}/edited"), timeout=10)
