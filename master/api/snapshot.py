"""`GET /api/v1/snapshot` (cluster-admin only): every stored object at one revision, as a snapshot file.

What `berth-master snapshot save` asks a running master for, as `etcdctl snapshot save` asks an
etcd member: online, from this master's state (a follower's serves as well as the leader's), taken
under the store's read lock so that it is one revision's, never a write half in. The answer is the
file itself (store/snapshot_file.py), checksummed; the client verifies it before keeping it.

It holds every object, Secrets too: sealed as stored when the masters have an
`encryption_key_file` (their values stay ciphertext in the file, and a restore needs the same
keys), in clear otherwise. So it needs `get` on the pseudo-subresource `secrets/snapshot` in every
namespace, which of the built-in roles only cluster-admin's `*` grants; a custom ClusterRole grants
it only by naming it or by granting every resource (`*`, which grants secrets/values as well), and
RBAC's escalation check keeps whoever lacks it from granting it.
"""

from __future__ import annotations

from flask import Blueprint, Response

from master.api.auth import authorize
from master.api.context import context, principal
from master.store.encryption import values_by_key
from master.store.snapshot_file import encode
from master.store.state import ClusterState

bp = Blueprint("snapshot", __name__)
SUBRESOURCE = "snapshot"


def _every_object(state: ClusterState) -> list[dict]:
    """References only, under the lock (objects are never mutated once stored): encoded after."""
    return [obj for bucket in state.objects.values() for obj in bucket.values()]


@bp.get("/api/v1/snapshot")
def snapshot() -> Response:
    authorize(principal(), "get", "Secret", subresource=SUBRESOURCE, namespace=None)
    ctx = context()
    objects, revision = ctx.store.read(_every_object)
    keyring = ctx.store.keyring
    meta = {"takenBy": ctx.store.self_address, "takenAt": ctx.now(),
            "secretValuesByKey": values_by_key(o for o in objects if o["kind"] == "Secret"),
            "sealingKeyIds": list(keyring.ids) if keyring is not None else []}
    body = encode(revision, objects, meta)
    return Response(body, mimetype="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="berth-{revision}.snapshot"',
                             "Cache-Control": "no-store"})
