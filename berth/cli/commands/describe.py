"""`berth describe`: one object in detail, with the events about it."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from berth.cli.columns import selector_text
from berth.cli.commands.common import (
    State,
    fetch_named,
    namespace_option,
    no_resources,
    pass_state,
    selector_option,
    split_ref,
)
from berth.cli.describe import describe as describe_text
from berth.cli.describe_nodes import describe_budget, describe_node
from berth.cli.describe_policies import describe_policy
from berth.cli.describe_services import describe_service
from berth.cli.describe_storage import describe_claim, describe_class, describe_volume
from berth.cli.describe_workloads import describe_deployment, describe_replicaset
from berth.client import kind_info
from berth.errors import ApiError, BerthError
from berth.objects import Obj


def _events_for(state: State, obj: Obj) -> tuple[list[Obj] | None, str | None]:
    """Events are fetched per namespace and filtered here; their absence is not an error."""
    ns = (obj.get("metadata") or {}).get("namespace")
    try:
        listing = state.client.list("Event", ns, all_namespaces=ns is None)
    except BerthError as err:
        message = err.message if isinstance(err, ApiError) else str(err)
        return None, f"unable to list events: {message}"
    return listing.get("items") or [], None


def _endpoints(state: State, service: Obj) -> Obj | None:
    """A Service's Endpoints; None while there are none (made by the controller, a moment later)."""
    meta = service.get("metadata") or {}
    try:
        return state.client.get("Endpoints", str(meta.get("name")), meta.get("namespace"))
    except ApiError as err:
        if err.status == 404:
            return None
        raise


def _page(state: State, obj: Obj, now: datetime) -> str:
    """A Deployment's page lists its ReplicaSets, a ReplicaSet's counts its pods: both are read
    by the selector (the candidates) and kept by controller uid (berth.cli.describe_workloads). A
    Node's lists the pods bound to it (berth.cli.describe_nodes), a Service's its Endpoints, a
    PersistentVolumeClaim's the pods of its namespace using it (berth.cli.describe_storage)."""
    events, problem = _events_for(state, obj)
    if obj.get("kind") == "Node":
        name = (obj.get("metadata") or {}).get("name")
        pods = state.client.list("Pod", all_namespaces=True, field_selector=f"spec.nodeName={name}")
        return describe_node(obj, pods.get("items") or [], events, now, problem)
    if obj.get("kind") == "PodDisruptionBudget":
        return describe_budget(obj, events, now, problem)
    if obj.get("kind") == "NetworkPolicy":
        return describe_policy(obj, events, now, problem)
    ns = (obj.get("metadata") or {}).get("namespace")
    if obj.get("kind") == "PersistentVolume":
        return describe_volume(obj, events, now, problem)
    if obj.get("kind") == "StorageClass":
        return describe_class(obj, events, now, problem)
    if obj.get("kind") == "PersistentVolumeClaim":
        pods = state.client.list("Pod", ns).get("items") or []
        return describe_claim(obj, pods, events, now, problem)
    if obj.get("kind") == "Service":
        return describe_service(obj, _endpoints(state, obj), events, now, problem)
    labels = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels")
    selector = selector_text(labels) if labels else None  # none: all of the namespace, uid decides
    if obj.get("kind") == "Deployment":
        replicasets = state.client.list("ReplicaSet", ns, label_selector=selector).get("items") or []
        return describe_deployment(obj, replicasets, events, now, problem)
    if obj.get("kind") == "ReplicaSet":
        pods = state.client.list("Pod", ns, label_selector=selector).get("items") or []
        return describe_replicaset(obj, pods, events, now, problem)
    return describe_text(obj, events, now, problem)


@click.command()
@click.argument("kind")
@click.argument("names", nargs=-1)
@selector_option
@namespace_option
@pass_state
def describe(
    state: State, kind: str, names: tuple[str, ...], selector: str | None, namespace: str | None
) -> None:
    """Show one object in detail, with the events about it."""
    kind, names = split_ref(kind, names)
    info = kind_info(kind)
    ns = state.ns(namespace)
    if names:
        objects, failed = fetch_named(state, info, names, ns)
    else:
        objects = state.client.list(info, ns, label_selector=selector).get("items") or []
        failed = False
        if not objects:
            click.echo(no_resources(info, ns, False), err=True)
    now = datetime.now(UTC)
    texts = [_page(state, obj, now) for obj in objects]
    if texts:
        click.echo("\n\n".join(t.rstrip("\n") for t in texts))
    if failed:
        raise SystemExit(1)


def _resolve(schema: Obj, schemas: Obj) -> Obj:
    """Through $ref, and an optional field's anyOf [X, null], to the schema that says what X is."""
    for _ in range(20):  # bounded: a schema that refers to itself in a loop is not followed forever
        if "$ref" in schema:
            schema = schemas.get(str(schema["$ref"]).rsplit("/", 1)[-1]) or {}
        elif "anyOf" in schema:
            options = [s for s in schema["anyOf"] if s.get("type") != "null"]
            schema = options[0] if len(options) == 1 else schema
            if len(options) != 1:
                return schema
        else:
            return schema
    return schema


def _type_name(schema: Obj, schemas: Obj) -> str:
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " | ".join(_type_name(s, schemas) for s in schema["anyOf"] if s.get("type") != "null")
    kind = schema.get("type", "object")
    if kind == "array":
        return "[]" + _type_name(schema.get("items") or {}, schemas)
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return "map[string]" + _type_name(schema["additionalProperties"], schemas)
    return str(kind)


def explain_text(document: Obj, path: str) -> str:
    """kubectl explain's page for KIND[.field.field...], from the API's OpenAPI document."""
    schemas = (document.get("components") or {}).get("schemas") or {}
    kind_name, *fields = path.split(".")
    info = kind_info(kind_name)
    schema, shown = _resolve(schemas.get(info.kind) or {}, schemas), info.kind
    field_line = ""
    for field in fields:
        properties = schema.get("properties") or {}
        if schema.get("type") == "array":
            properties = _resolve(schema.get("items") or {}, schemas).get("properties") or {}
        if field not in properties:
            raise BerthError(f'field "{field}" does not exist in {shown}')
        field_line = f"FIELD:    {field} <{_type_name(properties[field], schemas)}>"
        schema, shown = _resolve(properties[field], schemas), f"{shown}.{field}"
        if schema.get("type") == "array":
            schema = {**_resolve(schema.get("items") or {}, schemas), "type": "array-of"}
    lines = [f"KIND:     {info.kind}", "VERSION:  berth/v1", ""]
    if field_line:
        lines += [field_line, ""]
    lines += ["DESCRIPTION:", f"     {schema.get('description') or '<empty>'}"]
    properties = schema.get("properties") or {}
    if properties:
        required = set(schema.get("required") or [])
        lines += ["", "FIELDS:"]
        for name, field in properties.items():
            mark = " -required-" if name in required else ""
            lines.append(f"   {name}\t<{_type_name(field, schemas)}>{mark}")
    return "\n".join(lines) + "\n"


@click.command()
@click.argument("path", metavar="KIND[.FIELD...]")
@pass_state
def explain(state: State, path: str) -> None:
    """What a kind or one of its fields holds, from the API's schema: berth explain pod.spec.containers"""
    click.echo(explain_text(state.client.openapi(), path), nl=False)
