"""What TLS costs the API: the same server, HTTPS beside plain HTTP, in one run.

Two server processes run the master's own HTTP server (master/api/server.py: waitress, the door,
and for one of them the TLS channel of master/api/tls.py) in front of a small WSGI app that answers
a fixed JSON body, so the figures are the transport's alone, neither Raft's nor the app's. The
plain server exists only here, as the reference: no master setting serves plain HTTP. Each server
is asked the same, in turn:

- keep-alive: each client one connection, requests back to back (a watch, an agent, a UI);
- a connection each: a new connection (and TLS handshake) per request, as each `berth` command does;

each with a small answer (one object, ~0.5 KB) and a large one (a list, ~200 KB), by 1 and 8 clients.

    python -m bench.tls [--seconds 5] [--clients 1,8]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench._common import Http, interrupt_on_sigterm, machine_header, percentile
from berth import certs
from berth.lab.masters import PROJECT, free_ports

SIZES = {"small": 500, "large": 200_000}  # bytes of JSON answered


def _body(size: int) -> bytes:
    item = {"metadata": {"name": "p", "namespace": "bench"}, "spec": {"nodeName": "h1"}, "pad": ""}
    one = len(json.dumps(item))
    items = [item] * max(1, size // one)
    return json.dumps({"items": items}).encode()


BODIES = {name: _body(size) for name, size in SIZES.items()}


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = BODIES.get(environ.get("PATH_INFO", "").strip("/"), b"{}")
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def serve(port: int, cert_dir: Path | None) -> None:
    """The server process: the master's server, with TLS when `cert_dir` holds its certificate."""
    from master.api.server import make_server
    from master.api.tls import server_context

    tls = None if cert_dir is None else server_context(str(cert_dir / "bench.crt"),
                                                       str(cert_dir / "bench.key"))
    server = make_server(app, host="127.0.0.1", port=port, threads=16, connection_limit=1000,
                         per_address=1000, max_body_bytes=1 << 20, admit=lambda *_: None, tls=tls)
    server.run()


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0


def _load(url: str, path: str, clients: int, seconds: float, reconnect: bool, ca: Path) -> Result:
    result, lock, stop = Result(), threading.Lock(), threading.Event()

    def client() -> None:
        http = Http(url, token=None, timeout=10, ca_file=ca)
        mine: list[float] = []
        errors = 0
        while not stop.is_set():
            began = time.perf_counter()
            try:
                status, _ = http.request("GET", path)
                if status != 200:
                    errors += 1
            except OSError:
                errors += 1
            mine.append(time.perf_counter() - began)
            if reconnect:
                http.close()
        http.close()
        with lock:
            result.latencies += mine
            result.errors += errors

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    result.seconds = time.perf_counter() - began
    return result


def _wait_listening(url: str, ca: Path, deadline: float) -> None:
    while True:
        try:
            Http(url, token=None, timeout=1, ca_file=ca).request("GET", "/small")
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds a measurement (default 5)")
    parser.add_argument("--clients", default="1,8", help="client counts, comma-separated (default 1,8)")
    parser.add_argument("--serve", choices=["plain", "tls"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cert-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.port, args.cert_dir if args.serve == "tls" else None)
        return 0
    interrupt_on_sigterm()
    print(machine_header())
    work = Path(tempfile.mkdtemp(prefix="berth-bench-tls-"))
    certs.make_ca(work)
    certs.issue(work, "bench", ["127.0.0.1"], work)
    ca = work / certs.CA_CERT
    plain_port, tls_port = free_ports(2)
    urls = {"HTTP": f"http://127.0.0.1:{plain_port}", "HTTPS": f"https://127.0.0.1:{tls_port}"}
    servers = [subprocess.Popen([sys.executable, "-m", "bench.tls", "--serve", mode, "--port", str(port),
                                 "--cert-dir", str(work)], cwd=PROJECT, stdin=subprocess.DEVNULL)
               for mode, port in (("plain", plain_port), ("tls", tls_port))]
    try:
        for url in urls.values():
            _wait_listening(url, ca, time.monotonic() + 30)
        print(f"bench/tls.py: master/api/server.py serving fixed JSON on loopback, {args.seconds:g} s a "
              "measurement; client: http.client, one connection per client thread\n")
        print("| connections | answer | clients | HTTP req/s | HTTPS req/s | HTTP p50 / p99 ms "
              "| HTTPS p50 / p99 ms | HTTPS cost p50 |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for reconnect in (False, True):
            for name in SIZES:
                for clients in (int(c) for c in args.clients.split(",")):
                    results = {scheme: _load(url, f"/{name}", clients, args.seconds, reconnect, ca)
                               for scheme, url in urls.items()}
                    cells = []
                    for scheme in urls:
                        r = results[scheme]
                        lat = sorted(r.latencies)
                        cells.append((len(lat) / r.seconds, percentile(lat, 50) * 1e3,
                                      percentile(lat, 99) * 1e3, r.errors))
                    (h_rate, h50, h99, h_err), (s_rate, s50, s99, s_err) = cells
                    errors = f" ({h_err + s_err} errors)" if h_err + s_err else ""
                    print(f"| {'a new one each' if reconnect else 'keep-alive'} | {name} "
                          f"({len(BODIES[name]):,} B) | {clients} | {h_rate:,.0f} | {s_rate:,.0f} "
                          f"| {h50:.2f} / {h99:.2f} | {s50:.2f} / {s99:.2f} | +{s50 - h50:.2f} ms{errors} |",
                          flush=True)
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)  # the CA's key and the server's
    return 0


if __name__ == "__main__":
    sys.exit(main())
