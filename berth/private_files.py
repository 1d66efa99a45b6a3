"""Files only their owner reads (snapshots, data dir files), written whole or not at all.

berth/certs.py keeps a copy of its own: Ansible runs that file alone, with no `berth` to import.
"""

from __future__ import annotations

import os
from pathlib import Path


def private_dir(path: str | Path) -> None:
    """`path` made if missing, 0700, and its files 0600: also when an earlier, laxer version made
    them (a master's data dir holds every Secret in its journal and snapshots)."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)
    for entry in os.scandir(path):
        if entry.is_file(follow_symlinks=False):
            os.chmod(entry.path, 0o600)


def write_private(path: Path, data: bytes) -> None:
    """0600 from its first byte (no window where another user could read it), synced, then renamed
    in place: a reader finds the old file or the new one, never a part."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
