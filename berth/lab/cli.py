"""`berth lab ...`: the multi-host lab on this machine (as root)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click
import yaml

from berth.cli.progress import Progress
from berth.lab import deploy as lab_deploy
from berth.lab import hosts as lab_hosts
from berth.lab.hosts import HostSize, Lab, LabError

name_option = click.option("--name", default="berth", show_default=True,
                           help="Lab name: several labs can live side by side.")


def _lab(name: str) -> Lab:
    if os.geteuid() != 0:
        raise click.ClickException("the lab needs root (namespaces, bridges, nftables)")
    try:
        return Lab.load(name)
    except ValueError as err:
        raise click.ClickException(str(err)) from err


def _host(lab: Lab, host: str) -> str:
    if host not in lab.host_names():
        raise click.ClickException(f"lab {lab.name} has no host {host!r} ({', '.join(lab.host_names())})")
    return host


def _sizes(specs: tuple[str, ...], hosts: int) -> dict[str, HostSize]:
    sizes: dict[str, HostSize] = {}
    for spec in specs:
        host, sep, size = spec.rpartition("=")
        targets = [host] if sep else [f"h{i}" for i in range(1, hosts + 1)]
        try:
            parsed = HostSize.parse(size)
        except ValueError as err:
            raise click.BadParameter(str(err), param_hint="--size") from err
        sizes.update(dict.fromkeys(targets, parsed))
    return sizes


def _runtimes(specs: tuple[str, ...], hosts: int) -> dict[str, str]:
    runtimes: dict[str, str] = {}
    names = [f"h{i}" for i in range(1, hosts + 1)]
    for spec in specs:
        host, sep, runtime = spec.partition("=")
        if not sep or host not in names or runtime not in lab_hosts.RUNTIMES:
            raise click.BadParameter(f"{spec!r}: expected HOST=RUNTIME, HOST one of h1-h{hosts}, RUNTIME "
                                     f"one of {', '.join(lab_hosts.RUNTIMES)}", param_hint="--runtime")
        runtimes[host] = runtime
    return runtimes


def _vars(specs: tuple[str, ...]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        if not sep or not name.startswith("berth_") or not name.isidentifier():
            raise click.BadParameter(f"{spec!r}: expected berth_NAME=VALUE", param_hint="--var")
        try:
            values[name] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise click.BadParameter(f"{spec!r}: {err}", param_hint="--var") from err
    return values


@click.group("lab")
def lab_group() -> None:
    """Hosts on this machine: namespaces with their own address, sshd and podman."""


@lab_group.command()
@name_option
@click.option("--hosts", "count", default=3, show_default=True, type=click.IntRange(1, 20))
@click.option("--size", "sizes", multiple=True,
              help="Made-up size psutil reports: 2cpu:4Gi for every host, or h2=1cpu:2Gi.")
@click.option("--deploy/--no-deploy", default=True, show_default=True,
              help="Run ansible/site.yml on the hosts (masters on h1-h3, agents everywhere).")
@click.option("--runtime", "runtimes", multiple=True, metavar="HOST=RUNTIME",
              help="A host's container runtime: h3=docker gives h3 its own dockerd (podman otherwise).")
@click.option("--var", "ansible_vars", multiple=True, metavar="NAME=VALUE",
              help="An Ansible variable of ansible/group_vars/all.yml for this lab, e.g. "
                   "berth_runtime_resync_seconds=60 (the value is read as YAML).")
@click.option("--config-out", type=click.Path(path_type=Path),
              default=Path.home() / ".config" / "berth" / "config.yaml", show_default=True,
              help="Where to write the CLI config for this lab.")
def up(name: str, count: int, sizes: tuple[str, ...], runtimes: tuple[str, ...],
       ansible_vars: tuple[str, ...], deploy: bool, config_out: Path) -> None:
    """Make the hosts, deploy the cluster with Ansible, wait until every node is Ready."""
    saved = _lab(name)  # an existing lab keeps its subnet
    known = (saved.root / "lab.json").exists()
    lab = Lab(name=name, hosts=count, sizes=_sizes(sizes, count), subnet=saved.subnet if known else "",
              ansible_vars=_vars(ansible_vars), runtimes=_runtimes(runtimes, count))
    try:
        with Progress() as shown:
            shown.status(up_line(0, count), 0, count)
            lab_hosts.up(lab, on_host=lambda made: shown.status(up_line(made, count), made, count))
            for host, state in lab_hosts.host_status(lab).items():
                shown.say(f"{host}  {state['address']}  {'running' if state['running'] else 'DOWN'}")
            if deploy:
                shown.status(up_line(count, count, "running"))
                recap = lab_deploy.run_playbook(lab)
                shown.say(recap[recap.rfind("PLAY RECAP"):].rstrip())
                lab_deploy.write_cli_config(lab, config_out)
                shown.status(up_line(count, count, "done", 0), 0, count)

                def seen(view: dict[str, bool]) -> None:
                    ready = sum(1 for host in lab.host_names() if view.get(host))
                    shown.status(up_line(count, count, "done", ready), ready, count)

                lab_deploy.wait_nodes_ready(lab, on_view=seen)
                shown.say(f"every node is Ready; CLI config: {config_out}")
    except LabError as err:
        raise click.ClickException(str(err)) from err


def up_line(made: int, hosts: int, playbook: str = "", ready: int | None = None) -> str:
    """`berth lab up`'s state in one line, each step after the one before it: `hosts 3/3,
    playbook done, nodes Ready 2/3` (a plain line each time it changes)."""
    parts = [f"hosts {made}/{hosts}"]
    if playbook:
        parts.append(f"playbook {playbook}")
    if ready is not None:
        parts.append(f"nodes Ready {ready}/{hosts}")
    return ", ".join(parts)


@lab_group.command()
@name_option
def down(name: str) -> None:
    """Remove every namespace, link, process, cgroup and file of the lab."""
    lab_hosts.down(_lab(name))
    click.echo(f"lab {name} removed")


@lab_group.command()
@name_option
@click.option("-o", "output", type=click.Choice(["json"]), default=None)
def status(name: str, output: str | None) -> None:
    """Each host's address and whether it runs."""
    lab = _lab(name)
    states = lab_hosts.host_status(lab)
    if output == "json":
        click.echo(json.dumps({"name": lab.name, "subnet": lab.subnet, "hosts": states}, indent=2))
        return
    for host, state in states.items():
        click.echo(f"{host}  {state['address']}  {'running' if state['running'] else 'DOWN'}")


@lab_group.command()
@name_option
@click.argument("host")
def crash(name: str, host: str) -> None:
    """Kill every process of HOST at once and pull its cable."""
    lab = _lab(name)
    lab_hosts.crash_host(lab, _host(lab, host))


@lab_group.command()
@name_option
@click.argument("host")
def start(name: str, host: str) -> None:
    """Boot HOST again after a crash, and the services it ran (as systemd starts enabled units)."""
    lab = _lab(name)
    try:
        lab_hosts.start_host(lab, _host(lab, host))
        lab_deploy.boot_services(lab, host)
    except LabError as err:
        raise click.ClickException(str(err)) from err


@lab_group.command()
@name_option
@click.argument("host_a")
@click.argument("host_b")
def partition(name: str, host_a: str, host_b: str) -> None:
    """Cut traffic between two hosts."""
    lab = _lab(name)
    lab_hosts.partition(lab, _host(lab, host_a), _host(lab, host_b))


@lab_group.command()
@name_option
def heal(name: str) -> None:
    """Restore all traffic cut by partition."""
    lab_hosts.heal(_lab(name))
