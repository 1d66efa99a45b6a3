"""Master processes on one machine: their settings, tokens and start.

Used by the tests and the benchmarks, so both run
masters exactly the same way.
"""

from __future__ import annotations

import hashlib
import secrets
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PROJECT = Path(__file__).resolve().parents[2]  # the checkout: berth/lab/ is two below it


@dataclass(frozen=True)
class MasterSpec:
    name: str
    raft_address: str
    api_url: str
    data_dir: Path
    config_file: Path
    log_file: Path


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    sockets, ports = [], []
    for _ in range(count):
        sock = socket.socket()
        sock.bind((host, 0))
        sockets.append(sock)
        ports.append(sock.getsockname()[1])
    for sock in sockets:
        sock.close()
    return ports


def write_tokens_file(path: Path, tokens: dict[str, tuple[str, str]]) -> None:
    """Only digests are written: the master never needs the clear token."""
    entries = [{"name": name, "role": role, "sha256": hashlib.sha256(token.encode()).hexdigest()}
               for role, (name, token) in tokens.items()]
    path.write_text(yaml.safe_dump({"tokens": entries}))
    path.chmod(0o600)


def write_cluster(root: Path, size: int, tokens: dict[str, tuple[str, str]],
                  extra_settings: dict[str, Any] | None = None, host: str = "127.0.0.1",
                  ports: list[int] | None = None) -> list[MasterSpec]:
    """Config files for `size` masters on `host`, with a tokens file and a Raft password."""
    root.mkdir(parents=True, exist_ok=True)
    tokens_file = root / "tokens.yaml"
    write_tokens_file(tokens_file, tokens)
    password_file = root / "raft-password"
    if not password_file.exists():
        password_file.write_text(secrets.token_urlsafe(24) + "\n")
        password_file.chmod(0o600)
    ports = ports or free_ports(2 * size, host)
    raft = [f"{host}:{p}" for p in ports[:size]]
    specs = []
    for i in range(size):
        name = f"m{i + 1}"
        spec = MasterSpec(name, raft[i], f"http://{host}:{ports[size + i]}", root / name,
                          root / f"{name}.yaml", root / f"{name}.log")
        spec.config_file.write_text(yaml.safe_dump({
            "name": name,
            "raft_address": raft[i],
            "peers": [a for a in raft if a != raft[i]],
            "api_address": f"{host}:{ports[size + i]}",
            "data_dir": str(spec.data_dir),
            "tokens_file": str(tokens_file),
            "raft_password_file": str(password_file),
            "peer_apis": {raft[j]: f"http://{host}:{ports[size + j]}" for j in range(size)},
            **(extra_settings or {}),
        }))
        specs.append(spec)
    return specs


def start_master(spec: MasterSpec, python: str = sys.executable) -> subprocess.Popen:
    """The master in its own session, so a test or demo can kill it without touching itself."""
    with open(spec.log_file, "ab") as log:
        proc = subprocess.Popen(
            [python, "-m", "master.main", "--config", str(spec.config_file)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=PROJECT, start_new_session=True,
        )
    return proc
