"""Leader-only: every Service with a selector has Endpoints of its name listing the pods it sends
to, as Kubernetes' endpoints controller keeps them; Endpoints whose Service is gone go.

Level-triggered: woken by any change to Pods, Services, Endpoints or Nodes, and every `period`
seconds. Each round reads the Ready nodes, every Service with the pods its selector finds (the
store's label index) and every Endpoints, decides each Service's subsets with the pure
`endpoint_subsets` (master/network/endpoints.py), and writes only what differs: a Create, a
Replace at the resourceVersion read, a Delete at it, all of them in one `propose_all`. A write
that meets a change made meanwhile fails alone, and the next round, at once, looks again.
Endpoints of a Service without a selector are its users' (Kubernetes leaves them too); the
Service's labels are copied onto its Endpoints, as Kubernetes does. The loop is `fenced`: a new
leader first commits a barrier, so it never deletes Endpoints for a Service its last leader made
in an entry not yet applied here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from berth.objects import Obj
from master.controllers.leader_loop import LeaderLoop
from master.errors import ApiError
from master.network.endpoints import endpoint_subsets
from master.objects.conditions import ready_condition
from master.objects.isolation import each
from master.objects.kinds import API_VERSION
from master.store.commands import Command, Create, Delete, Replace
from master.store.replicated import Store
from master.store.state import ClusterState, WatchEvent

log = logging.getLogger(__name__)
KIND = "Endpoints"
WATCHED = frozenset({"Pod", "Service", KIND, "Node"})
Key = tuple[str, str]


def _key(obj: Obj) -> Key:
    return obj["metadata"].get("namespace") or "", obj["metadata"]["name"]


def _selector(service: Obj) -> dict[str, str]:
    spec = service.get("spec")
    selector = spec.get("selector") if isinstance(spec, dict) else None
    return selector if isinstance(selector, dict) else {}


class _Round:
    """What a round reads under the store's lock: everything else is done after it."""

    def __init__(self, state: ClusterState) -> None:
        self.ready_nodes = {n["metadata"]["name"] for n in state.list("Node") if ready_condition(n)}
        self.services = {_key(s): s for s in state.list("Service")}
        self.pods = {key: state.select("Pod", key[0], labels=_selector(s))
                     for key, s in self.services.items() if _selector(s)}
        self.endpoints = {_key(e): e for e in state.list(KIND)}


def wanted(service: Obj, subsets: list[Obj]) -> Obj:
    meta = service["metadata"]
    return {"apiVersion": API_VERSION, "kind": KIND,
            "metadata": {"name": meta["name"], "namespace": meta.get("namespace") or "",
                         "labels": dict(meta.get("labels") or {})},
            "subsets": subsets}


def write(current: Obj | None, want: Obj, uid: str, now: str) -> Command | None:
    """The write that makes `current` what is wanted (None: it already is)."""
    if current is None:
        return Create(want, uid, now)
    labels = want["metadata"]["labels"]
    if current.get("subsets") == want["subsets"] and (current["metadata"].get("labels") or {}) == labels:
        return None
    meta = {**current["metadata"], "labels": labels}
    return Replace({**current, "metadata": meta, "subsets": want["subsets"]}, meta["resourceVersion"])


class EndpointsController(LeaderLoop):
    name = "endpoints"
    fenced = True  # it deletes what no Service it has read names

    def __init__(self, store: Store, now: Callable[[], str], uid: Callable[[], str],
                 period: float = 5.0) -> None:
        super().__init__(store, period)
        self.now = now
        self.uid = uid
        store.add_listener(self._changed)

    def _changed(self, events: list[WatchEvent]) -> None:
        if self.leading and any(e.kind in WATCHED for e in events):
            self.wake()

    def reconcile(self) -> None:
        seen, _ = self.store.read(_Round)
        now = self.now()

        def look(key: Key) -> Command | None:
            service = seen.services[key]
            want = wanted(service, endpoint_subsets(service, seen.pods[key], seen.ready_nodes))
            return write(seen.endpoints.get(key), want, self.uid(), now)

        commands = [c for c in each(sorted(seen.pods), look, lambda key, err: self.quarantine(
            seen.services[key], err)) if c is not None]
        commands += [Delete(KIND, namespace, name, e["metadata"]["resourceVersion"])
                     for (namespace, name), e in sorted(seen.endpoints.items())
                     if (namespace, name) not in seen.services]
        if not commands:
            return
        answers = self.store.propose_all(commands)
        failed = [a for a in answers if isinstance(a, ApiError)]
        log.info("endpoints: %d write(s), %d refused%s", len(commands), len(failed),
                 f" (first: {failed[0].message})" if failed else "")
        if any(a.status == 409 for a in failed):
            self.wake()  # changed since read: look again now, not in `period`
