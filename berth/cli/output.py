"""Turning objects into text: kubectl-style tables, JSON, YAML or `kind/name` lines.

Everything returns a string rather than printing, so commands decide where it goes
and tests compare text without capturing a terminal.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import yaml
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from berth.cli.columns import columns_for, rows
from berth.objects import Obj

FORMATS = ("wide", "json", "yaml", "name")
COLUMN_GAP = 3  # kubectl's tabwriter padding


def render_table(headers: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    """A borderless table; cells are Text so `[brackets]` in values are never read as markup."""
    widths = [cell_len(h) for h in headers]
    for row in body:
        widths = [max(w, cell_len(cell)) for w, cell in zip(widths, row, strict=True)]
    table = Table(
        box=None,
        show_edge=False,
        pad_edge=False,
        padding=(0, COLUMN_GAP, 0, 0),
        header_style="",
        expand=False,
    )
    for header in headers:
        table.add_column(Text(header), no_wrap=True, overflow="ignore")
    for row in body:
        table.add_row(*(Text(cell) for cell in row))
    # Wide enough that nothing wraps: output piped to a file must stay one row per line.
    width = sum(widths) + COLUMN_GAP * len(widths) + 1
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=width,
        color_system=None,
        force_terminal=False,
        highlight=False,
        emoji=False,
        markup=False,
    )
    console.print(table)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


def to_json(payload: Any) -> str:
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"


def to_yaml(payload: Any) -> str:
    return yaml.safe_dump(payload, sort_keys=False, allow_unicode=True, default_flow_style=False)


def ref(obj: Obj) -> str:
    """`pod/web`: what -o name prints and what apply/create/delete report on."""
    return f"{str(obj.get('kind') or '').lower()}/{(obj.get('metadata') or {}).get('name', '')}"


def as_list(kind: str, items: list[Obj], revision: Any = None) -> Obj:
    """A List wrapper like the server's, for results gathered from several requests."""
    listing: Obj = {"apiVersion": "berth/v1", "kind": f"{kind}List", "metadata": {}, "items": items}
    if revision is not None:
        listing["metadata"]["resourceVersion"] = revision
    return listing


def render_objects(
    kind: str,
    items: list[Obj],
    output: str | None,
    *,
    namespaced_view: bool = False,
    payload: Any = None,
    now: datetime | None = None,
    show_labels: bool = False,
    kind_prefix: bool = False,
) -> str:
    """`payload` is what json/yaml show (the server's List, or one object); tables use `items`;
    `kind_prefix` names rows `kind/name`, for a listing of several kinds."""
    if payload is None:
        payload = as_list(kind, items)
    if output == "json":
        return to_json(payload)
    if output == "yaml":
        return to_yaml(payload)
    if output == "name":
        return "".join(ref({"kind": kind, **obj}) + "\n" for obj in items)
    if output not in (None, "", "wide"):
        raise ValueError(f"unknown output format {output!r}")
    columns = columns_for(kind, wide=output == "wide", namespaced_view=namespaced_view,
                          show_labels=show_labels, kind_prefix=kind_prefix)
    now = now or datetime.now(UTC)
    return render_table([c.header for c in columns], rows(items, columns, now))
