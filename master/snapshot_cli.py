"""`berth-master snapshot save|status|restore`: backup and restore, as `etcdctl snapshot` does it.

- `save FILE --server URL --token-file F [--ca-file F]`: online; asks a running master for its state
  at one revision (GET /api/v1/snapshot, cluster-admin's), verifies the checksum and keeps the file
  atomically (a temporary file beside it, 0600, renamed over FILE only when whole and verified).
- `status FILE`: the file verified, and its hash, revision, object count and size.
- `restore FILE --data-dir DIR [--config master.yaml]`: offline; seeds an empty data dir
  (store/restore.py) for a master of a new cluster. Every member is restored from the same file,
  each into its own data dir. With `--config`, its data dir is the default and its
  `encryption_key_file` must open every sealed value of the file (Secrets stay sealed as stored).

A file that does not verify is refused with its reason and exit status 1, and nothing is written.
The token is read from a file, never a flag: a command line is visible to every local user.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import requests
import yaml

from berth.client import normalize_server
from berth.private_files import write_private
from berth.settings import load_settings_file
from master.store.encryption import load_keyring
from master.store.membership import check_address
from master.store.restore import check_empty, missing_keys, seed
from master.store.snapshot_file import Snapshot, SnapshotError, decode

PATH = "/api/v1/snapshot"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def snapshot() -> None:
    """Backup and restore of the masters' state (as etcdctl snapshot save/status/restore)."""


def _read(path: str) -> Snapshot:
    try:
        return decode(Path(path).read_bytes())
    except OSError as err:
        raise click.ClickException(f"{path}: {err.strerror or err}") from err
    except SnapshotError as err:
        raise click.ClickException(f"{path}: {err}") from err


def _error_of(answer: requests.Response) -> str:
    """The API's error message (its JSON's `error`, master/api/errors.py), else the answer's text."""
    try:
        body = answer.json()
    except ValueError:
        body = None
    message = body.get("error") if isinstance(body, dict) else None
    return str(message) if message else answer.text[:500]


def _summary(snap: Snapshot) -> dict[str, object]:
    return {"hash": snap.sha256, "revision": snap.revision, "totalKeys": len(snap.objects),
            "totalSize": snap.size, **snap.meta}


@snapshot.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--server", required=True,
              help="A master's URL (https://HOST:PORT, or HOST:PORT); a follower serves too.")
@click.option("--token-file", required=True, type=click.Path(exists=True, dir_okay=False),
              help="File holding a cluster-admin's token (never given on the command line).")
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False),
              help="The CA the master's certificate is verified with (default: the system's CAs).")
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to wait for the answer.")
def save(file: str, server: str, token_file: str, ca_file: str | None, timeout: float) -> None:
    """Save the state of a running cluster at one revision to FILE."""
    token = Path(token_file).read_text().strip()
    try:
        answer = requests.get(normalize_server(server) + PATH, headers={"Authorization": f"Bearer {token}"},
                              verify=ca_file or True, timeout=timeout)
    except requests.RequestException as err:
        raise click.ClickException(f"{server}: {err}") from err
    if answer.status_code != 200:
        raise click.ClickException(f"{server} answered {answer.status_code}: {_error_of(answer)}")
    try:
        snap = decode(answer.content)
    except SnapshotError as err:
        raise click.ClickException(f"{server}'s answer does not verify, nothing saved: {err}") from err
    write_private(Path(file), answer.content)
    click.echo(f"Snapshot saved at {file} (revision {snap.revision}, {len(snap.objects)} objects, "
               f"sha256 {snap.sha256})")


@snapshot.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
def status(file: str, output: str) -> None:
    """Verify FILE and show its hash, revision, object count and size."""
    summary = _summary(_read(file))
    if output == "json":
        click.echo(json.dumps(summary, sort_keys=True))
        return
    for key, value in summary.items():
        click.echo(f"{key}: {json.dumps(value) if isinstance(value, dict | list) else value}")


@snapshot.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--data-dir", help="The new master's data dir: absent or empty (default: --config's).")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="The new master's settings: its data dir, its cluster's members (raft_address and "
                   "peers), and the keys its Secrets must open with.")
@click.option("--initial-cluster", "initial_cluster", default="",
              help="The new cluster's Raft addresses, HOST:PORT,HOST:PORT,... (default: --config's).")
def restore(file: str, data_dir: str | None, config_file: str | None, initial_cluster: str) -> None:
    """Seed an empty data dir from FILE, for a master of a new cluster (restore every member)."""
    keys: tuple[str, ...] | None = None
    members = [m.strip() for m in initial_cluster.split(",") if m.strip()]
    if config_file:
        keys, configured_dir, configured_members = _from_config(config_file)
        data_dir = data_dir or configured_dir
        members = members or configured_members
    if not data_dir:
        raise click.UsageError("give --data-dir (or --config naming data_dir)")
    _check_members(members)
    try:
        check_empty(Path(data_dir))  # before reading a large file
    except SnapshotError as err:
        raise click.ClickException(str(err)) from err
    snap = _read(file)
    if keys is not None:
        _check_keys(snap, keys, file, str(config_file))
    try:
        dump = seed(snap, Path(data_dir), members)
    except (OSError, SnapshotError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"Restored revision {snap.revision} ({len(snap.objects)} objects) into {dump}")


def _from_config(config_file: str) -> tuple[tuple[str, ...], str | None, list[str]]:
    """What a restore takes from the new master's settings, and only that (the rest, SSH and TLS
    files, may not be on this machine yet): the key ids of its encryption_key_file, its data dir
    and its cluster's members (raft_address and peers)."""
    try:
        settings = load_settings_file(config_file)
        key_file = settings.get("encryption_key_file")
        keys = load_keyring(str(key_file)).ids if key_file else ()
    except (OSError, ValueError, yaml.YAMLError) as err:
        raise click.ClickException(f"{config_file}: {err}") from err
    data_dir = str(settings["data_dir"]) if settings.get("data_dir") else None
    members = [str(a) for a in [settings.get("raft_address"), *(settings.get("peers") or [])] if a]
    return keys, data_dir, members


def _check_members(members: list[str]) -> None:
    """Each strictly HOST:PORT, and at least one: the restored masters take their members from the dump."""
    for member in members:
        try:
            check_address(member)
        except ValueError as err:
            raise click.UsageError(f"--initial-cluster: {err}") from err
    if not members:
        raise click.UsageError("give --initial-cluster (or --config naming raft_address and peers): with "
                               "dynamic membership the restored masters take their members from the dump")


def _check_keys(snap: Snapshot, keys: tuple[str, ...], file: str, config_file: str) -> None:
    """Refuse a file whose sealed Secret values need a key the new master's key file lacks."""
    missing = missing_keys(snap, keys)
    if missing:
        raise click.ClickException(f"{file} holds Secret values sealed with key ids "
                                   f"{', '.join(missing)}, which {config_file}'s encryption_key_file "
                                   "lacks: restore with the keys the cluster had")
