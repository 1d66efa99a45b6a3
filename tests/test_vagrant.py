"""The Vagrantfile: valid for the default and other machine counts (no provider needed)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def validate(tmp_path: Path, **counts: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "VAGRANT_HOME": str(tmp_path / "vagrant.d"), **counts}
    return subprocess.run(["vagrant", "validate", "--ignore-provider"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("counts", [{}, {"BERTH_MASTERS": "1", "BERTH_WORKERS": "0"}])
def test_vagrantfile_validates(tmp_path: Path, counts: dict[str, str]) -> None:
    result = validate(tmp_path, **counts)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_bad_master_count_is_refused(tmp_path: Path) -> None:
    result = validate(tmp_path, BERTH_MASTERS="2")
    assert result.returncode != 0 and "BERTH_MASTERS" in result.stdout + result.stderr
