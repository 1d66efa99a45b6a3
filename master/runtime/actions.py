"""What the runtime does on a host: one small type per action, and the outcome of each.

The planner (planner.py) makes them from desired and observed state, the executor
(executor.py) runs them, and the pod's status (status.py) is computed from the listing
and their outcomes. A type per action, rather than a verb string, lets each of the
three match on it and lets a checker see that every kind is handled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from berth.objects import Obj


@dataclass(frozen=True, eq=False)
class MountVolumes:
    """The pod's volumes on its host (volumes.py), before its sandbox and containers; again when
    what they hold changed (`digest`: a ConfigMap or Secret was updated), seen by the running
    containers in place."""

    pod: Obj
    digest: str
    changes_host: ClassVar[bool] = True


@dataclass(frozen=True, eq=False)
class MakeSandbox:
    """The pod's sandbox (network namespace, published ports), before its containers."""

    pod: Obj
    changes_host: ClassVar[bool] = True


@dataclass(frozen=True, eq=False)
class RunContainer:
    """Create and start a container the host does not have."""

    pod: Obj
    container: Obj
    changes_host: ClassVar[bool] = True


@dataclass(frozen=True, eq=False)
class RestartContainer:
    """Start an exited container again: its restartPolicy wants it and its back-off has passed."""

    pod: Obj
    container: Obj
    changes_host: ClassVar[bool] = True


@dataclass(frozen=True, eq=False)
class ReplaceContainer:
    """Remove a container made from another image than its pod now names, and make it afresh
    (a pod's image is the one spec field that may change)."""

    pod: Obj
    container: Obj
    old_image: str
    changes_host: ClassVar[bool] = True


@dataclass(frozen=True, eq=False)
class RestartUnhealthy:
    """Stop (within the pod's grace) and start a running container its liveness probe failed.
    It runs in the background: the round does not wait for the grace."""

    pod: Obj
    container: Obj
    message: str  # the probe's verdict, for the status's lastState and the Killing event
    started_at: str  # the start the verdict was about
    changes_host: ClassVar[bool] = True


@dataclass(frozen=True, eq=False)
class StopPod:
    """A graceful delete: stop the pod's containers within what is left of its grace, then remove
    them (in the background); a later round finds nothing and forgets the pod."""

    pod: Obj
    changes_host: ClassVar[bool] = True


@dataclass(frozen=True, eq=False)
class ForgetPod:
    """A deleted pod with nothing left on the host: its object is deleted (no host command)."""

    pod: Obj
    changes_host: ClassVar[bool] = True


@dataclass(frozen=True, eq=False)
class RemoveContainer:
    """A container no pod bound here owns (the runtime's name or id)."""

    target: str
    changes_host: ClassVar[bool] = True


@dataclass(frozen=True, eq=False)
class RemoveSandbox:
    """The sandbox of a pod no longer bound here, after its containers; then its volumes' mounts
    and directory (`uid`: the pod's, from the labels)."""

    target: str
    uid: str = ""
    changes_host: ClassVar[bool] = True


@dataclass(frozen=True, eq=False)
class SweepVolumes:
    """The volumes of every pod but those bound here (`keep`, their uids) taken off the host, as
    orphan containers are removed: a pod deleted while its host was away leaves its directory."""

    keep: frozenset[str]
    changes_host: ClassVar[bool] = True


@dataclass(frozen=True, eq=False)
class FindAddress:
    """Ask the host for the pod's address (a read: no fence needed, nothing changes)."""

    pod: Obj
    changes_host: ClassVar[bool] = False


Action = (MountVolumes | MakeSandbox | RunContainer | RestartContainer | ReplaceContainer | RestartUnhealthy
          | StopPod | ForgetPod | RemoveContainer | RemoveSandbox | SweepVolumes | FindAddress)


@dataclass(frozen=True, eq=False)
class Outcome:
    """What became of an action. `ok` false carries the reason a kubelet would give
    (RunContainerError, CreatePodSandboxError, ...) and the engine's message."""

    action: Action
    ok: bool = True
    reason: str = ""
    message: str = ""
    value: str = ""  # what a read found (FindAddress: the address, "" for none yet)
    background: bool = False  # handed off: its result comes as another outcome, later

    @staticmethod
    def failed(action: Action, reason: str, message: str | bytes) -> Outcome:
        text = message.decode(errors="replace") if isinstance(message, bytes) else message
        return Outcome(action, ok=False, reason=reason, message=text[:500])


def pod_uid(action: Action) -> str | None:
    """The uid of the pod an action is about (None: an orphan's removal)."""
    pod = getattr(action, "pod", None)
    return None if pod is None else pod["metadata"]["uid"]
