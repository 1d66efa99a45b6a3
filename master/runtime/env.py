"""A container's environment, resolved from its literal values and ConfigMap/Secret references.

Values from Secrets never travel on a command line (visible in `ps` on the host, and in
podman's record of how a container was made): they go to podman/docker as an env file on
the command's standard input (`--env-file=/dev/stdin`), so they touch neither the host's
process list nor its disk. An env file holds one `NAME=value` per line, so a secret value
with a line break cannot be passed this way (mount it as a file, once volumes exist).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass, field

from berth.objects import Obj

Lookup = Callable[[str, str, str], Obj | None]  # (kind, namespace, name) -> the stored object
MAX_ENV_LINE = 60_000  # podman and docker read env files with Go's bufio.Scanner: 64 KiB a line


class EnvError(ValueError):
    """A reference that cannot be resolved: the container cannot start (CreateContainerConfigError)."""


@dataclass(frozen=True)
class ContainerEnv:
    plain: dict[str, str] = field(default_factory=dict)  # on the command line: --env=NAME=value
    secret: dict[str, str] = field(default_factory=dict)  # in the env file on stdin

    def env_file(self) -> bytes | None:
        """What the run command reads on its standard input, if any secret is set."""
        if not self.secret:
            return None
        return "".join(f"{name}={value}\n" for name, value in self.secret.items()).encode()


def resolve_env(container: Obj, namespace: str, lookup: Lookup) -> ContainerEnv:
    """The container's variables, a later one of a name winning, as in Kubernetes."""
    env = ContainerEnv()
    for var in container.get("env") or []:
        name = var["name"]
        if var.get("value") is not None or var.get("valueFrom") is None:
            env.secret.pop(name, None)
            env.plain[name] = var.get("value") or ""
            continue
        source = var["valueFrom"]
        kind, ref = ("ConfigMap", source["configMapKeyRef"]) if source.get("configMapKeyRef") \
            else ("Secret", source["secretKeyRef"])
        data = (lookup(kind, namespace, ref["name"]) or {}).get("data")
        if data is None or ref["key"] not in data:
            if ref.get("optional"):
                continue
            raise EnvError(f"{kind.lower()} {ref['name']!r} has no key {ref['key']!r} (env {name})")
        value = str(data[ref["key"]])
        if kind == "Secret":
            value = _decoded(value, name, ref)
            _check_env_line(name, value, ref)
            env.plain.pop(name, None)
            env.secret[name] = value
        else:
            env.secret.pop(name, None)
            env.plain[name] = value
    return env


def _decoded(value: str, name: str, ref: Obj) -> str:
    """A Secret's value is base64 (as in Kubernetes): the variable gets what it encodes, as text."""
    try:
        return base64.b64decode(value, validate=True).decode()
    except (binascii.Error, ValueError):
        raise EnvError(f"secret {ref['name']!r} key {ref['key']!r} (env {name}) is not base64 of UTF-8 "
                       "text") from None


def _check_env_line(name: str, value: str, ref: Obj) -> None:
    where = f"secret {ref['name']!r} key {ref['key']!r} (env {name})"
    if any(ch in value for ch in "\n\r\0"):
        raise EnvError(f"{where} holds a line break or NUL: an env file cannot carry it")
    if len(name) + len(value.encode()) + 1 > MAX_ENV_LINE:
        raise EnvError(f"{where} is longer than an env file line may be ({MAX_ENV_LINE} bytes)")
