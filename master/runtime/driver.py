"""The podman and docker command lines, behind one interface: pure argument lists, no I/O.

The runtime runs these over SSH (ssh.py quotes them with shlex.join), so every user
string (env values, commands, args) reaches the container as one literal argument. No
user string is ever read as an option either: a value a user chose is joined to its
option (`--entrypoint=...`, `--env=NAME=value`), and `--` ends the options before every
positional argument, image and container names included (an image named `-w/tmp` once
turned the args after it into podman options: `--privileged -v /:/host`).
A pod is a sandbox that owns the network namespace and the published ports (a
podman pod; for docker, a sandbox container the others join with
`--network container:`), plus one container per pod container. Everything carries
Berth's labels (berth/containers.py: a contract with operators), so listing a host says
what Berth runs there and for which pod.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime

from berth.containers import (
    CONTAINER,
    DOCKER_SANDBOX_IMAGE,
    IMAGE,
    MANAGED,
    POD_UID,
    SANDBOX,
    container_name,
    pod_containers,
    pod_labels,
    sandbox_name,
)
from berth.objects import Obj
from berth.podnet import NETWORK, search_domains
from berth.quantity import cpu_millis, memory_bytes
from master.runtime.env import ContainerEnv
from master.runtime.security import security_args
from master.runtime.volumes import container_mounts

NO_ENV = ContainerEnv()

@dataclass(frozen=True)
class ContainerState:
    """One container as the host's runtime reports it."""

    id: str
    name: str
    labels: dict[str, str]
    state: str  # created / running / exited / ...
    exit_code: int
    started_at: str
    finished_at: str

    @property
    def pod_uid(self) -> str:
        return self.labels.get(POD_UID, "")

    @property
    def container(self) -> str:
        return self.labels.get(CONTAINER, "")

    @property
    def image(self) -> str:
        """The image the pod named when this container was made ("" if made before Berth said)."""
        return self.labels.get(IMAGE, "")

    @property
    def sandbox(self) -> bool:
        return self.labels.get(SANDBOX) == "true"


def pod_hostname(pod: Obj) -> str:
    """The pod's name, as in Kubernetes (a DNS label: within the kernel's 64 characters). Left to
    the engine, the hostname was the sandbox's name, too long for a long pod name."""
    return str(pod["metadata"]["name"])


def _label_args(labels: dict[str, str]) -> list[str]:
    return [arg for key, value in sorted(labels.items()) for arg in ("--label", f"{key}={value}")]


def _port_args(pod: Obj) -> list[str]:
    """The app containers' host ports (an init container's ports are published nowhere, as in
    Kubernetes, whose kubelet maps only the app containers')."""
    return [arg for c in pod["spec"]["containers"] for p in c.get("ports") or [] if p.get("hostPort")
            for arg in ("-p", f"{p['hostPort']}:{p['containerPort']}/{p.get('protocol', 'TCP').lower()}")]


def _resource_args(container: Obj) -> list[str]:
    """Limits cap the container; a request without a limit caps nothing (as in Kubernetes)."""
    limits = (container.get("resources") or {}).get("limits") or {}
    args = []
    if limits.get("memory") is not None:
        args += ["--memory", str(memory_bytes(limits["memory"]))]
    if limits.get("cpu") is not None:
        args += ["--cpus", f"{cpu_millis(limits['cpu']) / 1000:g}"]
    return args


def _env_args(env: ContainerEnv) -> list[str]:
    """Plain values on the command line; Secret values only in the env file on stdin (env.py)."""
    return ([f"--env={name}={value}" for name, value in env.plain.items()]
            + (["--env-file=/dev/stdin"] if env.secret else []))


def _command_tail(container: Obj) -> tuple[list[str], list[str]]:
    """(--entrypoint args, after-image args): Kubernetes' command replaces the image's
    entrypoint, its args the image's CMD. One --entrypoint string is what both CLIs take."""
    command, args = list(container.get("command") or []), list(container.get("args") or [])
    if command:
        return [f"--entrypoint={command[0]}"], [*command[1:], *args]
    return [], args


