"""Berth's time stamp, shared by the masters, the CLI and the lab's fake kubelet: RFC 3339 in UTC to
the microsecond, as Kubernetes' MicroTime, so two events in one second stay two and in order."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").removesuffix("+00:00") + "Z"
