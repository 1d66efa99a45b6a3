"""Exec and port-forward through a master, side by side with the direct path over SSH.

    python -m bench.sessions                 # 30 execs each way, 3 downloads of 16 MiB each way
    python -m bench.sessions --execs 10 --mib 4 --downloads 2

A lab of one host (`bs`, removed afterwards), 3 masters on loopback driving it, one pod
running busybox httpd on the pod's 127.0.0.1:8080 with a file of --mib MiB.
Part 1, `exec POD -- true`, alternating one by one: through a session (POST, framed output
stream: what `berth exec` does), through the one-request JSON exec, and the direct path (the
same `podman exec` over a kept SSH connection from this process, as the master runs it).
Part 2, downloading the file, alternating: through `berth port-forward` (the CLI process, the
master, SSH, nsenter and the relay) and the direct path (the same relay command over SSH from
this process, no master, no HTTP). Printed: medians and ratios to the direct path.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._common import (
    ADMIN_TOKEN,
    Http,
    add_lab_option,
    interrupt_on_sigterm,
    machine_header,
    percentile,
    running_masters,
)
from bench.pods import register_nodes
from berth.client import Client
from berth.containers import container_name
from berth.lab import hosts as lab_hosts
from berth.lab.hosts import IMAGE, Lab
from master.runtime.driver import DRIVERS
from master.runtime.port_forward import relay_argv
from master.runtime.ssh import Host, SshPool

PODMAN = DRIVERS["podman"]
PROJECT = Path(__file__).resolve().parent.parent


def web_pod(mib: int) -> dict:
    script = (f"dd if=/dev/zero of=/tmp/big bs=1048576 count={mib} 2>/dev/null && "
              "exec httpd -f -p 127.0.0.1:8080 -h /tmp")
    return {"apiVersion": "berth/v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "bench"},
            "spec": {"containers": [{"name": "main", "image": IMAGE, "command": ["sh", "-c", script],
                                     "resources": {"requests": {"cpu": "50m", "memory": "16Mi"}}}]}}


def wait_running(admin: Http, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code, obj = admin.json("GET", "/api/v1/namespaces/bench/pods/web")
        if code == 200 and (obj.get("status") or {}).get("phase") == "Running":
            return obj
        time.sleep(0.3)
    raise SystemExit("the pod did not run in time")


def http_get(sock: socket.socket, path: str) -> int:
    """Bytes of the answer's body, read to the end."""
    sock.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
    answer = b""
    while chunk := sock.recv(1 << 20):
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    if b" 200 " not in head.split(b"\r\n")[0]:
        raise SystemExit(f"the download failed: {head[:200]!r}")
    return len(body)


def direct_download(pool: SshPool, host: Host, pid: int) -> int:
    opened = pool.open(host, relay_argv(pid, 8080))
    try:
        channel = opened.channel
        channel.sendall(b"GET /big HTTP/1.0\r\n\r\n")
        answer = b""
        while chunk := channel.recv(1 << 20):
            answer += chunk
        return len(answer.partition(b"\r\n\r\n")[2])
    finally:
        opened.close()


