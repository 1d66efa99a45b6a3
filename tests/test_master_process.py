"""berth-master as a process: flags, SIGTERM, the Raft password, snapshots on disk."""

from __future__ import annotations

import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from berth.lab.masters import free_ports
from tests.conftest import STORE_ONLY, TEST_ROOT
from tests.harness import MasterCluster, pod, wait_until

PODS = "/api/v1/namespaces/default/pods"


def tls_flags(cluster: MasterCluster) -> list[str]:
    """The first master's certificate (for 127.0.0.1), as flags."""
    config = yaml.safe_load(cluster.masters[0].spec.config_file.read_text())
    return [arg for name in ("tls_cert_file", "tls_private_key_file", "tls_ca_file")
            for arg in ("--" + name.replace("_", "-"), config[name])]


def test_flags_alone_run_a_master_and_sigterm_stops_it_cleanly(tmp_path: Path) -> None:
    cluster = MasterCluster(TEST_ROOT / "flags", size=1)  # for its tokens and password files
    raft, api = free_ports(2)
    key = tmp_path / "ssh-key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    (tmp_path / "known_hosts").write_text("")
    (tmp_path / "data").mkdir(mode=0o755)  # as an earlier version left it
    (tmp_path / "data" / "raft.journal.old").write_text("")
    (tmp_path / "data" / "raft.journal.old").chmod(0o644)
    proc = subprocess.Popen([
        sys.executable, "-m", "master.main", "--name", "solo",
        "--raft-address", f"127.0.0.1:{raft}", "--api-address", f"127.0.0.1:{api}",
        "--data-dir", str(tmp_path / "data"), "--tokens-file", str(cluster.root / "tokens.yaml"),
        "--raft-password-file", str(cluster.root / "raft-password"),
        "--ssh-key-file", str(key), "--ssh-known-hosts-file", str(tmp_path / "known_hosts"),
        *tls_flags(cluster),
    ], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        session = cluster.session()  # its keep-alive connection stays open across the SIGTERM
        wait_until(lambda: session.get(f"https://127.0.0.1:{api}/readyz", timeout=1).ok, 30,
                   what="single master ready")
        response = session.post(f"https://127.0.0.1:{api}{PODS}", json=pod("solo"))
        assert response.status_code == 201
        # started by hand, it keeps its data to itself: the journal holds every secret
        assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
        assert stat.S_IMODE((tmp_path / "data" / "raft.journal").stat().st_mode) == 0o600
        assert stat.S_IMODE((tmp_path / "data" / "raft.journal.old").stat().st_mode) == 0o600
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert b"stopped" in proc.stdout.read()
    finally:
        proc.kill()
        proc.wait()


def test_bad_settings_are_refused_with_a_message(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "master.main", "--name", "x",
                             "--raft-address", "nowhere", "--api-address", "127.0.0.1:1",
                             "--data-dir", str(tmp_path), "--tokens-file", str(tmp_path / "t")],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "raft_address" in result.stderr or "tokens" in result.stderr


def master_without_password(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text("tokens: []\n")
    return subprocess.run([sys.executable, "-m", "master.main", "--name", "x", "--raft-address", extra[0],
                           "--api-address", "127.0.0.1:1", "--data-dir", str(tmp_path / "data"),
                           "--tokens-file", str(tokens), *extra[1:]],
                          capture_output=True, text=True, timeout=30)


def test_a_master_without_a_raft_password_refuses_to_start(tmp_path: Path) -> None:
    """PySyncObj unpickles what reaches its port: without a password, that is code execution."""
    plain = master_without_password(tmp_path, "127.0.0.1:1")
    assert plain.returncode != 0 and "raft_password_file: required" in plain.stderr
    assert not (tmp_path / "data").exists()  # refused before anything was made
    exposed = master_without_password(tmp_path, "10.250.0.11:7201", "--insecure-raft-without-password")
    assert exposed.returncode != 0 and "only for masters that all listen on loopback" in exposed.stderr
    peer = master_without_password(tmp_path, "127.0.0.1:1", "--insecure-raft-without-password",
                                   "--peer", "10.250.0.12:7201")
    assert peer.returncode != 0 and "loopback" in peer.stderr


def test_a_master_with_the_wrong_raft_password_cannot_join() -> None:
    cluster = MasterCluster(TEST_ROOT / "password", size=3, extra_settings=STORE_ONLY)
    wrong = cluster.root / "wrong-password"
    wrong.write_text("not-the-password\n")
    config = yaml.safe_load(cluster.masters[2].spec.config_file.read_text())
    cluster.masters[2].spec.config_file.write_text(yaml.safe_dump(
        {**config, "raft_password_file": str(wrong)}))
    cluster.start_all()
    try:
        cluster.wait_ready([0, 1])
        anyone = cluster.session(None)
        wait_until(lambda: anyone.get(cluster.url(2, "/healthz"), timeout=2).ok, 60,
                   what="the third master's API up")
        assert cluster.session().post(cluster.url(0, PODS), json=pod("secret-talk")).status_code == 201
        status = cluster.status(2)
        assert status["leader"] is None and not status["ready"]
        assert cluster.session().get(cluster.url(2, PODS)).json()["items"] == []
    finally:
        cluster.close()


@pytest.mark.parametrize("own_cluster", [{"timings": {"log_compaction_min_entries": 50}}],
                         indirect=True)
def test_snapshot_is_written_and_a_restart_loads_it(own_cluster: MasterCluster) -> None:
    session = own_cluster.session()
    for n in range(120):
        assert session.post(own_cluster.url(n % 3, PODS), json=pod(f"snap{n}")).status_code == 201
    for master in own_cluster.masters:
        wait_until(lambda m=master: (m.spec.data_dir / "raft.dump").exists(), 30,
                   what=f"{master.name} snapshot")
    for i in range(3):
        own_cluster.kill(i)
    own_cluster.start_all()
    own_cluster.wait_ready(timeout=60)
    for i in range(3):
        items = session.get(own_cluster.url(i, PODS)).json()["items"]
        assert len(items) == 120
    # the window starts at the snapshot: older revisions answer 410, newer ones stream
    assert session.get(own_cluster.url(0, "/api/v1/watch?kind=Pod&since=0")).status_code == 410


@pytest.mark.parametrize("own_cluster", [{"write_timeout": 2.0}], indirect=True)
def test_without_quorum_a_master_is_not_ready_and_writes_get_503(own_cluster: MasterCluster) -> None:
    leader = own_cluster.leader_index()
    survivor = (leader + 1) % 3
    own_cluster.kill(leader)
    own_cluster.kill(3 - leader - survivor)
    url = own_cluster.url(survivor, "/readyz")
    anyone = own_cluster.session(None)
    wait_until(lambda: anyone.get(url, timeout=2).status_code == 503, 30, what="not ready")
    response = own_cluster.session().post(own_cluster.url(survivor, PODS), json=pod("lonely"),
                                          timeout=10)
    assert response.status_code == 503
    assert response.json()["reason"] in ("Unavailable", "OutcomeUnknown")
    # reads still work locally, and say how far this master got
    assert own_cluster.session().get(own_cluster.url(survivor, PODS)).status_code == 200
