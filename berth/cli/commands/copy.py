"""`berth cp`: files between this machine and a container, as tar over an exec session.

As kubectl does, the container's own `tar` packs or unpacks, and every path reaches it as one
argument of its argv (no shell on the host or in the container reads it). What comes back from
a container is not trusted: only entries under the asked-for name are taken, and Python's
"data" filter refuses absolute paths, `..`, links leading out and device files, so a
container cannot write outside the destination (kubectl's CVE-2018-1002100 and its kin).
"""

from __future__ import annotations

import io
import posixpath
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import click

from berth.cli.commands.common import State, namespace_option, pass_state
from berth.errors import BerthError
from berth.pod_session import OutputReader, PodSession

SEND_CHUNK = 64 * 1024


@dataclass(frozen=True)
class PodPath:
    namespace: str | None
    pod: str
    path: str


def parse_pod_path(text: str) -> PodPath | None:
    """`POD:PATH` or `NAMESPACE/POD:PATH` (kubectl's forms); None for a local path. A local
    path with a colon in it is written with a slash before it (`./a:b`), as with kubectl."""
    head, sep, path = text.partition(":")
    if not sep or not head or head.startswith((".", "/")) or head.count("/") > 1:
        return None
    if not path:
        raise click.BadParameter(f"{text!r}: give the path in the container after the colon")
    namespace, _, pod = head.rpartition("/")
    return PodPath(namespace or None, pod, path)


def _split(path: str) -> tuple[str, str]:
    """(directory for tar's -C, name inside it), both safe to pass as arguments: never
    starting with "-", which tar would read as an option."""
    trimmed = path.rstrip("/") or "/"
    parent, base = posixpath.split(trimmed)
    if not base:
        raise click.BadParameter(f"{path!r}: name a file or directory, not /")
    parent = parent or "."
    return (parent if parent.startswith(("/", ".")) else f"./{parent}"), base


def _run(session: PodSession, sink: IO[bytes], feed: IO[bytes] | None) -> None:
    """Sends `feed` as the command's input while its output goes to `sink` (read from the start:
    the master closes a session nobody reads); raises with its stderr if it fails."""
    errors = bytearray()
    reader = OutputReader(session, sink.write, errors.extend)
    reader.start()
    if feed is not None:
        try:
            while chunk := feed.read(SEND_CHUNK):
                session.send(chunk)
            session.send(b"", eof=True)
        except BerthError:
            pass  # tar ended early: its stderr, read below, says why
    reader.join()
    if reader.error is not None:
        raise reader.error
    if session.exit_code != 0:
        message = errors.decode(errors="replace").strip() or f"tar exited with {session.exit_code}"
        raise BerthError(f"in the container: {message}")


def download(state: State, source: PodPath, destination: Path, container: str | None) -> None:
    parent, base = _split(source.path)
    session = state.client.exec_session(source.pod, ["tar", "cf", "-", "-C", parent, f"./{base}"],
                                        state.ns(source.namespace), container=container)
    target = destination / base if destination.is_dir() else destination
    with tempfile.TemporaryFile() as archive:
        _run(session, archive, None)
        archive.seek(0)
        with tarfile.open(fileobj=archive, mode="r:") as tar:
            members = [_renamed(m, base, target.name) for m in tar.getmembers()]
            if not members:
                raise BerthError(f"{source.path}: nothing came from the container")
            tar.extractall(path=target.parent, members=members, filter="data")


def _renamed(member: tarfile.TarInfo, base: str, name: str) -> tarfile.TarInfo:
    path = posixpath.normpath(member.name)
    if path != base and not path.startswith(base + "/"):
        raise BerthError(f"the container's archive holds {member.name!r}, outside {base!r}: refused")
    return member.replace(name=name + path[len(base):], deep=False)


def upload(state: State, source: Path, destination: PodPath, container: str | None) -> None:
    if not source.exists():
        raise click.BadParameter(f"{source}: no such file or directory")
    if destination.path.endswith("/"):  # into that directory, under the local name
        parent, name = _split(destination.path + source.name)
    else:
        parent, name = _split(destination.path)
    session = state.client.exec_session(destination.pod, ["tar", "xf", "-", "-C", parent],
                                        state.ns(destination.namespace), container=container, stdin=True)
    with tempfile.TemporaryFile() as archive:
        with tarfile.open(fileobj=archive, mode="w:", format=tarfile.PAX_FORMAT) as tar:
            tar.add(source, arcname=name)
        archive.seek(0)
        _run(session, io.BytesIO(), archive)


@click.command(name="cp")
@click.argument("source")
@click.argument("destination")
@click.option("-c", "--container", help="The container (default: the pod's first).")
@namespace_option
@pass_state
def cp(state: State, source: str, destination: str, container: str | None, namespace: str | None) -> None:
    """Copy files and directories to and from containers (the container needs tar):
    berth cp POD:PATH LOCAL, berth cp LOCAL POD:PATH."""
    remote_source, remote_destination = parse_pod_path(source), parse_pod_path(destination)
    if (remote_source is None) == (remote_destination is None):
        raise click.UsageError("one of SOURCE and DESTINATION is POD:PATH, the other a local path")
    if remote_source is not None:
        if namespace and remote_source.namespace is None:
            remote_source = PodPath(namespace, remote_source.pod, remote_source.path)
        download(state, remote_source, Path(destination), container)
    else:
        assert remote_destination is not None
        if namespace and remote_destination.namespace is None:
            remote_destination = PodPath(namespace, remote_destination.pod, remote_destination.path)
        upload(state, Path(source), remote_destination, container)
