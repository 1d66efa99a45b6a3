"""What `berth rollout`, `scale` and `set image` decide, apart from the API and the terminal.

kubectl's rollout commands work on the client: `status` reads the Deployment's status, `history`
and `undo` read the ReplicaSets it controls (each carries its template and revision). These rules
are pure here, so the unit tests check them on plain objects; berth/cli/commands/rollout.py only
reads, calls these, and writes. The names mirror the master's (master/workloads), which the CLI
must not import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from berth.errors import BerthError
from berth.objects import Obj

REVISION = "deployment.berth.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
HASH_LABEL = "pod-template-hash"
RESTARTED_AT = "berth.io/restartedAt"  # kubectl's is kubectl.kubernetes.io/restartedAt
NONE = "<none>"


# --- reading objects ---------------------------------------------------------------------------

def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def revision_of(obj: Obj) -> int:
    """0 for an object without a revision (never rolled out, or not a Deployment's)."""
    value = str((_meta(obj).get("annotations") or {}).get(REVISION, ""))
    return int(value) if value.isdigit() else 0


def controlled_by(owner: Obj, objects: list[Obj]) -> list[Obj]:
    """The objects whose controller is `owner`, by uid: a same-named owner made anew owns none of
    an earlier one's, and a ReplicaSet made by hand with matching labels is not its history."""
    uid = _meta(owner).get("uid")
    return [obj for obj in objects
            if any(isinstance(ref, dict) and ref.get("controller") and ref.get("uid") == uid
                   for ref in _meta(obj).get("ownerReferences") or [])]


def condition(obj: Obj, kind: str) -> Obj | None:
    for entry in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(entry, dict) and entry.get("type") == kind:
            return entry
    return None


def without_hash(template: Obj) -> Obj:
    """A ReplicaSet's template as its Deployment wrote it: the hash label the controller added
    taken out (the label map kept, even empty, as the master compares them)."""
    meta = template.get("metadata") or {}
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k != HASH_LABEL}
    return {**template, "metadata": {**meta, "labels": labels}}


def same_template(a: Obj, b: Obj) -> bool:
    return without_hash(a) == without_hash(b)


# --- rollout status ----------------------------------------------------------------------------

def rollout_status(deployment: Obj, revision: int = 0) -> tuple[str, bool]:
    """(the line to print, whether the rollout is done), by kubectl's rules for a Deployment: a status
    from before the latest spec says nothing yet; then the new pods must all be made, the old ones
    gone, and the new ones available. A rollout past its progress deadline is an error, as is
    one of another revision than `revision` (when given)."""
    name = _meta(deployment).get("name")
    status = deployment.get("status") or {}
    if revision and revision_of(deployment) != revision:
        raise BerthError(f"desired revision ({revision}) is different from the running revision "
                         f"({revision_of(deployment)})")
    if _int(_meta(deployment).get("generation")) > _int(status.get("observedGeneration")):
        return "Waiting for deployment spec update to be observed...", False
    progressing = condition(deployment, "Progressing") or {}
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        raise BerthError(f'deployment "{name}" exceeded its progress deadline')
    wanted = _int((deployment.get("spec") or {}).get("replicas", 1))
    updated, total = _int(status.get("updatedReplicas")), _int(status.get("replicas"))
    available = _int(status.get("availableReplicas"))
    waiting = f'Waiting for deployment "{name}" rollout to finish: '
    if updated < wanted:
        return f"{waiting}{updated} out of {wanted} new replicas have been updated...", False
    if total > updated:
        return f"{waiting}{total - updated} old replicas are pending termination...", False
    if available < updated:
        return f"{waiting}{available} of {updated} updated replicas are available...", False
    return f'deployment "{name}" successfully rolled out', True


def rollout_counts(deployment: Obj) -> tuple[int, int]:
    """(new replicas available, replicas wanted): the bar of `rollout status` on a terminal; the
    words stay kubectl's line."""
    status = deployment.get("status") or {}
    wanted = _int((deployment.get("spec") or {}).get("replicas", 1))
    done = min(_int(status.get("updatedReplicas")), _int(status.get("availableReplicas")), wanted)
    return done, wanted


# --- history -----------------------------------------------------------------------------------

def history(deployment: Obj, replicasets: list[Obj]) -> list[tuple[int, str]]:
    """(revision, change cause) of each template the Deployment has had and still keeps a
    ReplicaSet of, oldest first; one without a revision (made by hand) is none of its history."""
    rows = {}
    for rs in controlled_by(deployment, replicasets):
        revision = revision_of(rs)
        if revision:
            rows[revision] = str((_meta(rs).get("annotations") or {}).get(CHANGE_CAUSE) or NONE)
    return sorted(rows.items())


