"""Where the client finds its servers, token, namespace and CA: flag > environment > file.

Resolution is a pure function of (flags, environment, file) so it can be tested
without touching the real home directory.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from berth.client import DEFAULT_NAMESPACE, split_servers
from berth.errors import BerthError

DEFAULT_SERVER = "https://127.0.0.1:7101"


class ConfigError(BerthError):
    """The config file exists but cannot be used; reported without a traceback."""


@dataclass(frozen=True)
class Config:
    servers: tuple[str, ...]
    token: str | None = None
    namespace: str = DEFAULT_NAMESPACE
    path: Path | None = None
    # the CA the masters' certificates are verified with (kubeconfig's `certificate-authority`); None:
    # the system's CAs, which do not know a Berth cluster's own
    certificate_authority: str | None = None
    # Which layer each setting came from, so `berth` can explain surprising choices.
    sources: Mapping[str, str] = field(default_factory=dict)


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    """The XDG location, so the file sits with the user's other tool configs."""
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "berth" / "config.yaml"


def unreachable_memory_path(env: Mapping[str, str] | None = None) -> Path:
    """Where the CLI remembers masters it could not reach lately (berth.client.UnreachableMemory)."""
    env = os.environ if env is None else env
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return Path(base) / "berth" / "unreachable.json"


def config_path(explicit: str | None, env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if explicit:
        return Path(explicit).expanduser()
    if env.get("BERTH_CONFIG"):
        return Path(env["BERTH_CONFIG"]).expanduser()
    return default_config_path(env)


def read_file(path: Path) -> dict[str, Any]:
    """A missing file is an empty config: flags or env may supply everything."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as err:
        raise ConfigError(f"cannot read config file {path}: {err.strerror or err}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping")
    return data


def resolve(
    *,
    servers: Iterable[str] | None = None,
    token: str | None = None,
    namespace: str | None = None,
    config_file: str | None = None,
    env: Mapping[str, str] | None = None,
    certificate_authority: str | None = None,
) -> Config:
    """Merge the three layers; each setting independently takes the highest one present."""
    env = os.environ if env is None else env
    path = config_path(config_file, env)
    named = config_file or env.get("BERTH_CONFIG")
    if named and not path.exists():  # only the default location may be absent
        raise ConfigError(f"config file {path} does not exist")
    data = read_file(path)
    sources: dict[str, str] = {}

    flag_servers = split_servers(list(servers or []))
    env_servers = split_servers(env.get("BERTH_SERVER"))
    file_servers_raw = data.get("servers", data.get("server"))
    if file_servers_raw is not None and not isinstance(file_servers_raw, str | list):
        raise ConfigError(f"config file {path}: servers must be a list of URLs")
    file_servers = split_servers(file_servers_raw)
    chosen: list[str]
    for name, candidate in (("flag", flag_servers), ("env", env_servers), ("file", file_servers)):
        if candidate:
            chosen, sources["servers"] = candidate, name
            break
    else:
        chosen, sources["servers"] = [DEFAULT_SERVER], "default"

    chosen_token: str | None = None
    file_token = data.get("token")
    for name, value in (("flag", token), ("env", env.get("BERTH_TOKEN")), ("file", file_token)):
        if value:
            chosen_token, sources["token"] = str(value), name
            break

    chosen_ns = DEFAULT_NAMESPACE
    sources["namespace"] = "default"
    file_ns = data.get("namespace")
    for name, value in (("flag", namespace), ("env", env.get("BERTH_NAMESPACE")), ("file", file_ns)):
        if value:
            chosen_ns, sources["namespace"] = str(value), name
            break

    chosen_ca: str | None = None
    file_ca = data.get("certificate-authority")
    if file_ca is not None and not isinstance(file_ca, str):
        raise ConfigError(f"config file {path}: certificate-authority must be a file's path")
    if file_ca:  # relative to the config file, as kubeconfig reads it
        file_ca = str(path.parent / Path(file_ca).expanduser())
    for name, value in (("flag", certificate_authority), ("env", env.get("BERTH_CERTIFICATE_AUTHORITY")),
                        ("file", file_ca)):
        if value:
            chosen_ca, sources["certificate-authority"] = str(value), name
            break

    return Config(tuple(chosen), chosen_token, chosen_ns, path, chosen_ca, sources)
