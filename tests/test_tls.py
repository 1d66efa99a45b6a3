"""TLS (issue 17, item 1): masters serve HTTPS only, every client verifies them with the cluster's CA,
and the CA and certificates are made once (berth/certs.py) and reused."""

from __future__ import annotations

import os
import socket
import ssl
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from cryptography import x509

from berth import certs
from berth.cli.config import ConfigError, resolve
from berth.client import Client, Unreachable
from master.config import MasterConfig
from tests.harness import TOKENS, MasterCluster, berth, wait_until

SECRETS = "/api/v1/namespaces/default/secrets"


# --- the certificates -----------------------------------------------------------------------------

def test_the_ca_is_made_once_and_a_certificate_kept_while_it_is_current(tmp_path: Path) -> None:
    assert certs.make_ca(tmp_path / "ca") is True
    first = (tmp_path / "ca" / certs.CA_CERT).read_bytes()
    assert certs.make_ca(tmp_path / "ca") is False  # a second run: the same CA, not a new one
    assert (tmp_path / "ca" / certs.CA_CERT).read_bytes() == first
    assert stat.S_IMODE((tmp_path / "ca" / certs.CA_KEY).stat().st_mode) == 0o600

    sans = ["10.250.0.11", "h1", "h1.example"]
    assert certs.issue(tmp_path / "ca", "h1", sans, tmp_path / "out") is True
    issued = (tmp_path / "out" / "h1.crt").read_bytes()
    assert certs.issue(tmp_path / "ca", "h1", list(reversed(sans)), tmp_path / "out") is False
    assert (tmp_path / "out" / "h1.crt").read_bytes() == issued
    assert stat.S_IMODE((tmp_path / "out" / "h1.key").stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(issued)
    assert certs.sans_of(cert) == set(sans)
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(first))
    # a new address is a new certificate; so is another CA's
    assert certs.issue(tmp_path / "ca", "h1", [*sans, "10.250.0.99"], tmp_path / "out") is True
    certs.make_ca(tmp_path / "other")
    assert certs.issue(tmp_path / "other", "h1", sans, tmp_path / "out") is True


def test_the_command_says_changed_once_as_ansible_reads_it(tmp_path: Path) -> None:
    """Run as a plain file, as the playbook runs it: no Berth import needed."""
    script = Path(certs.__file__)

    def run(*args: str) -> str:
        done = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                              timeout=60, cwd="/", env={"PATH": os.environ.get("PATH", "")})
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    issue = ["issue", "--ca-dir", str(tmp_path), "--name", "m1", "--san", "127.0.0.1", "--out-dir",
             str(tmp_path / "m")]
    assert [run("ca", str(tmp_path)), run("ca", str(tmp_path))] == ["changed", "unchanged"]
    assert [run(*issue), run(*issue)] == ["changed", "unchanged"]


def test_a_master_without_its_certificate_does_not_start(tmp_path: Path) -> None:
    base = {"name": "m1", "raft_address": "127.0.0.1:7201", "api_address": "127.0.0.1:7101",
            "data_dir": str(tmp_path), "tokens_file": "t", "insecure_raft_without_password": True,
            "controllers": ["node-lifecycle"]}
    with pytest.raises(ValueError, match="tls_cert_file, tls_private_key_file, tls_ca_file: required"):
        MasterConfig.build(base, {}).tls_context()
    certs.make_ca(tmp_path)
    certs.issue(tmp_path, "m1", ["127.0.0.1"], tmp_path)
    files = {"tls_cert_file": str(tmp_path / "m1.crt"), "tls_private_key_file": str(tmp_path / "m1.key"),
             "tls_ca_file": str(tmp_path / certs.CA_CERT)}
    assert MasterConfig.build({**base, **files}, {}).tls_context()
    (tmp_path / "m1.key").chmod(0o644)
    with pytest.raises(ValueError, match="must be 0600"):
        MasterConfig.build({**base, **files}, {}).tls_context()


# --- the masters ----------------------------------------------------------------------------------

