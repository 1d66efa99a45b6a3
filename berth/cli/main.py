"""`berth`: the command line of a Berth cluster, shaped like kubectl so habits carry over.

Commands (berth/cli/commands/, one group a file) only parse arguments, call the Client
and print; the rendering lives in berth.cli.output / berth.cli.describe and the HTTP
work in berth.client. Every BerthError
(server refusals, unreachable masters, bad manifests) ends as one line on
stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import click

from berth.cli.commands import (
    auth,
    autoscale,
    cluster,
    copy,
    describe,
    forward,
    get,
    manage,
    nodes,
    pods,
    rollout,
    update,
    wait,
    watch,
)
from berth.cli.commands.common import BerthGroup, State, client_version
from berth.lab.cli import lab_group


@click.group(cls=BerthGroup, name="berth", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_file", default=None, metavar="PATH",
              help="Config file (default $BERTH_CONFIG or $XDG_CONFIG_HOME/berth/config.yaml).")
@click.option("--server", "-s", "servers", multiple=True, metavar="URL",
              help="Master URL; repeat or comma-separate for failover (env BERTH_SERVER).")
@click.option("--token", default=None, help="Bearer token (env BERTH_TOKEN).")
@click.option("-n", "--namespace", "namespace", default=None, metavar="NS",
              help="Default namespace for every command (env BERTH_NAMESPACE).")
@click.option("--certificate-authority", default=None, metavar="PATH",
              help="The cluster's CA file, which masters' certificates are verified with "
                   "(env BERTH_CERTIFICATE_AUTHORITY; config: certificate-authority).")
@click.version_option(client_version(), "--version", prog_name="berth")
@click.pass_context
def main(
    ctx: click.Context,
    config_file: str | None,
    servers: tuple[str, ...],
    token: str | None,
    namespace: str | None,
    certificate_authority: str | None,
) -> None:
    """Operate a Berth cluster."""
    ctx.obj = State(config_file, servers, token, namespace, certificate_authority)


berth = main  # the group under its own name, for `from berth.cli.main import berth`


for command in (cluster.version, get.get, get.top, get.api_resources, describe.describe, describe.explain,
                pods.run, pods.logs, pods.exec_, copy.cp, forward.port_forward, manage.apply, manage.create,
                manage.delete, update.label, update.annotate, update.taint, update.patch, update.edit,
                watch.watch, wait.wait, rollout.rollout, rollout.scale, autoscale.autoscale, rollout.set_,
                nodes.cordon,
                nodes.uncordon, nodes.drain, nodes.rebalance, cluster.cluster, auth.auth, lab_group):
    main.add_command(command)

if __name__ == "__main__":
    main(prog_name="berth")
