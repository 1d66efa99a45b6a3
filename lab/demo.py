"""The local demo: three masters on loopback, the CLI configured, the demo app applied.

`python -m lab.demo up` is idempotent (a running demo is stopped first);
`python -m lab.demo down` stops it and removes its state.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import click
import requests
import yaml

from lab.masters import MasterSpec, new_tokens, start_master, stop_master, write_cluster

DEFAULT_ROOT = Path("/var/lib/berth-demo")
API_PORTS = [7101, 7102, 7103]
RAFT_PORTS = [7201, 7202, 7203]


def _specs(root: Path) -> list[MasterSpec]:
    return [MasterSpec(f"m{i}", "", "", root / f"m{i}", root / f"m{i}.yaml", root / f"m{i}.log",
                       root / f"m{i}.pid") for i in (1, 2, 3)]


def _down(root: Path) -> None:
    for spec in _specs(root):
        stop_master(spec)
    time.sleep(0.5)
    shutil.rmtree(root, ignore_errors=True)


def _wait_ready(urls: list[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    for url in urls:
        while True:
            try:
                if requests.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise click.ClickException(f"{url} did not become ready; see its log")
            time.sleep(0.2)


@click.group()
def main() -> None:
    """The local Berth demo cluster."""


@main.command()
@click.option("--root", type=click.Path(path_type=Path), default=DEFAULT_ROOT, show_default=True)
@click.option("--config-out", type=click.Path(path_type=Path),
              default=Path.home() / ".config" / "berth" / "config.yaml", show_default=True)
def up(root: Path, config_out: Path) -> None:
    """Start three masters, write the CLI config and apply the demo app."""
    _down(root)
    tokens = new_tokens({"admin": "admin", "operator": "operator", "viewer": "viewer"})
    specs = write_cluster(root, 3, tokens, ports=RAFT_PORTS + API_PORTS)
    for spec in specs:
        start_master(spec, sys.executable)
    urls = [spec.api_url for spec in specs]
    _wait_ready(urls)
    config_out.parent.mkdir(parents=True, exist_ok=True)
    config_out.write_text(yaml.safe_dump({"servers": urls, "token": tokens["admin"][1]}))
    config_out.chmod(0o600)
    manifest = (Path(__file__).parent / "demo.yaml").read_text()
    response = requests.post(f"{urls[1]}/api/v1/apply", data=manifest, timeout=30, headers={
        "Content-Type": "application/yaml", "Authorization": f"Bearer {tokens['admin'][1]}"})
    if response.status_code != 200:
        raise click.ClickException(f"applying the demo app failed: {response.text}")
    for obj, action in zip(response.json()["items"], response.json()["actions"], strict=True):
        click.echo(f"{obj['kind'].lower()}/{obj['metadata']['name']} {action}")
    click.echo(f"masters: {', '.join(urls)} (logs and data in {root}); CLI config: {config_out}")


@main.command()
@click.option("--root", type=click.Path(path_type=Path), default=DEFAULT_ROOT, show_default=True)
def down(root: Path) -> None:
    """Stop the demo masters and remove their state."""
    _down(root)
    click.echo("demo stopped")


if __name__ == "__main__":
    main()
