"""A container's environment, resolved from its literal values and ConfigMap/Secret references."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


class EnvError(ValueError):
    """A reference that cannot be resolved: the container cannot start (CreateContainerConfigError)."""


def resolve_env(container: Obj, namespace: str, configmaps: dict[tuple[str, str], Obj],
                secrets: dict[tuple[str, str], Obj]) -> dict[str, str]:
    env: dict[str, str] = {}
    for var in container.get("env") or []:
        if var.get("value") is not None or var.get("valueFrom") is None:
            env[var["name"]] = var.get("value") or ""
            continue
        source = var["valueFrom"]
        if source.get("configMapKeyRef"):
            ref, kind, objects = source["configMapKeyRef"], "configmap", configmaps
        else:
            ref, kind, objects = source["secretKeyRef"], "secret", secrets
        data = (objects.get((namespace, ref["name"])) or {}).get("data")
        if data is None or ref["key"] not in data:
            if ref.get("optional"):
                continue
            raise EnvError(f"{kind} {ref['name']!r} has no key {ref['key']!r} (env {var['name']})")
        env[var["name"]] = str(data[ref["key"]])
    return env
