"""`berth-agent`: registers this host's Node with the masters and keeps it reported."""

from __future__ import annotations

import logging
import signal
import threading

import click

from agent.config import AgentConfig
from agent.registration import Masters, MasterUnavailable, RegistrationRefused, register
from master.config import load_settings_file

log = logging.getLogger("berth.agent")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--name", help="The Node's name (DNS-1123 label).")
@click.option("--address", help="The address masters reach this host's sshd at.")
@click.option("--master", "masters", multiple=True, help="A master's API URL (repeat).")
@click.option("--token-file", help="File holding this agent's API token.")
@click.option("--once", is_flag=True, help="Register, then exit.")
def main(config_file: str | None, once: bool, **flags: object) -> None:
    try:
        file_values = load_settings_file(config_file) if config_file else {}
        config = AgentConfig.build(file_values, flags)
        token = config.token()
    except (OSError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    logging.basicConfig(level=config.log_level.upper(),
                        format=f"%(asctime)s agent {config.name} %(levelname)s: %(message)s")
    masters = Masters(config.masters, token)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    backoff = 0.5
    while not stopping.is_set():
        try:
            register(masters, config)
            log.info("registered node %s", config.name)
            break
        except RegistrationRefused as err:
            raise click.ClickException(str(err)) from err
        except MasterUnavailable as err:
            log.warning("%s; retrying in %.1fs", err, backoff)
            stopping.wait(backoff)
            backoff = min(backoff * 2, 10.0)
    if once:
        return
    # Heartbeats (soft state on the leader) arrive with node liveness; until then the agent
    # stays registered and exits cleanly on SIGTERM.
    stopping.wait()


if __name__ == "__main__":
    main()
