"""ConfigMap and Secret volumes' files, written to the host over SFTP and swapped whole.

Over SFTP, a file's content is data on the SSH channel: never on a command line (where `ps` and
the engine's record of a command would show a secret), never in a log. A change is seen by the
containers all at once, as kubelet's atomic writer does it: the files go into a new directory
named by their digest (`..<digest>`), a symlink `..data` is pointed at it by a rename (atomic),
and each top-level name in the volume is a symlink through `..data`. A reader sees the old set
or the new one, never a mix; the old directory is removed after the swap. A volume already
pointing at the digest is left alone, so setting it up again costs one readlink.
"""

from __future__ import annotations

import re
import stat

import paramiko

from master.runtime.volumes import FileSet, VolumeError

DATA = "..data"
VERSION = re.compile(r"^\.\.[0-9a-f]{16}$")  # a directory this writer made


def write_files(sftp: paramiko.SFTPClient, files: FileSet) -> bool:
    """Make the volume hold exactly `files`; False when it already did."""
    where, version = files.directory, f"..{files.digest}"
    try:
        current = _readlink(sftp, f"{where}/{DATA}")
        if current == version:
            return False
        made = f"{where}/{version}"
        _remove(sftp, made)  # half-made by an interrupted attempt
        sftp.mkdir(made, 0o755)
        for relative, (content, mode) in sorted(files.files.items()):
            parts = relative.split("/")
            for depth in range(1, len(parts)):
                _mkdir(sftp, f"{made}/{'/'.join(parts[:depth])}")
            with sftp.open(f"{made}/{relative}", "wb") as handle:
                handle.chmod(mode)  # before the content: a secret is never readable more widely
                handle.write(content)
        swap = f"{where}/{DATA}_tmp"
        _remove(sftp, swap)
        sftp.symlink(version, swap)
        sftp.posix_rename(swap, f"{where}/{DATA}")
        top = {relative.split("/")[0] for relative in files.files}
        present = set(sftp.listdir(where))
        for name in present - top:
            if not name.startswith(".."):
                sftp.remove(f"{where}/{name}")  # a key the object no longer has
        for name in sorted(top - present):
            sftp.symlink(f"{DATA}/{name}", f"{where}/{name}")
        if current is not None and current != version and VERSION.match(current):
            _remove(sftp, f"{where}/{current}")
    except OSError as err:  # the SFTP server's refusal: not the connection (paramiko raises others)
        raise VolumeError(f'writing the files of volume "{files.volume}": {err.strerror or err}') from None
    return True


def _readlink(sftp: paramiko.SFTPClient, path: str) -> str | None:
    try:
        return sftp.readlink(path)
    except FileNotFoundError:
        return None


def _mkdir(sftp: paramiko.SFTPClient, path: str) -> None:
    try:
        sftp.mkdir(path, 0o755)
    except OSError:
        if not stat.S_ISDIR(sftp.lstat(path).st_mode or 0):
            raise


def _remove(sftp: paramiko.SFTPClient, path: str) -> None:
    """rm -rf over SFTP, never following a symlink; nothing there is fine."""
    try:
        mode = sftp.lstat(path).st_mode or 0
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(mode):
        sftp.remove(path)
        return
    for entry in sftp.listdir_attr(path):
        _remove(sftp, f"{path}/{entry.filename}")
    sftp.rmdir(path)