def _host_port(cluster: MasterCluster, index: int = 0) -> tuple[str, int]:
    parts = urlsplit(cluster.url(index))
    return parts.hostname or "", parts.port or 0


def test_a_client_with_a_wrong_ca_is_refused(cluster: MasterCluster, tmp_path: Path) -> None:
    certs.make_ca(tmp_path / "wrong", "not-the-cluster-ca")
    wrong = str(tmp_path / "wrong" / certs.CA_CERT)
    urls = [m.api_url for m in cluster.masters]
    with pytest.raises(Unreachable, match="certificate verify failed"):
        Client(urls, TOKENS["admin"][1], ca_file=wrong).list("pods")
    with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        requests.get(cluster.url(0, "/healthz"), verify=wrong, timeout=10)
    # the right one is served
    assert Client(urls, TOKENS["admin"][1], ca_file=str(cluster.ca_file)).list("pods")["items"] == []
    # the CLI: flag, then environment
    refused = berth(cluster, "--certificate-authority", wrong, "get", "pods")
    assert refused.returncode != 0 and "certificate verify failed" in refused.stderr
    assert berth(cluster, "get", "pods").returncode == 0


def test_a_client_without_the_ca_is_refused(cluster: MasterCluster) -> None:
    """The system's CAs (or REQUESTS_CA_BUNDLE's) do not know the cluster's own."""
    with pytest.raises(Unreachable, match=r"certificate verify failed.*give the cluster's CA"):
        Client([m.api_url for m in cluster.masters], TOKENS["admin"][1]).list("pods")
    with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        requests.get(cluster.url(0, "/healthz"), timeout=10)


