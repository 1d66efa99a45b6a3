"""Berth's containers on a host, as the master's runtime makes them and the agent watches them.

Their names and labels are a contract with operators (`podman ps --filter
label=berth.managed=true` shows what Berth runs, and for which pod), and between the
master, which makes and lists the containers, and the agent, which probes them by name
and follows the runtime's events about them:
- `berth.managed=true` on everything Berth made;
- `berth.pod-uid`, `berth.namespace`, `berth.pod`: the pod it belongs to;
- `berth.container`: the pod's container it runs (absent on the sandbox);
- `berth.image`: the image the pod's spec named when the container was made (the runtime
  recreates a container whose pod now names another image);
- `berth.sandbox=true`: the pod's sandbox (podman's pod infra, or docker's sandbox container).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from berth.objects import Obj

RUNTIMES = ("podman", "docker")

MANAGED = "berth.managed"
POD_UID = "berth.pod-uid"
NAMESPACE = "berth.namespace"
POD_NAME = "berth.pod"
CONTAINER = "berth.container"
SANDBOX = "berth.sandbox"
IMAGE = "berth.image"
DOCKER_SANDBOX_IMAGE = "localhost/berth-pause:latest"  # holds a docker pod's network; the lab builds it


MAX_SANDBOX_NAME = 63  # a container's name plus `-<container>` stays within 127 characters


def sandbox_name(pod: Obj) -> str:
    """`berth-<namespace>-<pod>-<uid prefix>`; with a long namespace and name, both are cut so
    the whole stays within MAX_SANDBOX_NAME (the uid prefix keeps it unique on the host)."""
    meta = pod["metadata"]
    uid, namespace, name = meta["uid"][:8], meta["namespace"], meta["name"]
    whole = f"berth-{namespace}-{name}-{uid}"
    if len(whole) <= MAX_SANDBOX_NAME:
        return whole
    room = MAX_SANDBOX_NAME - len("berth---") - len(uid)  # for namespace and name together
    keep_ns = min(len(namespace), room // 2)
    return f"berth-{namespace[:keep_ns]}-{name[:room - keep_ns]}-{uid}"


def container_name(pod: Obj, container: str) -> str:
    return f"{sandbox_name(pod)}-{container}"


def pod_containers(pod: Obj) -> list[Obj]:
    """A pod's init containers, then its app containers: every container a host may have of it,
    in the order they start (their names are unique across both lists)."""
    spec = pod["spec"]
    return [*(spec.get("initContainers") or []), *spec["containers"]]


def pod_labels(pod: Obj) -> dict[str, str]:
    meta = pod["metadata"]
    return {MANAGED: "true", POD_UID: meta["uid"], NAMESPACE: meta["namespace"], POD_NAME: meta["name"]}


@dataclass(frozen=True)
class RuntimeEvent:
    """A change to one of Berth's containers, as the host's runtime announces it (the agent's report)."""

    container: str
    action: str  # podman's and docker's own word: died / die, remove / destroy, start, oom ...
    exit_code: int | None = None


def _container_event(line: str) -> Obj | None:
    """One line of an event stream, if it is about a container (podman and docker both say Type)."""
    try:
        item = json.loads(line)
    except ValueError:
        return None
    return item if isinstance(item, dict) and item.get("Type") == "container" else None


def _exit_code(value: object) -> int | None:
    return int(value) if isinstance(value, int | str) and str(value).lstrip("-").isdigit() else None


class PodmanEvents:
    """Podman's events about Berth's containers, one JSON object a line: the lines of its events
    file (agent/runtime_events.py follows it) and of `podman events --format json` alike."""

    binary = "podman"
    # the actions that change what a listing of the host would show (not exec, attach, health ...)
    actions = frozenset({"create", "start", "died", "oom", "remove", "pause", "unpause"})

    def command(self) -> list[str]:
        return [self.binary, "events", "--filter", f"label={MANAGED}=true", "--format", "json"]

    def parse(self, line: str) -> RuntimeEvent | None:
        item = _container_event(line)
        if item is None or item.get("Status") not in self.actions:
            return None
        if (item.get("Attributes") or {}).get(MANAGED) != "true":
            return None  # the events file tells of every container of the host
        code = _exit_code(item.get("ContainerExitCode"))
        return RuntimeEvent(str(item.get("Name", "")), item["Status"], code)


class DockerEvents(PodmanEvents):
    """docker's: Type, Action, and the container's name and exit code among Actor.Attributes."""

    binary = "docker"
    actions = frozenset({"create", "start", "die", "oom", "destroy", "pause", "unpause"})

    def command(self) -> list[str]:
        return [self.binary, "events", "--filter", f"label={MANAGED}=true", "--format", "{{json .}}"]

    def parse(self, line: str) -> RuntimeEvent | None:
        item = _container_event(line)
        if item is None or item.get("Action") not in self.actions:
            return None
        attributes = (item.get("Actor") or {}).get("Attributes") or {}
        if attributes.get(MANAGED) != "true":
            return None
        code = _exit_code(attributes.get("exitCode"))
        return RuntimeEvent(str(attributes.get("name", "")), item["Action"], code)


EVENT_STREAMS: dict[str, PodmanEvents] = {"podman": PodmanEvents(), "docker": DockerEvents()}
