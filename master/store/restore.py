"""`berth-master snapshot restore`: a data dir seeded from a snapshot, for a master of a new cluster.

What it writes is the full dump PySyncObj itself writes when it compacts its log (`raft.dump`:
gzip of a pickle of `(data, last applied entry, the entry before it, cluster)`), holding the state
machine's state (store/replicated.StateMachine: `{"state": ClusterState}`) with every object of
the snapshot as stored, at its revision. PySyncObj loads it at its first tick, as after any
restart: the objects, their resourceVersions and uids are the snapshot's, the watch window starts
at its revision (StateMachine._deserialize) and the next write takes the revision after it.

Every member of the new cluster is restored from the same file (as etcd's restore is run for each
member), so they hold the same entries: two no-ops of term 0 at log indexes 2 and 3. Index 1 is
where every empty journal starts, so a master that joins later with an empty data dir is behind
the leader's first entry and is sent the leader's dump (the state) rather than entries replayed
on nothing. No journal is written: PySyncObj makes an empty one.

The dump also names the cluster's members (the new cluster's Raft addresses, as etcd's restore
takes `--initial-cluster`): with dynamic membership on (store/membership.py), PySyncObj takes its
members from the dump it loads, so a dump naming none would make each restored master a cluster
of one.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from collections.abc import Iterable
from pathlib import Path

from pysyncobj.node import TCPNode

from berth.private_files import private_dir, write_private
from master.store.encryption import PLAIN
from master.store.replicated import DUMP_FILE  # the name the store gives PySyncObj's full dump
from master.store.snapshot_file import Snapshot, SnapshotError
from master.store.state import ClusterState

_NO_OP = struct.pack("B", 1)  # pysyncobj's _COMMAND_TYPE.NO_OP
_FIRST, _LAST = 2, 3


def restored_state(snapshot: Snapshot) -> ClusterState:
    """The state the snapshot describes; SnapshotError if no store could have held it."""
    for obj in snapshot.objects:
        version = obj["metadata"].get("resourceVersion")
        if not isinstance(version, int) or not 0 <= version <= snapshot.revision:
            raise SnapshotError(f"{obj['kind']} {obj['metadata']['name']} has resourceVersion {version!r}, "
                                f"not one at or before the snapshot's revision {snapshot.revision}")
    try:
        return ClusterState.of(snapshot.revision, snapshot.objects)
    except ValueError as err:
        raise SnapshotError(f"the snapshot holds {err}") from err


def dump_bytes(state: ClusterState, members: Iterable[str]) -> bytes:
    """PySyncObj's full dump of a master holding `state`, in a cluster of `members` (Raft
    addresses, this master's own among them; see the module's docstring)."""
    cluster = {TCPNode(address) for address in members}
    if not cluster:
        raise SnapshotError("a restore needs the new cluster's members (--initial-cluster, or --config)")
    data = ([{}, {"state": state}], (_NO_OP, _LAST, 0), (_NO_OP, _FIRST, 0), cluster)
    return gzip.compress(pickle.dumps(data))


def missing_keys(snapshot: Snapshot, keys: Iterable[str]) -> list[str]:
    """The key ids the snapshot's Secret values are sealed with that are not among `keys` (the new
    masters' encryption_key_file): a restore without them would hold values no master opens."""
    have = set(keys)
    return sorted(k for k in snapshot.meta.get("secretValuesByKey") or {} if k != PLAIN and k not in have)


def check_empty(data_dir: Path) -> None:
    """Refuse a data dir that holds anything: a restore never mixes with an existing journal."""
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise SnapshotError(f"{data_dir} is not an empty directory: a restore seeds a new data dir only")


def seed(snapshot: Snapshot, data_dir: Path, members: Iterable[str]) -> Path:
    """Write the dump into `data_dir` (made 0700, the file 0600: it holds every Secret), whole or
    not at all, for a master of the cluster of `members`. The dump's path."""
    check_empty(data_dir)
    content = dump_bytes(restored_state(snapshot), members)
    private_dir(data_dir)
    target = data_dir / DUMP_FILE
    write_private(target, content)
    return target
