"""A kind's objects, kept current on the agent by a list and then a watch, as client-go's informer.

The agent's view of the cluster (every Node, for routes; later Services and Endpoints, for the
data path) must follow changes within a second without polling the masters: one list gives
the objects and the revision they are at, then one watch stream from that revision brings
each change. A broken stream resumes from the last revision seen (bookmarks included) on
whichever master answers; a revision that has left the masters' window (410) means a new
list. `changed` is told the whole current set after each change: its users are level-triggered.
"""

from __future__ import annotations

import logging
import threading
import zlib
from collections.abc import Callable

from berth.client import Client, kind_info
from berth.errors import ApiError, BerthError, Unreachable
from berth.objects import Obj

log = logging.getLogger(__name__)
Key = tuple[str, str]
STREAM_SECONDS = 300  # one watch request's length; a new one resumes where it ended
RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0)


def spread(masters: list[str], node: str, index: int) -> list[str]:
    """The same masters, starting at another one for each informer of each node: an agent's watch
    streams (six or seven) are spread over the masters rather than all held by the first, each
    master serving at most its `stream_limit` of them. Failover still tries them all."""
    if not masters:
        return masters
    start = (zlib.crc32(node.encode()) + index) % len(masters)
    return masters[start:] + masters[:start]


def key(obj: Obj) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def apply_event(objects: dict[Key, Obj], event: Obj) -> bool:
    """One watch event into the set; True when the set changed."""
    kind, obj = event.get("type"), event.get("object")
    if kind not in ("ADDED", "MODIFIED", "DELETED") or not isinstance(obj, dict):
        return False
    if kind == "DELETED":
        return objects.pop(key(obj), None) is not None
    objects[key(obj)] = obj
    return True


class Informer:
    def __init__(self, client: Client, kind: str, changed: Callable[[dict[Key, Obj]], None]) -> None:
        self.client = client
        self.kind = kind
        self.path = Client.collection_path(kind_info(kind), None)  # every namespace's
        self.changed = changed
        self.objects: dict[Key, Obj] = {}
        self.synced = threading.Event()  # set once the first list arrived
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"informer-{kind}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _list(self) -> int:
        listing = self.client.request("GET", self.path, replayable=True).json()
        self.objects = {key(o): o for o in listing.get("items") or [] if isinstance(o, dict)}
        self.synced.set()
        self.changed(dict(self.objects))
        return int((listing.get("metadata") or {}).get("resourceVersion") or 0)

    def _run(self) -> None:
        revision, failures = None, 0
        while not self._stop.is_set():
            try:
                if revision is None:
                    revision = self._list()
                for event in self.client.watch(self.kind, all_namespaces=True, since=revision,
                                               timeout_seconds=STREAM_SECONDS):
                    revision = int(event.get("revision") or revision)
                    if apply_event(self.objects, event):
                        self.changed(dict(self.objects))
                    failures = 0
                    if self._stop.is_set():
                        return
                continue  # the stream's time ended: resume from the same revision
            except ApiError as err:
                if err.status == 410:
                    revision = None  # out of the window: list afresh
                    continue
                log.warning("%s informer: %s", self.kind, err)
            except (Unreachable, BerthError, ValueError, OSError) as err:
                log.warning("%s informer: %s", self.kind, err)
            self._stop.wait(RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)])
            failures += 1
