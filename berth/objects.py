"""How every side holds a stored object: a JSON-like dict (what the API sends and the store keeps).

The master's pydantic models validate what comes in; past that, objects travel as plain
dicts, so the store, the controllers, the agent and the CLI share no classes, only this.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]
