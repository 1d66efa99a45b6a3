"""What every command shares: the global options' State, the options kubectl users type,
and how an error reaches the user (one line, exit status 1)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, TypeVar

import click
import requests

from berth.cli.config import Config, resolve, unreachable_memory_path
from berth.client import Client, UnreachableMemory
from berth.errors import ApiError, BerthError
from berth.kinds import Kind
from berth.objects import Obj

F = TypeVar("F", bound=Callable[..., Any])


def client_version() -> str:
    try:
        return metadata.version("berth")
    except metadata.PackageNotFoundError:
        return "0.1.0"


@dataclass
class State:
    """Global options, resolved into a Config and a Client only when a command needs them,
    so `berth version` and `--help` work without any config."""

    config_file: str | None = None
    servers: tuple[str, ...] = ()
    token: str | None = None
    namespace: str | None = None
    certificate_authority: str | None = None
    _config: Config | None = field(default=None, repr=False)
    _client: Client | None = field(default=None, repr=False)

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = resolve(
                servers=self.servers,
                token=self.token,
                namespace=self.namespace,
                config_file=self.config_file,
                certificate_authority=self.certificate_authority,
            )
        return self._config

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client(self.config.servers, self.config.token, namespace=self.config.namespace,
                                  on_warning=lambda text: click.echo(text, err=True),
                                  unreachable=UnreachableMemory(unreachable_memory_path()),
                                  ca_file=self.config.certificate_authority)
        return self._client

    def ns(self, explicit: str | None) -> str:
        return explicit or self.config.namespace

    def explicit_ns(self, explicit: str | None) -> str | None:
        """Only a namespace the user typed here may override one written in a manifest."""
        return explicit or self.namespace


class CommandAfterDashDash(click.Command):
    """`berth run NAME --image I -- CMD...`, `berth exec POD -- CMD...`: options are parsed as
    options (an unknown one is an error, never the start of a command), and only what follows
    `--` is the container's command, whole (`ctx.meta["command"]`)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            cut = args.index("--")
            ctx.meta["command"] = args[cut + 1:]
            args = args[:cut]
        else:
            ctx.meta["command"] = []
        return super().parse_args(ctx, args)


def command_after_dash_dash() -> list[str]:
    return list(click.get_current_context().meta.get("command") or [])


class BerthGroup(click.Group):
    """Turns errors into kubectl-style messages here, so CliRunner sees them as a user would."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (BerthError, requests.RequestException) as err:
            report(err)
        ctx.exit(1)


def namespace_option(func: F) -> F:
    return click.option(
        "-n", "--namespace", "namespace", default=None, metavar="NS",
        help="Namespace (default: from --namespace before the command, BERTH_NAMESPACE, config).",
    )(func)


def selector_option(func: F) -> F:
    return click.option(
        "-l", "--selector", "selector", default=None, metavar="SELECTOR",
        help="Label selector, e.g. app=web,tier!=db.",
    )(func)


def all_namespaces_option(func: F) -> F:
    return click.option(
        "-A", "--all-namespaces", "all_namespaces", is_flag=True,
        help="List across all namespaces.",
    )(func)


def filename_option(required: bool) -> Callable[[F], F]:
    return click.option(
        "-f", "--filename", "filenames", multiple=True, required=required, metavar="FILE",
        help="Manifest file, directory of manifests, or - for stdin (repeatable).",
    )


def dry_run_option(func: F) -> F:
    return click.option(
        "--dry-run", "dry_run", type=click.Choice(["none", "client", "server"]), default="none",
        help="client: only say what would be sent; server: the API checks it all and keeps nothing.",
    )(func)


DRY_SUFFIX = {"none": "", "client": " (dry run)", "server": " (server dry run)"}


def parse_duration(text: str) -> float:
    """`30s`, `2m`, `1h` or plain seconds, as kubectl's --timeout takes them."""
    units = {"s": 1, "m": 60, "h": 3600}
    number, unit = (text[:-1], units[text[-1]]) if text and text[-1] in units else (text, 1)
    try:
        seconds = float(number) * unit
    except ValueError:
        raise click.BadParameter(f"{text!r}: use a duration such as 30s, 2m or 1h",
                                 param_hint="--timeout") from None
    if seconds < 0:
        raise click.BadParameter("a timeout is not negative", param_hint="--timeout")
    return seconds


def pass_state(func: F) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        # ensure_object: a subcommand invoked on its own (CliRunner) still gets defaults.
        return func(click.get_current_context().ensure_object(State), *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def report(err: Exception) -> None:
    click.echo(err.describe() if isinstance(err, ApiError) else f"Error: {err}", err=True)


def split_ref(kind: str, names: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """`get pod/web` as kubectl allows, besides `get pod web`."""
    if "/" in kind and not names:
        kind, name = kind.split("/", 1)
        return kind, (name,)
    return kind, names


def fetch_named(
    state: State,
    info: Kind,
    names: tuple[str, ...],
    namespace: str | None,
    consistent: bool = False,
) -> tuple[list[Obj], bool]:
    """Each name separately, as kubectl does: one missing object does not hide the others."""
    found: list[Obj] = []
    failed = False
    for name in names:
        try:
            found.append(state.client.get(info, name, namespace, consistent=consistent))
        except ApiError as err:
            report(err)
            failed = True
    return found, failed


def no_resources(info: Kind, namespace: str, all_namespaces: bool) -> str:
    if info.namespaced and not all_namespaces:
        return f"No resources found in {namespace} namespace."
    return "No resources found"
