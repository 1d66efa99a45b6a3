"""The host's part of a pod's volumes: run on the host as `python3 -I -c SOURCE VERB ...`.

Standard library only (every host has python3: Ansible needs it), so nothing is installed for it,
as port_relay.py. The master sends it the whole plan for a pod as JSON on standard input (paths
the master built from validated names, never a shell word), and it does what needs the host's
own kernel: directories, tmpfs mounts, hostPath checks, subPath binds, and their removal. File
contents (ConfigMaps, Secrets) do not pass through here: the master writes them over SFTP.

- `setup`: idempotent. The pod's directory (0750, root's), each volume's directory or tmpfs, each
  hostPath checked (or made) by its type, each subPath bound onto a staging path.
- `teardown UID...`: every mount under each pod's directory taken off, deepest first, then the
  directory removed. Nothing is removed while a mount is left under it (a PVC, a hostPath
  bound there must never be emptied by a pod's cleanup).

A subPath is opened one component at a time with O_NOFOLLOW, so a symlink a container left in a
shared volume (`sub -> /`) cannot point the bind at the host's files, and the bind is made from
the opened descriptor (`/proc/self/fd/N`, not re-resolved: `--no-canonicalize`), as kubelet does.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

PODS_DIR = "/var/lib/berth/pods"  # berth/containers.py's, repeated: this file runs alone on a host


def mounted() -> list[str]:
    """The mount points this mount namespace has (mountinfo escapes spaces; Berth's paths have none)."""
    with open("/proc/self/mountinfo", encoding="utf-8") as info:
        return [line.split()[4] for line in info if len(line.split()) > 4]


def fail(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.exit(1)


def run(argv: list[str], **extra: object) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, **extra)  # type: ignore[call-overload]
    if done.returncode != 0:
        fail(f"{argv[0]} {argv[1] if len(argv) > 1 else ''}: {(done.stderr or done.stdout).strip()[:300]}")


def make_dir(path: str, mode: int) -> None:
    os.makedirs(path, mode=0o750, exist_ok=True)
    if not os.path.isdir(path) or os.path.islink(path):
        fail(f"{path} is not a directory")
    os.chmod(path, mode)


def tmpfs(path: str, size: int | None, mode: int, points: list[str]) -> None:
    make_dir(path, mode)
    if path in points:
        return
    options = f"mode={mode:o}" + (f",size={size}" if size else "")
    run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", path])


def host_path(path: str, kind: str) -> None:
    """Kubernetes' hostPath types: Directory and File must exist as such; the OrCreate ones are made
    (0755 and 0644, root's); "" checks nothing."""
    if kind == "DirectoryOrCreate":
        os.makedirs(path, mode=0o755, exist_ok=True)
    elif kind == "FileOrCreate" and not os.path.lexists(path):
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW, 0o644))
    if kind in ("Directory", "DirectoryOrCreate") and not os.path.isdir(path):
        fail(f"hostPath {path} is not a directory on this host")
    if kind in ("File", "FileOrCreate") and not os.path.isfile(path):
        fail(f"hostPath {path} is not a file on this host")


def open_beneath(root: str, relative: str, create: bool) -> int:
    """An O_PATH descriptor of `root`/`relative`, every component opened without following a
    symlink; missing directories made when `create`."""
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    try:
        for part in relative.split("/"):
            try:
                child = os.open(part, os.O_PATH | os.O_NOFOLLOW, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(part, 0o777, dir_fd=fd)
                child = os.open(part, os.O_PATH | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = child
            if stat.S_ISLNK(os.fstat(fd).st_mode):
                fail(f"subPath {relative!r}: {part!r} is a symlink; a subPath may not pass through one")
        return fd
    except BaseException:
        os.close(fd)
        raise


def subpath(root: str, relative: str, staging: str, points: list[str]) -> None:
    if staging in points:
        return
    fd = open_beneath(root, relative, create=True)
    try:
        is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
        os.makedirs(os.path.dirname(staging), mode=0o750, exist_ok=True)
        if is_dir:
            os.makedirs(staging, mode=0o750, exist_ok=True)
        elif not os.path.lexists(staging):
            os.close(os.open(staging, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW, 0o600))
        run(["mount", "--no-canonicalize", "--bind", f"/proc/self/fd/{fd}", staging], pass_fds=(fd,))
    finally:
        os.close(fd)


def setup(plan: dict) -> None:
    pod_dir = plan["pod_dir"]
    if os.path.dirname(pod_dir) != PODS_DIR:
        fail(f"{pod_dir} is not a pod's directory")
    os.makedirs(PODS_DIR, mode=0o750, exist_ok=True)
    make_dir(pod_dir, 0o750)
    points = mounted()
    for entry in plan.get("host_paths", []):
        host_path(entry["path"], entry["type"])
    for entry in plan.get("dirs", []):
        make_dir(entry["path"], entry["mode"])
    for entry in plan.get("tmpfs", []):
        tmpfs(entry["path"], entry.get("size"), entry["mode"], points)
    for entry in plan.get("subpaths", []):
        subpath(entry["root"], entry["path"], entry["staging"], points)


def teardown(uid: str) -> None:
    pod_dir = os.path.join(PODS_DIR, uid)
    if not uid or "/" in uid or uid in (".", "..") or not os.path.isdir(pod_dir):
        return
    inside = sorted((p for p in mounted() if p.startswith(pod_dir + "/")), key=len, reverse=True)
    for point in inside:
        done = subprocess.run(["umount", point], capture_output=True, check=False)
        if done.returncode != 0:
            subprocess.run(["umount", "--lazy", point], capture_output=True, check=False)
    left = [p for p in mounted() if p.startswith(pod_dir + "/")]
    if left:
        fail(f"{len(left)} mount(s) left under {pod_dir} (first {left[0]}): not removed")
    remove_tree(pod_dir)


def remove_tree(path: str) -> None:
    """rm -rf without following a symlink (a container's `x -> /` is removed, not walked into)."""
    for entry in os.scandir(path):
        if entry.is_dir(follow_symlinks=False):
            remove_tree(entry.path)
        else:
            os.unlink(entry.path)
    os.rmdir(path)


def main(argv: list[str]) -> None:
    if argv[:1] == ["setup"]:
        setup(json.load(sys.stdin))
    elif argv[:1] == ["teardown"]:
        for uid in argv[1:]:
            teardown(uid)
    else:
        fail("usage: setup < plan.json | teardown UID...")


if __name__ == "__main__":
    main(sys.argv[1:])
