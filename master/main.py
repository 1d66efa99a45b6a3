"""`berth-master`: one master process = Raft store + API server, until SIGTERM.

`berth-master snapshot save|status|restore ...` is backup and restore instead (snapshot_cli.py):
dispatched on the first argument, so every existing invocation (`--config FILE`, flags) is the
server's, unchanged.
"""

from __future__ import annotations

import gc
import logging
import os
import resource
import signal
import ssl
import sys
import threading

import click

from berth.settings import load_settings_file
from master.api.app import admission, door_refusals
from master.api.auth import TokenBook
from master.api.server import drain, make_server
from master.config import MasterConfig, split_address
from master.runtime.simulated import SimulatedHosts
from master.runtime.ssh import SshPool
from master.server import Server
from master.snapshot_cli import snapshot
from master.store.encryption import Keyring

log = logging.getLogger("berth.master")
DRAIN_SECONDS = 2.0  # on SIGTERM, requests under way are answered for this long (streams are cut then)
HAND_OVER_SECONDS = 1.0  # on SIGTERM, a leader waits this long at most for a follower to take over


def main() -> None:
    """The console script: `snapshot ...` is backup and restore, anything else runs the master."""
    if sys.argv[1:2] == ["snapshot"]:
        snapshot.main(args=sys.argv[2:], prog_name="berth-master snapshot")
    else:
        serve.main(prog_name="berth-master")


@click.command(context_settings={"help_option_names": ["-h", "--help"]},
               epilog="Backup and restore: berth-master snapshot save|status|restore (see "
                      "`berth-master snapshot --help`).")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="YAML file with the settings below (flags override it).")
@click.option("--name", help="This master's name.")
@click.option("--raft-address", help="HOST:PORT this master's Raft listens on.")
@click.option("--peer", "peers", multiple=True, help="HOST:PORT of another master (repeat).")
@click.option("--api-address", help="HOST:PORT the HTTP API listens on.")
@click.option("--data-dir", help="Directory for the Raft journal and snapshots.")
@click.option("--tokens-file", help="YAML file of API tokens (sha256 digests) and roles.")
@click.option("--raft-password-file", help="File holding the password that encrypts Raft (required).")
@click.option("--insecure-raft-without-password", is_flag=True, default=None,
              help="Run Raft unencrypted: anyone reaching its port runs code. Loopback-only masters.")
@click.option("--encryption-key-file",
              help="Keys sealing Secrets' values at rest: a base64 32-byte key a line, the first seals.")