def test_the_cli_reads_the_ca_from_its_config_file(cluster: MasterCluster, tmp_path: Path) -> None:
    """kubeconfig's `certificate-authority`, relative to the config file."""
    home = tmp_path / "home"
    config = home / ".config" / "berth" / "config.yaml"
    config.parent.mkdir(parents=True)
    (config.parent / "ca.crt").write_bytes(cluster.ca_file.read_bytes())
    config.write_text(f"servers: [{cluster.masters[0].api_url}]\ntoken: {TOKENS['admin'][1]}\n"
                      "certificate-authority: ca.crt\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home)}
    done = subprocess.run([sys.executable, "-m", "berth.cli.main", "get", "pods"], env=env,
                          capture_output=True, text=True, timeout=60, cwd=Path(__file__).parent.parent)
    assert done.returncode == 0, done.stderr


def test_plain_http_gets_no_data(cluster: MasterCluster) -> None:
    """A plain request, with a good token, to a path that holds secrets: a fixed 400, then the close."""
    admin = cluster.session()
    secret = {"kind": "Secret", "metadata": {"name": "hidden"}, "stringData": {"password": "s3cr3t-value"}}
    assert admin.post(cluster.url(0, SECRETS), json=secret).status_code == 201
    head = (f"GET {SECRETS}/hidden HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKENS['admin'][1]}\r\n\r\n")
    with closing(socket.create_connection(_host_port(cluster), timeout=10)) as sock:
        sock.sendall(head.encode())
        answer = b""
        while chunk := sock.recv(65536):  # the master closes the connection
            answer += chunk
    status, _, rest = answer.partition(b"\r\n")
    assert status == b"HTTP/1.1 400 Bad Request"
    assert rest.partition(b"\r\n\r\n")[2] == b"Client sent an HTTP request to an HTTPS server.\n"
    assert b"hidden" not in answer and b"{" not in answer
    plain = requests.get(cluster.url(0, f"{SECRETS}/hidden").replace("https://", "http://"), timeout=10,
                         headers={"Authorization": f"Bearer {TOKENS['admin'][1]}"})
    assert (plain.status_code, plain.text) == (400, "Client sent an HTTP request to an HTTPS server.\n")
    # the master still serves TLS, to the same address
    assert admin.get(cluster.url(0, f"{SECRETS}/hidden")).status_code == 200


def test_the_certificate_names_the_masters_addresses(cluster: MasterCluster) -> None:
    context = ssl.create_default_context(cafile=cluster.ca_file)
    for index in range(len(cluster.masters)):
        host, port = _host_port(cluster, index)
        with closing(socket.create_connection((host, port), timeout=10)) as raw, \
                context.wrap_socket(raw, server_hostname=host) as sock:
            der = sock.getpeercert(binary_form=True)
            assert sock.version() in ("TLSv1.3", "TLSv1.2")
        assert der is not None
        assert {host, "localhost"} <= certs.sans_of(x509.load_der_x509_certificate(der))
    # a name the certificate does not carry is refused, even with the right CA
    host, port = _host_port(cluster)
    with closing(socket.create_connection((host, port), timeout=10)) as raw, \
            pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        context.wrap_socket(raw, server_hostname="elsewhere.example")


def test_peers_verify_each_other_forward_and_relay(cluster: MasterCluster) -> None:
    """A follower forwards a read of the leader's memory to it over HTTPS (forward.py), and relays an
    agent's heartbeat the same way (relay.py)."""
    leader = cluster.leader_index()
    follower = (leader + 1) % 3
    admin, agent = cluster.session(), cluster.session("agent")
    node = {"kind": "Node", "metadata": {"name": "h1"}, "spec": {"address": "10.250.0.11"}}
    assert admin.post(cluster.url(follower, "/api/v1/nodes"), json=node).status_code in (201, 409)
    beat = wait_until(lambda: agent.post(cluster.url(follower, "/api/v1/nodes/h1/heartbeat"),
                                         json={"cpuPercent": 7, "memoryUsed": 1 << 20}).ok, 10,
                      what="the follower relays a heartbeat")
    assert beat
    forwarded = admin.get(cluster.url(follower, "/api/v1/metrics/nodes"), timeout=10)
    assert forwarded.status_code == 200, forwarded.text



def test_the_cli_ca_resolves_flag_over_env_over_file(tmp_path: Path) -> None:
    config = tmp_path / "berth" / "config.yaml"
    config.parent.mkdir()
    config.write_text("servers: [m1:7101]\ncertificate-authority: ca.crt\n")
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    from_file = resolve(env=env)
    assert from_file.certificate_authority == str(config.parent / "ca.crt")
    assert from_file.servers == ("https://m1:7101",)  # no scheme: HTTPS, the only one masters speak
    env["BERTH_CERTIFICATE_AUTHORITY"] = "/env/ca.crt"
    assert resolve(env=env).certificate_authority == "/env/ca.crt"
    chosen = resolve(env=env, certificate_authority="/flag/ca.crt")
    assert (chosen.certificate_authority, chosen.sources["certificate-authority"]) == ("/flag/ca.crt", "flag")
    config.write_text("certificate-authority: [not, a, path]\n")
    with pytest.raises(ConfigError, match="certificate-authority must be a file's path"):
        resolve(env={"XDG_CONFIG_HOME": str(tmp_path)})


def test_many_fresh_connections_each_get_their_answer(cluster: MasterCluster) -> None:
    """Every new connection (handshake, then a write straight away) is answered, to every master,
    from several threads at once: a CI run once saw one closed after its handshake, unanswered."""
    def one_client(worker: int) -> list[str]:
        failures = []
        for k in range(20):
            name = f"fresh-{worker}-{k}"
            body = {"apiVersion": "berth/v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {}}
            with cluster.session() as session:  # a new session: a new connection and handshake
                try:
                    created = session.post(cluster.url(k % 3, "/api/v1/namespaces/default/configmaps"),
                                           json=body, timeout=30)
                    if created.status_code != 201:
                        failures.append(f"{name}: {created.status_code} {created.text}")
                except requests.RequestException as err:
                    failures.append(f"{name}: {err}")
        return failures

    with ThreadPoolExecutor(8) as pool:
        failures = [f for found in pool.map(one_client, range(8)) for f in found]
    assert failures == []
