"""Reading settings files and secrets: shared by berth-master and the light berth-agent."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml


def read_secret(path: str, what: str) -> str:
    """A one-line secret file (token, password); an empty one is a mistake, not a secret."""
    secret = Path(path).read_text().strip()
    if not secret:
        raise ValueError(f"{path}: the {what} file is empty")
    return secret


def load_settings_file(path: str) -> dict[str, Any]:
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of settings")
    return data


def merged_settings(cls: type, what: str, file_values: dict[str, Any], overrides: dict[str, Any],
                    required: tuple[str, ...]) -> dict[str, Any]:
    """File settings overridden by the flags that were given; unknown or missing ones refused."""
    values = {k.replace("-", "_"): v for k, v in (file_values or {}).items()}
    values.update({k: v for k, v in overrides.items() if v not in (None, (), [])})
    unknown = sorted(set(values) - {f.name for f in fields(cls)})
    if unknown:
        raise ValueError(f"unknown {what} settings: {', '.join(unknown)}")
    missing = sorted(name for name in required if not values.get(name))
    if missing:
        raise ValueError(f"missing {what} settings: {', '.join(missing)}")
    return values
