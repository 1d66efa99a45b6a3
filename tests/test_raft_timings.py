"""Raft timings are checked when the settings are read, naming the setting, not by PySyncObj's bare
AssertionError once the master starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from master.config import MasterConfig
from master.store.replicated import RaftTimings, raft_conf

REQUIRED = {"name": "m1", "raft_address": "127.0.0.1:7201", "api_address": "127.0.0.1:7101",
            "data_dir": "/nowhere", "tokens_file": "/nowhere/tokens.yaml"}


@pytest.mark.parametrize(("timings", "named"), [
    ({"auto_tick_period": 0}, "timings.auto_tick_period"),
    ({"append_entries_period": -1}, "timings.append_entries_period"),
    ({"raft_min_timeout": "fast"}, "timings.raft_min_timeout"),
    ({"raft_min_timeout": True}, "timings.raft_min_timeout"),
    ({"raft_min_timeout": 0.02}, "timings.raft_min_timeout"),  # not above 3 append-entries periods
    ({"raft_max_timeout": 0.3}, "timings.raft_max_timeout"),  # below the minimum
    ({"leader_fallback_timeout": 0.005}, "timings.leader_fallback_timeout"),
    ({"connection_timeout": 0.5}, "timings.connection_timeout"),  # below raft_max_timeout
    ({"connection_retry_time": -0.1}, "timings.connection_retry_time"),
    ({"log_compaction_min_entries": 1}, "timings.log_compaction_min_entries"),
    ({"log_compaction_min_time": 0}, "timings.log_compaction_min_time"),
    ({"election_timeout": 1.0}, "timings.election_timeout"),  # no such setting
])
def test_bad_timings_are_refused_naming_the_setting(timings: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named.replace(".", r"\.")):
        MasterConfig.build({**REQUIRED, "timings": timings}, {})


def test_timings_it_accepts_pysyncobj_accepts() -> None:
    for timings in (RaftTimings(), RaftTimings(raft_min_timeout=1.5, raft_max_timeout=3.0,
                                               leader_fallback_timeout=4.5, connection_timeout=3.5)):
        raft_conf(timings, "/nowhere", None).validate()


def test_a_master_with_bad_timings_says_which(tmp_path: Path) -> None:
    settings = tmp_path / "master.yaml"
    settings.write_text("timings:\n  raft_min_timeout: 2.0\n  raft_max_timeout: 1.0\n")
    result = subprocess.run([sys.executable, "-m", "master.main", "--config", str(settings), "--name", "x",
                             "--raft-address", "127.0.0.1:1", "--api-address", "127.0.0.1:1",
                             "--data-dir", str(tmp_path / "data"), "--tokens-file", str(tmp_path / "t")],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "timings.raft_max_timeout" in result.stderr and "Traceback" not in result.stderr