def at_revision(deployment: Obj, replicasets: list[Obj], revision: int) -> Obj:
    """The Deployment's ReplicaSet of `revision`; a revision it never had, or whose ReplicaSet was
    cleaned up (revisionHistoryLimit), is an error naming those it has."""
    for rs in controlled_by(deployment, replicasets):
        if revision_of(rs) == revision:
            return rs
    kept = ", ".join(str(number) for number, _ in history(deployment, replicasets)) or "none"
    raise BerthError(f'deployment "{_meta(deployment).get("name")}" has no revision {revision} '
                     f"(revisions: {kept})")


# --- undo --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Undo:
    """What `rollout undo` does: `patch` is None when the template is already that revision's."""

    revision: int
    patch: Obj | None


def undo(deployment: Obj, replicasets: list[Obj], to_revision: int = 0) -> Undo:
    """kubectl's rollback: the template of `to_revision` (by default the one before the newest)
    becomes the Deployment's, and the controller then brings that ReplicaSet back as the newest
    revision. Its change cause comes back with it. The patch is pinned to the resourceVersion read,
    so a Deployment changed meanwhile is a conflict rather than rolled back from a state nobody saw."""
    name = _meta(deployment).get("name")
    spec = deployment.get("spec") or {}
    if spec.get("paused"):
        raise BerthError(f"you cannot roll back a paused deployment; resume it first with "
                         f"'berth rollout resume deployment/{name}' and try again")
    if to_revision < 0:
        raise BerthError("a revision is a positive number")
    if not to_revision:
        revisions = [number for number, _ in history(deployment, replicasets)]
        if len(revisions) < 2:
            raise BerthError(f'deployment "{name}" has no previous revision to roll back to')
        to_revision = revisions[-2]
    target = at_revision(deployment, replicasets, to_revision)
    template = without_hash((target.get("spec") or {}).get("template") or {})
    current = spec.get("template") or {}
    if same_template(template, current):
        return Undo(to_revision, None)
    cause = (_meta(target).get("annotations") or {}).get(CHANGE_CAUSE)
    patch = {"metadata": {"resourceVersion": _meta(deployment).get("resourceVersion"),
                          "annotations": {CHANGE_CAUSE: cause}},
             "spec": {"template": merge_patch_to(current, template)}}
    return Undo(to_revision, patch)


def merge_patch_to(current: Any, target: Any) -> Any:
    """The JSON merge patch (RFC 7386) that turns `current` into `target`: keys `target` lacks
    become null (removed), lists are sent whole. A patch of `target` alone would merge maps and
    keep, say, an annotation the newer template added."""
    if not isinstance(current, dict) or not isinstance(target, dict):
        return target
    patch: Obj = {key: None for key in current if key not in target}
    for key, value in target.items():
        if key not in current:
            patch[key] = value
        elif current[key] != value:
            patch[key] = merge_patch_to(current[key], value)
    return patch


# --- set image ---------------------------------------------------------------------------------

def image_words(words: tuple[str, ...] | list[str]) -> dict[str, str]:
    """`CONTAINER=IMAGE` (or `*=IMAGE` for every container), as kubectl set image takes them."""
    wanted: dict[str, str] = {}
    for word in words:
        container, sep, image = word.partition("=")
        if not sep or not container or not image:
            raise BerthError(f"{word!r}: use CONTAINER=IMAGE (or *=IMAGE for every container)")
        wanted[container] = image
    if not wanted:
        raise BerthError("give at least one CONTAINER=IMAGE")
    return wanted


def with_images(pod_spec: Obj, wanted: dict[str, str]) -> Obj:
    """The `containers` and `initContainers` lists (only those that change) with the images asked
    for, by container name or `*` for all; a name the pod spec does not have is an error, and
    nothing is changed."""
    lists = {key: [dict(c) for c in pod_spec.get(key) or [] if isinstance(c, dict)]
             for key in ("initContainers", "containers")}
    names = {c.get("name") for containers in lists.values() for c in containers}
    unknown = [name for name in wanted if name != "*" and name not in names]
    if unknown:
        raise BerthError(", ".join(f'unable to find container named "{name}"' for name in unknown))
    changed: Obj = {}
    for key, containers in lists.items():
        touched = False
        for container in containers:
            image = wanted.get(container.get("name"), wanted.get("*"))
            if image is not None and container.get("image") != image:
                container["image"] = image
                touched = True
        if touched:
            changed[key] = containers
    return changed
