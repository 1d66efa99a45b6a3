"""What a process says it runs (berth/version.py): a master's open `/version`, an agent's build info."""

from __future__ import annotations

import re

from prometheus_client import generate_latest

from agent.prometheus import AgentMetrics
from berth.version import release, version_info
from tests.test_audit import _app


def test_version_names_the_installed_release_as_kubernetes_does() -> None:
    info = version_info()
    assert info["gitVersion"] == f"v{release()}"
    assert [info["major"], info["minor"]] == release().split(".")[:2]
    assert set(info) == {"major", "minor", "gitVersion", "platform", "pythonVersion"}


def test_a_master_answers_version_without_a_token() -> None:
    answer = _app().test_client().get("/version")
    assert answer.status_code == 200
    assert answer.get_json() == version_info()


def test_an_agent_tells_its_release_in_its_metrics() -> None:
    text = generate_latest(AgentMetrics().registry).decode()
    assert re.search(rf'^berth_build_info\{{version="{re.escape(release())}"\}} 1\.0$', text, re.M), text
