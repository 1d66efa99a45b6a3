"""`POST /api/v1/secrets/rotate` (admins only): every Secret sealed again with the first key.

Rotation, as an API rather than a command of its own: the master that answers has the keys, the
store and Raft already, so nothing else needs the cluster's tokens or a way in. After a new key
was put first in every master's `encryption_key_file` and the masters restarted, one call seals
every value under it (master/store/rotation.py), in batches through Raft, while the cluster
serves; the answer counts the values per key id before and after, and once no value is left
under an old key (`after`), that key can leave the file. `?dryRun=All` counts and writes nothing.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from master.api.auth import authorize
from master.api.context import context, principal
from master.errors import ApiError, bad_request
from master.store.rotation import rotate_secrets

bp = Blueprint("encryption", __name__)


@bp.post("/api/v1/secrets/rotate")
def rotate() -> Response:
    authorize(principal(), "update", "Secret", subresource="encryption")
    dry = request.args.get("dryRun")
    if dry not in (None, "All"):
        raise bad_request("dryRun must be All", "dryRun")
    store = context().store
    if store.keyring is None:
        raise ApiError(400, "BadRequest", "this master has no encryption_key_file: there is no key to seal "
                       "Secrets with", "encryption_key_file")
    done = rotate_secrets(store, store.keyring, dry_run=dry == "All")
    return jsonify({"apiVersion": "berth/v1", "kind": "SecretRotation", "keyId": done.key_id,
                    "dryRun": dry == "All", "before": done.before, "after": done.after,
                    "rotated": done.rotated, "left": done.left, "failed": done.failed})
