"""`berth-agent`: the host agent arrives with the hosts issue; this entry point says so."""

from __future__ import annotations

import click


@click.command()
def main() -> None:
    raise click.ClickException("berth-agent is not implemented yet (see the hosts issue)")


if __name__ == "__main__":
    main()
