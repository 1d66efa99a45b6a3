"""The RBAC authorizer with 1,000 bindings and 1,000 roles: no Raft, no HTTP.

    python -m bench.authorizer                    # 1,000 bindings, 1,000 roles, 1,000 users
    python -m bench.authorizer --bindings 5000 --requests 20000

The objects live in a real ClusterState (master/store/state.py) behind the Store's read and
listener, as on a master: 950 Roles and RoleBindings over 100 namespaces, 50 ClusterRoles and
ClusterRoleBindings; each binding names one user and one of 100 groups; each user has 2 groups.
Printed side by side, per decision, over the same random requests (verb, kind, namespace, name):
  fixed roles   the four roles' function before RBAC (bench/fixed_roles.py): the reference
  cached        auth.decide in a request's app context, every decision already in the cache
  book          the decision computed from the cached RuleBook (a cache miss: first time asked)
  uncached      recomputed from the store: the four kinds read, a RuleBook built, then decided
  change        a binding written, then the next decision (the cache rebuilt by the listener's count)
Targets: a cached decision under 20 µs (2% of a small GET's ~1 ms on a master), a rebuild after a
change under 50 ms at 1,000 bindings (the roles' rules are parsed once: only bindings are re-indexed).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from flask import Flask

from bench._common import machine_header, mark
from bench.fixed_roles import fixed_role_allows
from master.api.auth import Principal, decide, request_of
from master.objects.validate import validate_object
from master.rbac.book import RuleBook
from master.rbac.cache import RbacCache, rbac_objects
from master.store.commands import Command, Create, Put
from master.store.state import ClusterState

KINDS = ("Pod", "ConfigMap", "Service", "Deployment", "Secret")
RESOURCES = ("pods", "configmaps", "services", "deployments", "secrets")
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete")
NOW = "2026-11-30T00:00:00Z"


class BenchStore:
    """What RbacCache reads of a master's Store: `read`, `add_listener`, `snapshots_loaded`."""

    def __init__(self) -> None:
        self.state = ClusterState()
        self.listeners: list[Callable[[list[Any]], None]] = []
        self.snapshots_loaded = 0
        self._uids = 0

    def read(self, reader: Callable[[ClusterState], Any]) -> tuple[Any, int]:
        return reader(self.state), self.state.revision

    def add_listener(self, listener: Callable[[list[Any]], None]) -> None:
        self.listeners.append(listener)

    def apply(self, command: Command) -> None:
        outcome, events = self.state.apply(command)
        assert outcome.error is None, outcome.error
        for listener in self.listeners:
            listener(events)

    def create(self, document: dict[str, Any]) -> None:
        self._uids += 1
        self.apply(Create(validate_object(document), f"uid-{self._uids}", NOW))


def _rules(rng: random.Random) -> list[dict[str, Any]]:
    return [{"apiGroups": [""], "resources": rng.sample(RESOURCES, rng.randint(1, 3)),
             "verbs": rng.sample(VERBS, rng.randint(1, 4))} for _ in range(rng.randint(1, 3))]