@click.option("--tls-cert-file", help="This master's certificate (PEM), its addresses as SANs (required).")
@click.option("--tls-private-key-file", help="The certificate's private key (PEM, mode 0600; required).")
@click.option("--tls-ca-file", help="The CA that signed every master's certificate, to verify peers with.")
@click.option("--ssh-key-file", help="The runtime's SSH private key for every host.")
@click.option("--ssh-known-hosts-file", help="Every host's pinned SSH host key (others are refused).")
@click.option("--log-level", default=None, help="DEBUG, INFO, WARNING...")
def serve(config_file: str | None, **flags: object) -> None:
    """Run one master: its Raft store and its API, until SIGTERM."""
    try:
        file_values = load_settings_file(config_file) if config_file else {}
        config = MasterConfig.build(file_values, flags)
        tokens = TokenBook.load(config.tokens_file)
        password = config.raft_password()
        keyring = config.encryption_keys()
        tls = config.tls_context()
        # read now, not at the first pod; the API (logs, exec) has a pool of its own, so a user's
        # streams never hold the SSH sessions the runtime needs on a host; and rather than queue
        # for a busy host's sessions, a user's request is told so (429)
        pools = ((SshPool(config.ssh_key_file, config.ssh_known_hosts_file),
                  SshPool(config.ssh_key_file, config.ssh_known_hosts_file, session_wait=2.0))
                 if config.ssh_key_file and config.ssh_known_hosts_file else (None, None))
        if config.simulated_hosts:  # benchmarks: the runtime's hosts are in memory
            pools = (SimulatedHosts(), None)  # type: ignore[assignment] - SshPool's run and sftp
    except (OSError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    logging.basicConfig(
        level=config.log_level.upper(),
        format=f"%(asctime)s {config.name} %(levelname)s %(name)s: %(message)s",
    )
    if config.simulated_hosts:
        log.warning("simulated_hosts: the runtime drives in-memory hosts, for benchmarks; nothing runs")
    if password is None:
        log.warning("INSECURE: Raft runs without a password (insecure_raft_without_password): anyone "
                    "who can reach %s runs code as this master", config.raft_address)
    _tell_encryption(config, keyring)
    run(config, tokens, password, keyring, tls, *pools)


def _tell_encryption(config: MasterConfig, keyring: Keyring | None) -> None:
    """Once, at start: whether Secrets reach the journal in clear, and which key ids are in use
    (what errors name when a stored value needs a key this master lacks)."""
    if keyring is None:
        log.warning("Secrets are stored in clear in the Raft journal and snapshots: give "
                    "encryption_key_file to seal their values")
        return
    log.info("Secrets are sealed with key id %s; key ids that open: %s", keyring.primary_id,
             ", ".join(keyring.ids))
    if os.stat(config.encryption_key_file or "").st_mode & 0o077:
        log.warning("%s is readable by others than its owner: it should be 0600", config.encryption_key_file)


def run(config: MasterConfig, tokens: TokenBook, password: str | None, keyring: Keyring | None,
        tls: ssl.SSLContext, ssh: SshPool | None, user_ssh: SshPool | None) -> None:
    # The store holds many long-lived objects: full collections would rescan all of them
    # every few thousand allocations (measured: a third of apply time at 20k+ objects).
    gc.set_threshold(50_000, 50, 100)
    os.umask(0o077)  # what it writes (journal, snapshots) holds secrets: this master's alone
    master = Server(config, tokens, password, ssh, user_ssh, keyring)
    master.start()
    host, port = split_address(config.api_address, "api_address")
    _allow_open_files(config.api_connection_limit + 256)  # + Raft, journal, logs
    server = make_server(master.app, host=host, port=port, threads=config.api_threads + config.stream_limit,
                         connection_limit=config.api_connection_limit,
                         per_address=config.api_connections_per_address,
                         max_body_bytes=config.max_body_bytes, admit=admission(master.ctx),
                         on_refused=door_refusals(master.app, master.ctx), tls=tls)

    def stop(signum: int, _frame: object) -> None:
        # Raised in the main thread, inside server.run(): waitress's loop would otherwise
        # keep serving open keep-alive connections after its listener is closed.
        raise _Shutdown(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("master %s: raft %s, api https://%s:%d, peers %s", config.name, config.raft_address,
             host, port, ", ".join(config.peers) or "none")
    try:
        server.run()
    except _Shutdown as signalled:
        log.info("signal %d: shutting down", signalled.args[0])
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        # a leader hands over while the requests under way are answered: writes held meanwhile go
        # to the new leader, and none waits for an election after this master is gone
        handing = threading.Thread(target=master.store.hand_over, args=(HAND_OVER_SECONDS,),
                                   name="hand-over", daemon=True)
        handing.start()
        drain(server, DRAIN_SECONDS)
        handing.join(HAND_OVER_SECONDS + 1)
        server.close()
        master.close()
        log.info("stopped")
    sys.exit(0)


def _allow_open_files(wanted: int) -> None:
    """Raise the soft open-files limit (often 1024) toward `wanted`, up to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < wanted:
        log.warning("open files limited to %d (hard limit): fewer than %d connections fit", target, wanted)


class _Shutdown(Exception):
    pass

if __name__ == "__main__":
    main()
