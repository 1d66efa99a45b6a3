"""Names the controllers make: `<owner>-<5 random>` for pods, `<deployment>-<pod-template-hash>`.

Names are DNS-1123 labels (at most 63): a long owner's name is cut to leave room for the suffix,
as Kubernetes' generateName cuts it. The alphabet has no vowels (no words by accident) and no
characters that look alike, as Kubernetes' rand.String and SafeEncodeString use.
"""

from __future__ import annotations

import hashlib
import json
import random

from berth.objects import Obj

SAFE = "bcdfghjklmnpqrstvwxz2456789"
MAX_NAME = 63
HASH_LABEL = "pod-template-hash"


def child_name(base: str, suffix: str) -> str:
    room = MAX_NAME - len(suffix) - 1
    return f"{base[:room].rstrip('-')}-{suffix}"


def random_suffix(rng: random.Random, length: int = 5) -> str:
    return "".join(rng.choice(SAFE) for _ in range(length))


def template_hash(template: Obj, collision_count: int = 0) -> str:
    """Stable for a template (its JSON with sorted keys) and the deployment's collisionCount, which
    a clash with another object's name raises to give the next hash."""
    text = json.dumps(template, sort_keys=True, separators=(",", ":")) + f"#{collision_count}"
    value = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")
    digits = []
    while True:
        value, digit = divmod(value, len(SAFE))
        digits.append(SAFE[digit])
        if not value:
            return "".join(reversed(digits))


def without_hash(template: Obj) -> Obj:
    """A ReplicaSet's template as its Deployment wrote it: the hash label it added taken out."""
    meta = template.get("metadata") or {}
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k != HASH_LABEL}
    return {**template, "metadata": {**meta, "labels": labels}}