class Driver(ABC):
    """What the runtime asks of a host's container engine. The verbs podman and docker spell
    alike (start, restart, logs, exec, inspect, run) are written once here; how a pod's
    sandbox is made, listed and removed is each engine's own."""

    binary: str

    def __init__(self, nameserver: str | None = None) -> None:
        """`nameserver`: on a node with a pod CIDR, its bridge address, where its agent answers
        the cluster's DNS; sandboxes then join the pod network its agent made (berth/podnet.py)
        and resolve with Kubernetes' search list. None: the engine's default network and DNS."""
        self.nameserver = nameserver

    def _network_args(self, pod: Obj) -> list[str]:
        if not self.nameserver:
            return []
        searches = [f"--dns-search={domain}" for domain in search_domains(pod["metadata"]["namespace"])]
        return [f"--network={NETWORK}", f"--dns={self.nameserver}", *searches, "--dns-option=ndots:5"]

    @abstractmethod
    def create_sandbox(self, pod: Obj) -> list[str]: ...

    @abstractmethod
    def start_sandbox(self, pod: Obj) -> list[str]: ...

    @abstractmethod
    def remove_sandbox(self, pod: Obj | str) -> list[str]:
        """The pod's sandbox and containers; given a name only (an orphan), its sandbox."""

    @abstractmethod
    def stop_sandbox(self, pod: Obj, grace_seconds: int) -> list[str]:
        """Every container of the pod: SIGTERM, then SIGKILL after the grace (a graceful delete)."""

    @abstractmethod
    def sandbox_ip(self, pod: Obj) -> list[str]:
        """Prints the id of the container holding the pod's network (its address: container_ip)."""

    @abstractmethod
    def remove(self, name: str) -> list[str]: ...

    @abstractmethod
    def list_managed(self) -> list[str]:
        """Prints every container with Berth's labels, as parse_list reads it."""

    @abstractmethod
    def parse_list(self, output: str) -> list[ContainerState]: ...

    @abstractmethod
    def _join(self, pod: Obj) -> list[str]:
        """The options that put a container into its pod's sandbox."""

    def run_container(self, pod: Obj, container: Obj, env: ContainerEnv = NO_ENV) -> list[str]:
        """Create and start one container of the pod (`env`: its variables, resolved; run it with
        `env.env_file()` as its standard input). It never pulls: the image was made sure of first
        (image_present, pull), so a run's failure is never a pull's."""
        entrypoint, tail = _command_tail(container)
        labels = {**pod_labels(pod), CONTAINER: container["name"], IMAGE: container["image"]}
        workdir = [f"--workdir={container['workingDir']}"] if container.get("workingDir") else []
        mounts = [mount.option() for mount in container_mounts(pod, container)]  # volumes.py: set up first
        return [self.binary, "run", "--detach", "--name", container_name(pod, container["name"]),
                *self._join(pod), *_label_args(labels), *_resource_args(container), *_env_args(env),
                *security_args(pod, container), *mounts, *workdir, "--pull=never", *entrypoint, "--",
                container["image"], *tail]

    def image_present(self, image: str) -> list[str]:
        """Exits 0 when the host has the image (both engines spell it alike)."""
        return [self.binary, "image", "inspect", "--format", "{{.Id}}", "--", image]

    def pull(self, image: str) -> list[str]:
        """Fetch the image from its registry; the engine's error, on failure, is its last line."""
        return [self.binary, "pull", "--quiet", "--", image]

    def start(self, name: str) -> list[str]:
        return [self.binary, "start", "--", name]

    def restart(self, name: str, grace_seconds: int) -> list[str]:
        """Stop (SIGTERM, then SIGKILL after the grace) and start again: a failed liveness probe."""
        return [self.binary, "restart", "--time", str(grace_seconds), "--", name]

    def container_ip(self, name: str) -> list[str]:
        """Prints the container's addresses: the default network's, then each named network's
        (on a named network the first is empty); the first printed is the pod's."""
        return [self.binary, "inspect", "--format",
                "{{.NetworkSettings.IPAddress}}{{range .NetworkSettings.Networks}} {{.IPAddress}}{{end}}",
                "--", name]

    def logs(self, name: str, follow: bool = False, tail: int | None = None, timestamps: bool = False,
             since: str | None = None, until: str | None = None) -> list[str]:
        """`since`, `until`: as both engines read them, unix seconds or a duration ago ("60s")."""
        return [self.binary, "logs", *(["--follow"] if follow else []),
                *(["--tail", str(tail)] if tail is not None else []),
                *(["--timestamps"] if timestamps else []),
                *([f"--since={since}"] if since is not None else []),
                *([f"--until={until}"] if until is not None else []), "--", name]

    def exec(self, name: str, command: list[str], stdin: bool = False, tty: bool = False) -> list[str]:
        """`command` is the user's: after `--` and the container's name, it is the command, whole.
        `tty`: the engine gives the command a terminal (the SSH session must have one to pass)."""
        return [self.binary, "exec", *(["--interactive"] if stdin else []), *(["--tty"] if tty else []),
                "--", name, *command]

    def pid(self, name: str) -> list[str]:
        """Prints the host pid of the container's first process (0 when it is not running)."""
        return [self.binary, "inspect", "--format", "{{.State.Pid}}", "--", name]


