"""`berth run`, `logs` and `exec`: working with one pod and its containers."""

from __future__ import annotations

import sys
from typing import Any

import click

from berth.cli.commands.common import (
    DRY_SUFFIX,
    CommandAfterDashDash,
    State,
    command_after_dash_dash,
    dry_run_option,
    namespace_option,
    parse_duration,
    pass_state,
    selector_option,
)
from berth.cli.output import ref, to_json, to_yaml
from berth.cli.terminal import attach, terminal_size


def _port(text: str) -> dict[str, int]:
    """HOSTPORT:CONTAINERPORT, or CONTAINERPORT alone."""
    parts = text.split(":")
    if len(parts) > 2 or not all(p.isdigit() for p in parts):
        raise click.BadParameter(f"{text!r}: use HOSTPORT:CONTAINERPORT or CONTAINERPORT",
                                 param_hint="--port")
    numbers = [int(p) for p in parts]
    return {"containerPort": numbers[-1], **({"hostPort": numbers[0]} if len(numbers) == 2 else {})}


def _labels(text: str) -> dict[str, str]:
    pairs = [part.partition("=") for part in text.split(",") if part]
    if not pairs or any(not key or not sep for key, sep, _ in pairs):
        raise click.BadParameter(f"{text!r}: use KEY=VALUE,KEY=VALUE", param_hint="--labels")
    return {key: value for key, _, value in pairs}


def _env(text: str) -> dict[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise click.BadParameter(f"{text!r}: use NAME=VALUE", param_hint="--env")
    return {"name": name, "value": value}


@click.command(cls=CommandAfterDashDash)
@click.argument("name")
@click.option("--image", required=True, help="The container image.")
@click.option("-l", "--labels", default=None, metavar="K=V,...",
              help="The pod's labels (default: run=NAME), e.g. app=web,tier=front.")
@click.option("--cpu", help="CPU request, e.g. 250m.")
@click.option("--memory", help="Memory request, e.g. 64Mi.")
@click.option("--port", "ports", multiple=True, metavar="[HOST:]PORT", help="A container port (repeatable).")
@click.option("--env", "env", multiple=True, metavar="NAME=VALUE", help="An env variable (repeatable).")
@click.option("--restart", type=click.Choice(["Always", "OnFailure", "Never"]), default="Always")
@click.option("-o", "--output", type=click.Choice(["json", "yaml", "name"]), default=None,
              help="Print the pod (with --dry-run=client: the manifest, as kubectl makes one).")
@namespace_option
@dry_run_option
@pass_state
def run(state: State, name: str, image: str, labels: str | None, cpu: str | None, memory: str | None,
        ports: tuple[str, ...], env: tuple[str, ...], restart: str, output: str | None, namespace: str | None,
        dry_run: str) -> None:
    """Run one pod: berth run NAME --image IMG [--cpu 250m --memory 64Mi] [--port 8080:80] [-- CMD...]"""
    command = command_after_dash_dash()
    requests_ = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    container: dict[str, Any] = {"name": name, "image": image, "ports": [_port(p) for p in ports],
                                 "env": [_env(e) for e in env], "resources": {"requests": requests_}}
    if command:
        container["command"] = list(command)
    manifest = {"apiVersion": "berth/v1", "kind": "Pod",
                "metadata": {"name": name, "labels": _labels(labels) if labels else {"run": name}},
                "spec": {"containers": [container], "restartPolicy": restart}}
    if dry_run == "client":
        created = manifest
    else:
        created = state.client.create(manifest, namespace=state.explicit_ns(namespace),
                                      dry_run=dry_run == "server")
    if output in ("json", "yaml"):
        click.echo((to_json if output == "json" else to_yaml)(created), nl=False)
    else:
        click.echo(ref(created) if output == "name" else f"{ref(created)} created{DRY_SUFFIX[dry_run]}")


@click.command()
@click.argument("pod", required=False)
@click.option("-c", "--container", help="The container (default: the pod's first).")
@click.option("-f", "--follow", is_flag=True, help="Keep printing what the container writes.")
@click.option("--tail", type=click.IntRange(0, 100_000), help="Only the last N lines.")
@click.option("--timestamps", is_flag=True, help="Each line with the time it was written.")
@click.option("--since", default=None, metavar="DURATION",
              help="Only what was written in the last 5s, 2m, 1h...")
@click.option("-p", "--previous", is_flag=True, help="The run before the current one (after a restart).")
@selector_option
@namespace_option
@pass_state
def logs(state: State, pod: str | None, container: str | None, follow: bool, tail: int | None,
         timestamps: bool, since: str | None, previous: bool, selector: str | None,
         namespace: str | None) -> None:
    """Print a container's output, fetched from its host: berth logs POD, or -l SELECTOR for every
    pod it selects, one after the other."""
    if (pod is None) == (selector is None):
        raise click.UsageError("give a POD or -l SELECTOR")
    if selector is not None and follow:
        raise click.UsageError("--follow takes one POD")
    since_seconds = None if since is None else max(1, int(parse_duration(since)))
    names = [pod] if pod is not None else [
        p["metadata"]["name"] for p in state.client.list("Pod", state.ns(namespace), label_selector=selector)
        .get("items") or []]
    out = sys.stdout.buffer
    for name in names:
        chunks = state.client.pod_log(name, state.ns(namespace), container=container, follow=follow,
                                      tail=tail, timestamps=timestamps, since_seconds=since_seconds,
                                      previous=previous)
        for chunk in chunks:
            out.write(chunk)
            out.flush()


@click.command(name="exec", cls=CommandAfterDashDash)
@click.argument("pod")
@click.option("-c", "--container", help="The container (default: the pod's first).")
@click.option("-i", "--stdin", "send_stdin", is_flag=True, help="Pass this command's standard input.")
@click.option("-t", "--tty", "tty_wanted", is_flag=True,
              help="Give the command a terminal (with -i, an interactive shell: berth exec -it POD -- sh).")
@namespace_option
@pass_state
def exec_(state: State, pod: str, container: str | None, send_stdin: bool, tty_wanted: bool,
          namespace: str | None) -> None:
    """Run a command in a container: berth exec POD [-c C] [-it] -- CMD...; exits with its status."""
    command = command_after_dash_dash()
    if not command:
        raise click.UsageError("give the command after --: berth exec POD -- CMD...")
    tty_mode = tty_wanted and sys.stdin.isatty()
    if tty_wanted and not tty_mode:
        click.echo("Unable to use a TTY - input is not a terminal or the right kind of file", err=True)
    session = state.client.exec_session(pod, list(command), state.ns(namespace), container=container,
                                        stdin=send_stdin, tty=terminal_size() if tty_mode else None)
    raise SystemExit(attach(session, send_stdin=send_stdin, tty_mode=tty_mode))
