"""Raft membership changes (`berth cluster add-master`/`remove-master`): which ones are safe.

PySyncObj applies one membership change at a time, and each takes effect as soon as the leader
appends it (Raft's single-server change): from then on the new configuration's majority decides.
A change is therefore refused when the masters the leader reaches now would not be a majority of
the new configuration, since the cluster would stop committing (an added master counts as not yet
reachable: it still has the whole log to catch up on).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# host:port, host a DNS name or IPv4 address (or [IPv6]): nothing that could end up interpreted
_HOST_PORT = r"(?:\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?):([0-9]{1,5})"
_ADDRESS = re.compile(f"^{_HOST_PORT}$")
_API_URL = re.compile(f"^https://{_HOST_PORT}$")


def majority(size: int) -> int:
    return size // 2 + 1


@dataclass(frozen=True)
class Verdict:
    """`status`: the HTTP status of a refusal (0 when allowed); `message` says why."""

    status: int
    reason: str
    message: str

    @property
    def allowed(self) -> bool:
        return self.status == 0


ALLOWED = Verdict(0, "", "")


def check_address(value: object) -> str:
    """A Raft address, strictly HOST:PORT; ValueError naming what is wrong."""
    if not isinstance(value, str) or not (match := _ADDRESS.match(value)) or not 0 < int(match[1]) < 65536:
        raise ValueError(f"{str(value)[:80]!r} is not HOST:PORT (a DNS name or IP address and a port)")
    return value


def check_api_url(value: object) -> str:
    """A master's API URL, strictly https://HOST:PORT (no path, user or query)."""
    if not isinstance(value, str) or not (match := _API_URL.match(value)) or not 0 < int(match[1]) < 65536:
        raise ValueError(f"{str(value)[:80]!r} is not https://HOST:PORT")
    return value


def judge(change: str, address: str, members: frozenset[str], reachable: frozenset[str], leader: str,
          pending: bool) -> Verdict:
    """Whether the leader may make `change` ("add" or "remove") of `address` now. `members`: every
    member, the leader included; `reachable`: those the leader reaches (itself included); `pending`:
    an earlier change is not committed yet."""
    if pending:
        return Verdict(409, "Conflict", "another membership change is in progress; one at a time, retry "
                                        "once it is done")
    if change == "add":
        if address in members:
            return Verdict(409, "AlreadyExists", f"{address} is already a member")
        after, live = members | {address}, reachable & members
    else:
        if address not in members:
            return Verdict(404, "NotFound", f"{address} is not a member")
        if address == leader:
            return Verdict(503, "Unavailable", f"{address} leads: it hands leadership over first; retry")
        after, live = members - {address}, (reachable & members) - {address}
    if len(live) < majority(len(after)):
        return Verdict(422, "Invalid", f"refused: it would lose quorum: {len(after)} members need "
                                       f"{majority(len(after))}, and only {len(live)} would be reachable "
                                       f"({', '.join(sorted(live)) or 'none'})")
    return ALLOWED