def forward_port(process: subprocess.Popen) -> int:
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("Forwarding from 127.0.0.1:"):
        raise SystemExit(f"port-forward did not start: {line!r}")
    return int(line.split(":")[1].split()[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--execs", type=int, default=30)
    parser.add_argument("--mib", type=int, default=16)
    parser.add_argument("--downloads", type=int, default=3)
    add_lab_option(parser, "bs")
    args = parser.parse_args()
    if not 2 <= args.execs <= 500 or not 1 <= args.mib <= 256 or not 1 <= args.downloads <= 20:
        parser.error("need 2 <= --execs <= 500, 1 <= --mib <= 256, 1 <= --downloads <= 20")
    interrupt_on_sigterm()
    print(f"berth bench/sessions.py: {args.execs} execs each way; {args.downloads} downloads of "
          f"{args.mib} MiB each way")
    print(f"  {machine_header()}")
    lab = Lab(name=args.lab, hosts=1)
    root = Path(tempfile.mkdtemp(prefix="berth-bench-sessions-"))
    lab_hosts.down(lab)
    timings: dict[str, list[float]] = {"session": [], "json": [], "direct": []}
    rates: dict[str, list[float]] = {"forward": [], "direct": []}
    try:
        lab_hosts.up(lab)
        settings = {"controllers": ["node-lifecycle", "scheduler", "runtime"], "node_grace_seconds": 3600,
                    "ssh_key_file": str(lab.ssh_key), "ssh_known_hosts_file": str(lab.known_hosts)}
        with running_masters(root / "masters", 3, settings) as masters:
            leader = masters.url(masters.leader_index())
            admin = Http(leader, timeout=30)
            register_nodes(admin, lab)
            code, body = admin.json("POST", "/api/v1/namespaces/bench/pods", web_pod(args.mib))
            assert code == 201, body
            obj = wait_running(admin)
            host_name = obj["spec"]["nodeName"]
            host = Host(host_name, lab.address(host_name))
            target = container_name(obj, "main")
            pool = SshPool(str(lab.ssh_key), str(lab.known_hosts))
            client = Client([leader], ADMIN_TOKEN, namespace="bench", ca_file=str(masters.ca_file))
            for _ in range(args.execs):
                began = time.perf_counter()
                session = client.exec_session("web", ["true"])
                for _chunk in session.output():
                    pass
                assert session.exit_code == 0
                timings["session"].append(time.perf_counter() - began)
                began = time.perf_counter()
                assert client.pod_exec("web", ["true"])["exitCode"] == 0
                timings["json"].append(time.perf_counter() - began)
                began = time.perf_counter()
                assert pool.run(host, PODMAN.exec(target, ["true"])).ok
                timings["direct"].append(time.perf_counter() - began)
            pid = int(pool.run(host, PODMAN.pid(target)).text().strip())
            env = {"PATH": "/usr/bin:/bin", "HOME": str(root), "BERTH_SERVER": leader,
                   "BERTH_TOKEN": ADMIN_TOKEN, "BERTH_CERTIFICATE_AUTHORITY": str(masters.ca_file)}
            forward = subprocess.Popen([sys.executable, "-m", "berth.cli.main", "-n", "bench", "port-forward",
                                        "pod/web", ":8080"], env=env, cwd=PROJECT, text=True,
                                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            try:
                port = forward_port(forward)
                size = args.mib << 20
                for _ in range(args.downloads):
                    began = time.perf_counter()
                    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
                        assert http_get(sock, "/big") == size
                    rates["forward"].append(size / (time.perf_counter() - began))
                    began = time.perf_counter()
                    assert direct_download(pool, host, pid) == size
                    rates["direct"].append(size / (time.perf_counter() - began))
            finally:
                forward.terminate()
                forward.wait(timeout=15)
                pool.close()
                client.close()
    except KeyboardInterrupt:
        print("\ninterrupted; stopping everything this run started", file=sys.stderr)
        return 130
    finally:
        lab_hosts.down(lab)
        shutil.rmtree(root, ignore_errors=True)

    def ms(values: list[float]) -> str:
        ordered = sorted(values)
        return f"{statistics.median(ordered) * 1000:8.1f} {percentile(ordered, 90) * 1000:8.1f}"

    direct = statistics.median(timings["direct"])
    print(f"\n  exec POD -- true ({args.execs} each, alternating)   median ms   p90 ms   ratio")
    for key, label in (("session", "session (berth exec)"), ("json", "one-request JSON exec"),
                       ("direct", "direct: podman exec over SSH")):
        print(f"  {label:<44}{ms(timings[key])}   {statistics.median(timings[key]) / direct:5.2f}")
    direct_rate = statistics.median(rates["direct"])
    print(f"\n  download {args.mib} MiB from the pod ({args.downloads} each)        median MB/s   ratio")
    for key, label in (("forward", "berth port-forward (CLI, master, SSH)"),
                       ("direct", "direct: the relay over SSH")):
        rate = statistics.median(rates[key])
        print(f"  {label:<48}{rate / 1e6:10.1f}   {rate / direct_rate:5.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