def populate(store: BenchStore, bindings: int, rng: random.Random) -> None:
    cluster_wide = max(1, bindings // 20)
    for i in range(bindings):
        namespaced = i >= cluster_wide
        ns = {"namespace": f"ns-{i % 100}"} if namespaced else {}
        role_kind = "Role" if namespaced else "ClusterRole"
        binding_kind = role_kind + "Binding"
        store.create({"kind": role_kind, "metadata": {"name": f"r-{i}", **ns}, "rules": _rules(rng)})
        store.create({"kind": binding_kind, "metadata": {"name": f"b-{i}", **ns},
                      "roleRef": {"kind": role_kind, "name": f"r-{i}"},
                      "subjects": [{"kind": "User", "name": f"u-{i}"},
                                   {"kind": "Group", "name": f"g-{i % 100}"}]})


Asked = tuple[Principal, str, str, str | None, str]  # who, verb, kind, name, namespace


def requests_for(count: int, users: int, rng: random.Random) -> list[Asked]:
    made = []
    for _ in range(count):
        user = rng.randrange(users)
        who = Principal(f"u-{user}", None, (f"g-{user % 100}", f"g-{(user * 7) % 100}"))
        verb = rng.choice(VERBS)
        name = None if verb in ("list", "watch", "create") else f"o-{rng.randrange(50)}"
        made.append((who, verb, rng.choice(KINDS), name, f"ns-{rng.randrange(100)}"))
    return made


def per_decision(run: Callable[[], tuple[int, int]], repeat: int) -> tuple[float, int]:
    """Median seconds per decision over `repeat` runs, and the allowed count of one run."""
    times, allowed = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        allowed, count = run()
        times.append((time.perf_counter() - started) / count)
    return statistics.median(times), allowed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bindings", type=int, default=1000, help="bindings, and as many roles")
    parser.add_argument("--requests", type=int, default=5000, help="distinct requests decided")
    parser.add_argument("--uncached", type=int, default=200, help="requests decided from the store")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(machine_header())
    rng = random.Random(17)
    store = BenchStore()
    started = time.perf_counter()
    populate(store, args.bindings, rng)
    stored = time.perf_counter() - started
    print(f"{args.bindings} bindings and {args.bindings} roles stored in {stored:.1f} s; "
          f"{args.requests} distinct requests of {args.bindings} users")
    asked = requests_for(args.requests, args.bindings, rng)
    roles = [rng.choice(("admin", "operator", "viewer")) for _ in asked]
    cache = RbacCache(store)
    app = Flask(__name__)
    app.extensions["berth"] = SimpleNamespace(rbac=cache)

    def fixed() -> tuple[int, int]:
        return sum(fixed_role_allows(role, who.name, verb, kind, name, None, None)
                   for role, (who, verb, kind, name, _) in zip(roles, asked, strict=True)), len(asked)

    def through_auth() -> tuple[int, int]:
        return sum(decide(who, verb, kind, name, namespace=ns).allowed
                   for who, verb, kind, name, ns in asked), len(asked)

    def from_book() -> tuple[int, int]:
        book = cache.book()
        return sum(book.decide(who.name, who.all_groups, request_of(verb, kind, name, None, ns)).allowed
                   for who, verb, kind, name, ns in asked), len(asked)

    def from_store() -> tuple[int, int]:
        allowed = 0
        for who, verb, kind, name, ns in asked[:args.uncached]:
            lists, _ = store.read(rbac_objects)
            asked_of = request_of(verb, kind, name, None, ns)
            allowed += RuleBook(*lists).decide(who.name, who.all_groups, asked_of).allowed
        return allowed, min(args.uncached, len(asked))

    with app.app_context():
        through_auth()  # fills the cache
        rows = [("fixed roles (reference)", *per_decision(fixed, args.repeat)),
                ("cached: auth.decide, a hit", *per_decision(through_auth, args.repeat)),
                ("book: a miss, decided from the RuleBook", *per_decision(from_book, args.repeat)),
                ("uncached: read + RuleBook + decide", *per_decision(from_store, max(1, args.repeat // 2)))]
        changes = []
        for i in range(args.repeat):
            store.apply(Put(validate_object({
                "kind": "RoleBinding", "metadata": {"name": f"late-{i}", "namespace": "ns-1"},
                "roleRef": {"kind": "Role", "name": f"r-{args.bindings - 1}"},
                "subjects": [{"kind": "User", "name": "u-1"}]}), f"late-{i}", NOW))
            who, verb, kind, name, ns = asked[0]
            started = time.perf_counter()
            decide(who, verb, kind, name, namespace=ns)
            changes.append(time.perf_counter() - started)
        rows.append(("change: first decision after a binding written", statistics.median(changes), None))
    reference = rows[0][1]
    print("| decision | per decision µs | vs fixed roles | allowed (of one pass) |\n|---|---|---|---|")
    for label, seconds, allowed in rows:
        print(f"| {label} | {seconds * 1e6:,.1f} | {seconds / reference:,.0f}x | "
              f"{'' if allowed is None else allowed} |")
    cached, rebuild = rows[1][1], rows[4][1]
    print(f"cached {cached * 1e6:.1f} µs, target < 20 µs: {mark(cached < 20e-6)}; "
          f"rebuild after a change {rebuild * 1000:.1f} ms, target < 50 ms: {mark(rebuild < 0.05)}")


if __name__ == "__main__":
    main()
