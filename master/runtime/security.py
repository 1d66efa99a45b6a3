"""A container's securityContext as the engine's options: pure.

The container's own context wins field by field over the pod's (as in Kubernetes). What no
context says is the engine's default set of capabilities less what Kubernetes' "baseline" Pod
Security Standard bans from it: NET_RAW (docker grants it; raw sockets let a container forge
packets on the pod network). Dropping every capability by default, as the "restricted" profile
asks a pod to, was tried: images that run as root rely on its DAC_OVERRIDE (the lab's own demo
could not `mkdir /www`), so `drop: [ALL]` is a container's choice, or its namespace's
(`berth.io/enforce: restricted`, api/pod_security.py). A context's own `drop` list replaces the
default; `add` is added.

`runAsNonRoot` is checked here against the user the container will run as. Kubernetes' kubelet
also reads the image's configured user; Berth knows only the user a context names, so a container
with `runAsNonRoot: true` must name a non-zero `runAsUser` (pod or container), or it does not start
(CreateContainerConfigError, kubelet's message).
"""

from __future__ import annotations

from berth.objects import Obj
from master.runtime.env import EnvError

DEFAULT_DROP = ("NET_RAW",)
FIELDS = ("runAsUser", "runAsGroup", "runAsNonRoot", "readOnlyRootFilesystem", "allowPrivilegeEscalation",
          "privileged", "capabilities")


def effective(pod: Obj, container: Obj) -> Obj:
    """The context that applies: the pod's user fields, each replaced by the container's if set."""
    pod_context = pod["spec"].get("securityContext") or {}
    own = container.get("securityContext") or {}
    merged = {k: v for k, v in pod_context.items() if v is not None}
    merged.update({k: v for k, v in own.items() if v is not None})
    return {k: merged[k] for k in FIELDS if k in merged}


def security_args(pod: Obj, container: Obj) -> list[str]:
    """`--user`, `--read-only`, `--security-opt=no-new-privileges`, capabilities, `--privileged`.
    Raises EnvError when `runAsNonRoot` cannot hold."""
    context = effective(pod, container)
    user, group = context.get("runAsUser"), context.get("runAsGroup")
    if context.get("runAsNonRoot") and not user:
        raise EnvError(f"container {container['name']!r} has runAsNonRoot and image will run as root "
                       "(name a non-zero runAsUser: Berth does not read the image's user)")
    args: list[str] = []
    if user is not None:
        args.append(f"--user={user}" + (f":{group}" if group is not None else ""))
    elif group is not None:
        args.append(f"--group-add={group}")
    if context.get("readOnlyRootFilesystem"):
        args.append("--read-only")
    if context.get("privileged"):
        return [*args, "--privileged"]  # every capability and device: the rest does not apply
    if context.get("allowPrivilegeEscalation") is False:
        args.append("--security-opt=no-new-privileges")
    capabilities = context.get("capabilities") or {}
    drop = list(capabilities.get("drop") or DEFAULT_DROP)
    add = list(capabilities.get("add") or [])
    args += [f"--cap-drop={name}" for name in drop] + [f"--cap-add={name}" for name in add]
    return args
