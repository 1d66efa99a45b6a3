"""Who may import whom: the rules that keep the agent light and the sides apart, checked.

The agent runs on every host: it imports the shared package `berth` and never the master
(whose imports pull in Flask, pydantic and PySyncObj). `berth` (with the CLI and the lab
tooling in it) imports neither the master nor the agent: a user's machine needs neither.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RULES = {  # package -> the top-level packages it must never import
    "agent": {"master", "tests", "bench"},
    "berth": {"master", "agent", "tests", "bench"},  # the CLI and the lab tooling among it
}


def imported(path: Path) -> set[str]:
    """The top-level packages a module imports (`from x.y import z` counts as x)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(RULES))
def test_a_package_never_imports_what_it_must_not(package: str) -> None:
    broken = {str(path.relative_to(ROOT)): sorted(imported(path) & RULES[package])
              for path in sorted((ROOT / package).rglob("*.py"))}
    assert {module: names for module, names in broken.items() if names} == {}


def test_the_check_sees_an_import_it_forbids(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import os\nfrom master.runtime import driver\nfrom . import sibling\n"
                      "def f():\n    import cli.main\n")
    assert imported(module) == {"os", "master", "cli"}
