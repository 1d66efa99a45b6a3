"""The host's part of a pod's volumes: run on the host as `python3 -I -c SOURCE VERB ...`.

Standard library only (every host has python3: Ansible needs it), so nothing is installed for it,
as port_relay.py. The master sends it the whole plan for a pod as JSON on standard input (paths
the master built from validated names, never a shell word), and it does what needs the host's
own kernel: directories, tmpfs mounts, hostPath checks, subPath binds, and their removal. File
contents (ConfigMaps, Secrets) do not pass through here: the master writes them over SFTP.

- `setup`: idempotent. The pod's directory (0750, root's), each volume's directory or tmpfs, each
  hostPath checked (or made) by its type, each claim's volume mounted (a local path bound, a
  shared one by sshfs with the storage key and the storage hosts' pinned keys, or NFS), each
  subPath bound onto a staging path.
- `teardown UID...`: every mount under each pod's directory taken off, deepest first, then the
  directory removed. Nothing is removed while a mount is left under it (a PVC, a hostPath bound
  there must never be emptied by a pod's cleanup).
- `sweep UID...`: `teardown` of every pod directory but those named (the pods bound to the
  host): what a pod deleted while its host was away left behind.

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

PODS_DIR = "/var/lib/berth/pods"
STORAGE_DIR = "/var/lib/berth/storage"  # ansible/roles/storage: the sshfs key, the storage hosts' keys
STORAGE_USER = "berth-storage"  # the storage hosts' unprivileged user the key logs in as (SFTP only)


def mounted() -> list[str]:
    """The mount points this mount namespace has (mountinfo escapes spaces; Berth's paths have none)."""
    with open("/proc/self/mountinfo", encoding="utf-8") as info:
        return [line.split()[4] for line in info if len(line.split()) > 4]


def fail(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.exit(1)


def run(argv: list[str], **extra: object) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, **extra)  # type: ignore[call-overload]
    except subprocess.TimeoutExpired:
        fail(f"{argv[0]}: no answer in {extra.get('timeout')} s")
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


def bind(source: str, kind: str, path: str, points: list[str]) -> None:
    host_path(source, kind)
    make_dir(path, 0o750)
    if path not in points:
        run(["mount", "--bind", source, path])


def sshfs(entry: dict, points: list[str]) -> None:
    """The storage host's directory over SFTP, as its unprivileged storage user with the storage key
    (never root: a host that holds the key reaches no more than the volumes), the host key pinned
    (never learned). `reconnect` and keepalives: a storage host that comes back is used again;
    one that does not fails reads and writes rather than hanging them. fsync reaches the server."""
    path = entry["path"]
    make_dir(path, 0o750)
    if path in points:
        return
    options = [f"IdentityFile={STORAGE_DIR}/ssh-key", f"UserKnownHostsFile={STORAGE_DIR}/known_hosts",
               "StrictHostKeyChecking=yes", "BatchMode=yes", "ConnectTimeout=5", f"port={int(entry['port'])}",
               "reconnect", "ServerAliveInterval=5", "ServerAliveCountMax=3", "allow_other"]
    if entry.get("read_only"):
        options.append("ro")
    run(["sshfs", f"{STORAGE_USER}@{entry['server']}:{entry['remote']}", path, "-o", ",".join(options)],
        timeout=30)


def nfs(entry: dict, points: list[str]) -> None:
    path = entry["path"]
    make_dir(path, 0o750)
    if path not in points:
        run(["mount", "-t", "nfs", "-o", "ro" if entry.get("read_only") else "rw",
             f"{entry['server']}:{entry['remote']}", path], timeout=60)


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
    for entry in plan.get("binds", []):
        bind(entry["source"], entry["type"], entry["path"], points)
    for entry in plan.get("sshfs", []):
        sshfs(entry, points)
    for entry in plan.get("nfs", []):
        nfs(entry, points)
    for entry in plan.get("subpaths", []):
        subpath(entry["root"], entry["path"], entry["staging"], points)


def teardown(uid: str) -> None:
    pod_dir = os.path.join(PODS_DIR, uid)
    if not uid or "/" in uid or uid in (".", "..") or not os.path.isdir(pod_dir):
        return
    inside = sorted((p for p in mounted() if p.startswith(pod_dir + "/")), key=len, reverse=True)
    for point in inside:
        try:
            done = subprocess.run(["umount", point], capture_output=True, check=False, timeout=15).returncode
        except subprocess.TimeoutExpired:  # a shared volume whose server is gone
            done = 1
        if done != 0:
            subprocess.run(["umount", "--lazy", point], capture_output=True, check=False, timeout=15)
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
    elif argv[:1] == ["sweep"]:
        keep = set(argv[1:])
        for uid in sorted(os.listdir(PODS_DIR)) if os.path.isdir(PODS_DIR) else []:
            if uid not in keep:
                teardown(uid)
    else:
        fail("usage: setup < plan.json | teardown UID... | sweep KEPT-UID...")


if __name__ == "__main__":
    main(sys.argv[1:])
