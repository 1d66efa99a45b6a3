"""Bearer tokens and roles: who may do what, decided in one place.

Tokens are kept only as SHA-256 digests, so the tokens file can be read by the
master without the master ever holding the clear tokens.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from master.errors import ApiError

ROLES = ("admin", "operator", "viewer", "agent")
READ_VERBS = frozenset({"get", "list", "watch"})


@dataclass(frozen=True)
class Principal:
    name: str
    role: str

    @property
    def sees_secret_values(self) -> bool:
        return self.role == "admin"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenBook:
    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self._by_digest: dict[str, Principal] = {}
        for number, entry in enumerate(entries):
            name, role, sha = entry.get("name"), entry.get("role"), str(entry.get("sha256", ""))
            if not name or role not in ROLES or len(sha) != 64:
                raise ValueError(f"tokens[{number}]: needs name, role in {ROLES} and a sha256 digest")
            self._by_digest[sha.lower()] = Principal(str(name), str(role))

    @classmethod
    def load(cls, path: str | Path) -> TokenBook:
        data = yaml.safe_load(Path(path).read_text()) or {}
        return cls(list(data.get("tokens") or []))

    def authenticate(self, header: str | None) -> Principal:
        if not header or not header.startswith("Bearer "):
            raise ApiError(401, "Unauthorized", "a bearer token is required", "Authorization")
        principal = self._by_digest.get(digest(header.removeprefix("Bearer ").strip()))
        if principal is None:
            raise ApiError(401, "Unauthorized", "the token is not valid", "Authorization")
        return principal


def authorize(principal: Principal, verb: str, kind: str | None, name: str | None = None,
              node: str | None = None) -> None:
    """Raise 403 unless `principal` may `verb` objects of `kind` (named `name`).

    kind=None is for cluster-wide reads (cluster status, OpenAPI document). `node`: a list
    limited to the pods bound to that node (an agent may read those of its own node only,
    as Kubernetes' NodeRestriction).
    """
    role = principal.role
    if role in ("admin", "operator"):
        return
    if role == "viewer" and verb in READ_VERBS:
        return
    if role == "agent":
        if kind is None and verb == "get":
            return
        if kind == "Node" and name == principal.name and verb in ("get", "create", "update", "patch"):
            return
        if kind == "Pod" and node == principal.name and verb == "list":
            return
    target = f"{kind} {name}" if name else (kind or "the cluster")
    raise ApiError(403, "Forbidden", f"{principal.name} ({role}) may not {verb} {target}", None)


def redact(obj: dict[str, Any], principal: Principal) -> dict[str, Any]:
    """A Secret as this principal may see it: keys kept, values hidden unless admin."""
    if obj.get("kind") != "Secret" or principal.sees_secret_values:
        return obj
    return {**obj, "data": dict.fromkeys(obj.get("data") or {})}
