"""Images a container could not get: the reasons a kubelet gives, and the leader's record of them.

Before a container is made its image must be on the host (executor.py checks, and pulls
it when the pull policy allows): a failed pull is `ErrImagePull`, an image missing under
`imagePullPolicy: Never` is `ErrImageNeverPull`. The next attempts are spaced by the
restart back-off (planner.pull_backoff), and in between the container waits
`ImagePullBackOff` (`ErrImageNeverPull` stays: nothing is pulled, someone must load the
image). An image that cannot be had is not a crash: no restart is counted.

The record is the leader's soft state, by (pod uid, container) and for the image it was
about: a pod given another image tries that at once, so does a new leader, and a pod's
entries go with it. Unlike the restart back-off it cannot come from the stored status:
a container that was never made has no exit time on the host to count from.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from berth.objects import Obj
from master.runtime.actions import Outcome, ReplaceContainer, RunContainer

ERR_IMAGE_PULL = "ErrImagePull"
ERR_IMAGE_NEVER_PULL = "ErrImageNeverPull"
IMAGE_PULL_BACKOFF = "ImagePullBackOff"
IMAGE_ERRORS = (ERR_IMAGE_PULL, ERR_IMAGE_NEVER_PULL)
PullKey = tuple[str, str]  # (pod uid, container name)


@dataclass(frozen=True)
class PullFailure:
    """The last failure to get a container's image, and how many came in a row for that image."""

    image: str
    reason: str  # ErrImagePull or ErrImageNeverPull
    message: str
    failures: int
    failed_at: float  # wall-clock seconds, as SoftState.now


def never_pull_message(image: str) -> str:
    """Kubelet's words, so that what users search for finds it."""
    return f'Container image "{image}" is not present with pull policy of Never'


def pull_waiting(failure: PullFailure) -> Obj:
    """A container's state between attempts: ImagePullBackOff, saying what the last attempt met;
    ErrImageNeverPull as it was (no pull to back off from)."""
    if failure.reason == ERR_IMAGE_NEVER_PULL:
        return {"waiting": {"reason": ERR_IMAGE_NEVER_PULL, "message": failure.message}}
    message = f'Back-off pulling image "{failure.image}": {failure.reason}: {failure.message}'
    return {"waiting": {"reason": IMAGE_PULL_BACKOFF, "message": message}}


def after_round(failures: Mapping[PullKey, PullFailure], outcomes: Iterable[Outcome],
                now: float) -> dict[PullKey, PullFailure]:
    """The record once a round's outcomes are in (pure). A container that failed to get its image
    counts one more failure (the first, for another image than the last); one made, or failed
    for any other reason (its image was there), is forgotten."""
    record = dict(failures)
    for outcome in outcomes:
        action = outcome.action
        if not isinstance(action, RunContainer | ReplaceContainer):
            continue
        key = (action.pod["metadata"]["uid"], action.container["name"])
        if outcome.ok or outcome.reason not in IMAGE_ERRORS:
            record.pop(key, None)
            continue
        image = action.container["image"]
        last = record.get(key)
        failures = last.failures + 1 if last is not None and last.image == image else 1
        record[key] = PullFailure(image, outcome.reason, outcome.message, failures, now)
    return record


class PullRecord:
    """The leader's record, shared by the hosts' looks of a round (each writes its own pods')."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: dict[PullKey, PullFailure] = {}

    def snapshot(self) -> dict[PullKey, PullFailure]:
        with self._lock:
            return dict(self._failures)

    def record(self, outcomes: list[Outcome], now: float) -> None:
        with self._lock:
            self._failures = after_round(self._failures, outcomes, now)

    def keep(self, uids: Collection[str]) -> None:
        """Forget the pods that are gone."""
        with self._lock:
            self._failures = {key: failure for key, failure in self._failures.items() if key[0] in uids}

    def clear(self) -> None:
        """A new term: this leader tries every image at once, as another leader would."""
        with self._lock:
            self._failures = {}