class PodmanDriver(Driver):
    """podman: pods are `podman pod`s."""

    binary = "podman"

    def create_sandbox(self, pod: Obj) -> list[str]:
        labels = {**pod_labels(pod), SANDBOX: "true"}
        return [self.binary, "pod", "create", "--name", sandbox_name(pod), f"--hostname={pod_hostname(pod)}",
                *self._network_args(pod), *_label_args(labels), *_port_args(pod)]

    def start_sandbox(self, pod: Obj) -> list[str]:
        return [self.binary, "pod", "start", "--", sandbox_name(pod)]

    def remove_sandbox(self, pod: Obj | str) -> list[str]:
        name = pod if isinstance(pod, str) else sandbox_name(pod)
        return [self.binary, "pod", "rm", "--force", "--ignore", "--time", "0", "--", name]

    def stop_sandbox(self, pod: Obj, grace_seconds: int) -> list[str]:
        return [self.binary, "pod", "stop", "--ignore", "--time", str(grace_seconds), "--", sandbox_name(pod)]

    def _join(self, pod: Obj) -> list[str]:
        return ["--pod", sandbox_name(pod)]

    def remove(self, name: str) -> list[str]:
        return [self.binary, "rm", "--force", "--ignore", "--time", "0", "--", name]

    def list_managed(self) -> list[str]:
        return [self.binary, "ps", "--all", "--filter", f"label={MANAGED}=true", "--format", "json"]

    def sandbox_ip(self, pod: Obj) -> list[str]:
        return [self.binary, "pod", "inspect", "--format", "{{.InfraContainerID}}", "--", sandbox_name(pod)]

    def parse_list(self, output: str) -> list[ContainerState]:
        items = json.loads(output or "[]") or []
        return [ContainerState(
            id=item.get("Id", ""), name=(item.get("Names") or [""])[0], labels=item.get("Labels") or {},
            state=str(item.get("State", "")).lower(), exit_code=int(item.get("ExitCode") or 0),
            started_at=str(item.get("StartedAt", "")), finished_at=str(item.get("ExitedAt", "")))
            for item in items]


class DockerDriver(Driver):
    """docker: the sandbox is a container holding the network namespace and the ports."""

    binary = "docker"
    sandbox_image = DOCKER_SANDBOX_IMAGE

    def create_sandbox(self, pod: Obj) -> list[str]:
        """--init: the sandbox's sleep is not PID 1, so a stop ends it at once, not after the grace."""
        labels = {**pod_labels(pod), SANDBOX: "true"}
        return [self.binary, "create", "--init", "--name", sandbox_name(pod),
                f"--hostname={pod_hostname(pod)}", *self._network_args(pod), *_label_args(labels),
                *_port_args(pod), "--", self.sandbox_image]

    def start_sandbox(self, pod: Obj) -> list[str]:
        return [self.binary, "start", "--", sandbox_name(pod)]

    def remove_sandbox(self, pod: Obj | str) -> list[str]:
        """A pod's containers with its sandbox (docker removes a sandbox its containers still join);
        given only a name (an orphan), its containers were removed first (plan.py)."""
        if isinstance(pod, str):
            return [self.binary, "rm", "--force", "--", pod]
        names = [container_name(pod, c["name"]) for c in pod_containers(pod)]
        return [self.binary, "rm", "--force", "--", *names, sandbox_name(pod)]

    def stop_sandbox(self, pod: Obj, grace_seconds: int) -> list[str]:
        names = [container_name(pod, c["name"]) for c in pod_containers(pod)]
        return [self.binary, "stop", "--time", str(grace_seconds), "--", *names, sandbox_name(pod)]

    def _join(self, pod: Obj) -> list[str]:
        return ["--network", f"container:{sandbox_name(pod)}"]

    def sandbox_ip(self, pod: Obj) -> list[str]:
        return [self.binary, "inspect", "--format", "{{.Id}}", "--", sandbox_name(pod)]

    def remove(self, name: str) -> list[str]:
        return [self.binary, "rm", "--force", "--", name]

    def list_managed(self) -> list[str]:
        """`docker ps` tells no start or exit times: inspect what it lists. A fixed script, no
        user string in it."""
        return ["sh", "-c", f"{self.binary} ps --all --quiet --no-trunc --filter label={MANAGED}=true "
                f"| xargs --no-run-if-empty {self.binary} inspect"]

    def parse_list(self, output: str) -> list[ContainerState]:
        """`docker inspect`'s array; times become Unix seconds, as podman gives them."""
        items = json.loads(output or "[]") or []
        return [ContainerState(
            id=item.get("Id", ""), name=str(item.get("Name", "")).lstrip("/"),
            labels=(item.get("Config") or {}).get("Labels") or {},
            state=str((item.get("State") or {}).get("Status", "")).lower(),
            exit_code=int((item.get("State") or {}).get("ExitCode") or 0),
            started_at=_unix_seconds((item.get("State") or {}).get("StartedAt")),
            finished_at=_unix_seconds((item.get("State") or {}).get("FinishedAt")))
            for item in items]


def _unix_seconds(timestamp: object) -> str:
    """docker's RFC 3339 time (nanoseconds, Z) as Unix seconds; "0" for its zero time or none."""
    text = str(timestamp or "")
    if not text or text.startswith("0001-"):
        return "0"
    whole, _, rest = text.rstrip("Z").partition(".")
    fraction = "".join(ch for ch in rest if ch.isdigit())[:6]
    try:
        moment = datetime.fromisoformat(whole).replace(tzinfo=UTC)
    except ValueError:
        return "0"
    return f"{moment.timestamp() + (int(fraction) / 10 ** len(fraction) if fraction else 0):.6f}"


DRIVERS: dict[str, Driver] = {"podman": PodmanDriver(), "docker": DockerDriver()}
