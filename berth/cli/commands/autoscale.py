"""`berth autoscale`: kubectl's quick way to give a workload a HorizontalPodAutoscaler."""

from __future__ import annotations

import click

from berth.cli.commands.common import DRY_SUFFIX, State, dry_run_option, namespace_option, pass_state
from berth.cli.commands.rollout import SCALABLE, _named
from berth.cli.output import ref
from berth.objects import Obj


def autoscaler_for(target: Obj, maximum: int, minimum: int | None = None, cpu_percent: int | None = None,
                   name: str | None = None) -> Obj:
    """The autoscaler `kubectl autoscale` makes: named after its target unless told, and what is not
    given left to the API's defaults (1 replica at least, cpu at 80%)."""
    meta = target.get("metadata") or {}
    spec: Obj = {"scaleTargetRef": {"kind": target.get("kind"), "name": meta.get("name")},
                 "maxReplicas": maximum}
    if minimum is not None:
        spec["minReplicas"] = minimum
    if cpu_percent is not None:
        spec["metrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": cpu_percent}}}]
    return {"apiVersion": "berth/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name or meta.get("name"), "namespace": meta.get("namespace")}, "spec": spec}


@click.command()
@click.argument("kind")
@click.argument("name", required=False)
@click.option("--max", "maximum", type=click.IntRange(1), required=True, help="The most replicas it may set.")
@click.option("--min", "minimum", type=click.IntRange(1), default=None,
              help="The fewest replicas it may set (default 1).")
@click.option("--cpu-percent", type=click.IntRange(1), default=None,
              help="The pods' average CPU to aim at, in percent of what they request (default 80).")
@click.option("--name", "hpa_name", default=None, help="The autoscaler's name (default: the workload's).")
@dry_run_option
@namespace_option
@pass_state
def autoscale(state: State, kind: str, name: str | None, maximum: int, minimum: int | None,
              cpu_percent: int | None, hpa_name: str | None, dry_run: str, namespace: str | None) -> None:
    """Scale a deployment or replicaset with its load:
    berth autoscale deploy/web --min 2 --max 6 --cpu-percent 70"""
    info, name = _named(kind, name, SCALABLE, "autoscale")
    ns = state.ns(namespace)
    hpa = autoscaler_for(state.client.get(info, name, ns), maximum, minimum, cpu_percent, hpa_name)
    if dry_run != "client":
        hpa = state.client.create(hpa, namespace=ns, dry_run=dry_run == "server")
    click.echo(f"{ref(hpa)} autoscaled{DRY_SUFFIX[dry_run]}")
