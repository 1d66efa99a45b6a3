"""Secondary keys of the stored objects, so that a read names the few objects it wants.

A list by namespace, label, node (`spec.nodeName`) or owner (an ownerReference's uid)
takes its candidates from here under the store's lock, in time proportional to what it
finds, not to everything stored: the apply thread waits for none of the filtering. Kept
beside ClusterState's objects and changed with them in the one place they change; never
pickled into snapshots (rebuilt when one is loaded).

Beside them, what is held cluster-wide by one object alone: a Service's address and node ports
(`services.held`), each to the Service holding it, so the apply's check that no other holds it
is a look-up, not a scan of thousands of Services.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable

from berth.objects import Obj
from master.objects.services import held

Key = tuple[str, str]  # (namespace, name)
Term = tuple[str, Hashable]  # (index, value): ("label", ("app", "web")), ("node", "h1") ...


def terms(obj: Obj) -> list[Term]:
    meta = obj["metadata"]
    found: list[Term] = [("namespace", meta.get("namespace", ""))]
    found += [("label", (key, value)) for key, value in (meta.get("labels") or {}).items()]
    spec = obj.get("spec")
    if isinstance(spec, dict) and spec.get("nodeName"):
        found.append(("node", spec["nodeName"]))
    found += [("owner", ref["uid"]) for ref in meta.get("ownerReferences") or []
              if isinstance(ref, dict) and ref.get("uid")]
    return found


class Indexes:
    def __init__(self) -> None:
        self._keys: dict[tuple[str, str, Hashable], set[Key]] = defaultdict(set)
        self._in_namespace: Counter[str] = Counter()  # namespace -> objects of every kind in it
        self._held: dict[str, dict[Hashable, Key]] = defaultdict(dict)  # index -> value -> its holder

    def holder(self, index: str, value: Hashable) -> Key | None:
        """The (namespace, name) of the Service holding this address ("clusterIP") or node port."""
        return self._held.get(index, {}).get(value)

    def held(self) -> dict[str, dict[Hashable, Key]]:
        """A copy of everything held: taken under the store's lock, read after it."""
        return {index: dict(values) for index, values in self._held.items()}

    def in_namespace(self, namespace: str) -> int:
        return self._in_namespace[namespace]

    def namespaces_in_use(self) -> list[str]:
        return list(self._in_namespace)

    def change(self, kind: str, key: Key, old: Obj | None, new: Obj | None) -> None:
        """`old` (if any) leaves the indexes, `new` (if any) enters them."""
        for obj, step in ((old, -1), (new, 1)):
            namespace = obj["metadata"].get("namespace") if obj is not None else None
            if namespace:
                self._in_namespace[namespace] += step
                if not self._in_namespace[namespace]:
                    del self._in_namespace[namespace]
        before = set(terms(old)) if old is not None else set()
        after = set(terms(new)) if new is not None else set()
        for index, value in before - after:
            keys = self._keys[(kind, index, value)]
            keys.discard(key)
            if not keys:
                del self._keys[(kind, index, value)]
        for index, value in after - before:
            self._keys[(kind, index, value)].add(key)
        for _, index, value in held(old):
            if self._held[index].get(value) == key:
                del self._held[index][value]
        for _, index, value in held(new):
            self._held[index][value] = key

    def rebuild(self, objects: dict[str, dict[Key, Obj]]) -> None:
        self._keys.clear()
        self._in_namespace.clear()
        self._held.clear()
        for kind, bucket in objects.items():
            for key, obj in bucket.items():
                self.change(kind, key, None, obj)

    def keys(self, kind: str, wanted: Iterable[Term]) -> set[Key] | None:
        """The keys that have every wanted term (None: no term asked, so no narrowing)."""
        found: set[Key] | None = None
        for index, value in sorted(wanted, key=lambda t: len(self._keys.get((kind, *t), ()))):
            keys = self._keys.get((kind, index, value), set())
            found = set(keys) if found is None else found & keys
            if not found:
                return set()
        return found
