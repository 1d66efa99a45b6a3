"""A tiny process supervisor for lab hosts, which have no systemd.

`python -m berth.lab.supervisor start NAME --dir D -- CMD...` keeps CMD running (restarted a
second after it exits) in the background and returns at once; it prints `running`
when NAME already runs, so Ansible can report no change. `stop NAME --dir D` ends
both. On real hosts the Ansible roles use systemd units instead.

`start` also records the service, as an enabled unit (`NAME.enabled`: its command and the
environment it was started with, the SSH session's own variables left out), and `boot --dir D`
starts every recorded one again, as systemd starts the enabled units when a machine boots:
`berth lab start` boots a crashed host's services so, in a second or two, where running the
playbook again took about 20 s of the machine's CPU.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click


def _alive(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def _supervise(name: str, directory: Path, command: list[str]) -> None:
    """Runs in the detached child: restart the command until told to stop."""
    stopping = False
    child: subprocess.Popen | None = None

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.terminate()

    signal.signal(signal.SIGTERM, stop)
    with open(directory / f"{name}.log", "ab") as log:
        while not stopping:
            child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
            (directory / f"{name}.pid").write_text(str(child.pid))
            child.wait()
            if not stopping:
                time.sleep(1.0)
    (directory / f"{name}.pid").unlink(missing_ok=True)
    (directory / f"{name}.supervisor.pid").unlink(missing_ok=True)


@click.group()
def main() -> None:
    """Keep lab services running."""


@main.command()
@click.argument("name")
@click.option("--dir", "directory", required=True, type=click.Path(path_type=Path))
@click.argument("command", nargs=-1, required=True)
def start(name: str, directory: Path, command: tuple[str, ...]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    environment = {key: value for key, value in os.environ.items() if not key.startswith("SSH_")}
    unit = {"command": list(command), "environment": environment}
    (directory / f"{name}.enabled").write_text(json.dumps(unit))
    click.echo(_start(name, directory, list(command)))


@main.command()
@click.option("--dir", "directory", required=True, type=click.Path(path_type=Path))
def boot(directory: Path) -> None:
    """Start every service `start` recorded, on a host just booted: the pid files of its last boot
    are dropped first (they name numbers of a pid namespace gone, perhaps another process's now:
    once the agent's supervisor had the master's old number, and the master was found running)."""
    for pid_file in directory.glob("*.pid"):
        pid_file.unlink(missing_ok=True)
    for unit_file in sorted(directory.glob("*.enabled")):
        unit = json.loads(unit_file.read_text())
        os.environ.clear()
        os.environ.update(unit["environment"])  # what the forked supervisor and its service inherit
        name = unit_file.name.removesuffix(".enabled")
        click.echo(f"{name} {_start(name, directory, unit['command'])}")


def _start(name: str, directory: Path, command: list[str]) -> str:
    """Runs the command under a detached supervisor, unless one runs it already; says which."""
    pid_file = directory / f"{name}.supervisor.pid"
    if _alive(pid_file):
        return "running"
    if os.fork() > 0:
        return "started"
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    pid_file.write_text(str(os.getpid()))
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    try:
        _supervise(name, directory, command)
    finally:
        os._exit(0)


@main.command()
@click.argument("name")
@click.option("--dir", "directory", required=True, type=click.Path(path_type=Path))
def stop(name: str, directory: Path) -> None:
    pid = _alive(directory / f"{name}.supervisor.pid")
    if pid is None:
        click.echo("stopped")
        return
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):  # bounded: 10 s
        if _alive(directory / f"{name}.supervisor.pid") is None:
            break
        time.sleep(0.1)
    click.echo("stopped")


@main.command()
@click.argument("name")
@click.option("--dir", "directory", required=True, type=click.Path(path_type=Path))
def restart(name: str, directory: Path) -> None:
    """End the service's current process (SIGTERM, SIGKILL after 5 s: a hung or stopped process
    ends too); its supervisor starts it again a second later."""
    pid = _alive(directory / f"{name}.pid")
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            os.kill(pid, signal.SIGCONT)  # a stopped process acts on SIGTERM only once continued
        for _ in range(50):  # bounded: 5 s
            if _alive(directory / f"{name}.pid") != pid:
                break
            time.sleep(0.1)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    click.echo("restarted")


if __name__ == "__main__":
    sys.exit(main())
