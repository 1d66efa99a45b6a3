"""A container's environment, resolved from its literal values and ConfigMap/Secret references."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Obj = dict[str, Any]
Lookup = Callable[[str, str, str], Obj | None]  # (kind, namespace, name) -> the stored object


class EnvError(ValueError):
    """A reference that cannot be resolved: the container cannot start (CreateContainerConfigError)."""


def resolve_env(container: Obj, namespace: str, lookup: Lookup) -> dict[str, str]:
    env: dict[str, str] = {}
    for var in container.get("env") or []:
        if var.get("value") is not None or var.get("valueFrom") is None:
            env[var["name"]] = var.get("value") or ""
            continue
        source = var["valueFrom"]
        kind, ref = ("ConfigMap", source["configMapKeyRef"]) if source.get("configMapKeyRef") \
            else ("Secret", source["secretKeyRef"])
        data = (lookup(kind, namespace, ref["name"]) or {}).get("data")
        if data is None or ref["key"] not in data:
            if ref.get("optional"):
                continue
            raise EnvError(f"{kind.lower()} {ref['name']!r} has no key {ref['key']!r} (env {var['name']})")
        env[var["name"]] = str(data[ref["key"]])
    return env
