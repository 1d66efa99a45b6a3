"""Who may import whom: the rules that keep the agent light and the sides apart, checked.

The agent runs on every host: it imports the shared package `berth` and never the master
(whose imports pull in Flask, pydantic and PySyncObj). `berth` (with the CLI and the lab
tooling in it) imports neither the master nor the agent: a user's machine needs neither.
Inside the master, the layers point one way: the store and the scheduler are below
everything, the agents' report books below the runtime, and nothing below the API imports it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ABOVE_THE_STORE = ("master.api", "master.controllers", "master.runtime", "master.reports",
                   "master.liveness", "master.server", "master.scheduler")
RULES = {  # package (a folder, dotted) -> the modules it must never import (a name and all below it)
    "agent": ("master", "tests", "bench"),
    "berth": ("master", "agent", "tests", "bench"),  # the CLI and the lab tooling among it
    "bench": ("tests",),
    "master": ("agent", "tests", "bench"),
    "master.store": ABOVE_THE_STORE,
    "master.scheduler": ABOVE_THE_STORE,  # pure: objects in, decisions out
    "master.workloads": (*ABOVE_THE_STORE, "master.store"),  # pure too: not even the store
    "master.network": (*ABOVE_THE_STORE, "master.store"),  # pure: objects in, addresses and endpoints out
    "master.autoscaling": (*ABOVE_THE_STORE, "master.store"),  # pure: metrics and objects in, replicas out
    "master.storage": (*ABOVE_THE_STORE, "master.store"),  # pure: claims, volumes, classes in, steps out
    "master.objects": ABOVE_THE_STORE,
    "master.reports": ("master.api", "master.controllers", "master.runtime", "master.server"),
    "master.runtime": ("master.api", "master.server"),
    "master.controllers": ("master.api", "master.server"),
}


def imported(path: Path) -> set[str]:
    """The modules a module imports, by full dotted name (`from x.y import z` counts as x.y)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def forbidden(names: set[str], rules: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if any(n == rule or n.startswith(rule + ".") for rule in rules))


@pytest.mark.parametrize("package", sorted(RULES))
def test_a_package_never_imports_what_it_must_not(package: str) -> None:
    rules = tuple(r for r in RULES[package] if r != package)  # its own modules may import each other
    broken = {str(path.relative_to(ROOT)): forbidden(imported(path), rules)
              for path in sorted((ROOT / package.replace(".", "/")).rglob("*.py"))}
    assert {module: names for module, names in broken.items() if names} == {}


def test_the_check_sees_an_import_it_forbids(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import os\nfrom master.runtime import driver\nfrom . import sibling\n"
                      "def f():\n    import cli.main\n")
    assert imported(module) == {"os", "master.runtime", "cli.main"}
    assert forbidden(imported(module), ("master", "cli")) == ["cli.main", "master.runtime"]
    assert forbidden({"master.runtimes"}, ("master.runtime",)) == []  # a name, not a prefix
