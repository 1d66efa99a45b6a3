"""What the playbook does only on real hosts, checked here: the wheel it installs, the systemd units.

Lab hosts run neither (they share this venv and have no systemd), so these two parts of
`ansible/` would otherwise first run on an operator's machines.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from master.api import ui

ROOT = Path(__file__).resolve().parent.parent
ANSIBLE = Path(sys.executable).parent / "ansible"


def test_the_wheel_holds_everything_the_services_run(tmp_path: Path) -> None:
    """The common role's `pip wheel --no-deps`, installed apart from the source tree."""
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
         str(tmp_path / "dist"), str(ROOT)], capture_output=True, text=True, timeout=240)
    assert build.returncode == 0, build.stderr
    wheel = next((tmp_path / "dist").glob("berth-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = next(archive.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    for script in ("berth = berth.cli.main", "berth-master = master.main", "berth-agent = agent.main",
                   "berth-certs = berth.certs"):
        assert f"{script}:main" in entry_points
    assert not [n for n in names if n.startswith("tests/") or "__pycache__" in n]
    # the web page's files (master/api/ui.py) and the vendored licences ship as package data
    for name in (*ui.FILES, "vendor/VENDORED.md", "vendor/LICENSE-alpinejs", "vendor/LICENSE-vue-reactivity"):
        assert f"master/api/ui_files/{name}" in names, name
    # three import names only: nothing as generic as `cli` or `lab` lands in site-packages
    assert {n.split("/")[0] for n in names if ".dist-info/" not in n} == {"berth", "master", "agent"}
    target = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                              str(target), str(wheel)], capture_output=True, text=True, timeout=120)
    assert install.returncode == 0, install.stderr
    # run from elsewhere, with only the installed copy of the project on the path
    env = {**os.environ, "PYTHONPATH": str(target), "PYTHONSAFEPATH": "1"}
    for module in ("master.main", "agent.main", "berth.cli.main", "berth.lab.supervisor"):
        run = subprocess.run([sys.executable, "-m", module, "--help"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, (module, run.stderr)
        where = subprocess.run([sys.executable, "-c", f"import {module} as m; print(m.__file__)"],
                               cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert where.stdout.startswith(str(target)), (module, where.stdout, where.stderr)


def _service_vars(role: str) -> dict:
    """The service_name and service_command a role hands to the service role."""
    tasks = yaml.safe_load((ROOT / "ansible" / "roles" / role / "tasks" / "main.yml").read_text())
    include = next(t for t in tasks if t.get("ansible.builtin.include_role", {}).get("name") == "service")
    return include["vars"]


@pytest.mark.parametrize("role", ["master", "agent"])
def test_systemd_units_are_valid(role: str, tmp_path: Path) -> None:
    """The unit the service role writes, rendered by Ansible, checked by systemd's own parser."""
    service = _service_vars(role)
    unit = tmp_path / f"{service['service_name']}.service"
    variables = {**service, "berth_venv": sys.prefix, "berth_state_dir": "/var/lib/berth with space",
                 "ansible_python_interpreter": sys.executable}
    render = subprocess.run(
        [str(ANSIBLE), "localhost", "-c", "local", "-i", "localhost,", "-m", "ansible.builtin.template",
         "-a", f"src={ROOT}/ansible/roles/service/templates/unit.service.j2 dest={unit}",
         "-e", json.dumps(variables)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "ANSIBLE_LOCALHOST_WARNING": "false", "ANSIBLE_NOCOLOR": "1"})
    assert render.returncode == 0, render.stdout + render.stderr
    text = unit.read_text()
    config = f"'/var/lib/berth with space/{role}/{role}.yaml'"
    assert f"ExecStart={sys.prefix}/bin/berth-{role} --config {config}" in text, text
    verify = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)],
                            capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0 and verify.stderr.strip() == "", verify.stderr
