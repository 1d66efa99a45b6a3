"""Fixtures: real master clusters on loopback, and cleanup of what a crashed run left."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.harness import MasterCluster

# Store and API tests see only their own writes: no scheduler placing (and so writing) their
# pods; tests of a controller ask for it, e.g. {"controllers": ["node-lifecycle", "scheduler"]}.
STORE_ONLY = {"controllers": ["node-lifecycle"]}
TEST_ROOT = Path(os.environ.get("BERTH_TEST_ROOT", "/tmp/berth-tests"))


def _kill_leftovers() -> None:
    """Masters of an earlier run that died before its own cleanup (they run in their own session)."""
    for proc in psutil.process_iter(["pid", "ppid", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        # under this root, not a sibling's (/tmp/berth-tests-x is another run's)
        ours = "master.main" in cmdline and any(f"{TEST_ROOT}/" in part for part in cmdline)
        if ours:
            with contextlib.suppress(psutil.Error):
                proc.kill()


def pytest_sessionstart(session: pytest.Session) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        _kill_leftovers()
        shutil.rmtree(TEST_ROOT, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest) -> Iterator[MasterCluster]:
    """Three masters shared by one test module (tests that kill masters make their own); a module
    that needs other settings (a controller on) names them in `CLUSTER_SETTINGS`."""
    name = request.module.__name__.rsplit(".", 1)[-1]
    settings = getattr(request.module, "CLUSTER_SETTINGS", STORE_ONLY)
    cluster = MasterCluster(TEST_ROOT / f"{name}-shared", size=3, extra_settings=settings)
    cluster.start_all()
    try:
        cluster.wait_ready()
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def own_cluster(request: pytest.FixtureRequest) -> Iterator[MasterCluster]:
    cluster = MasterCluster(TEST_ROOT / request.node.name[:60], size=3,
                            extra_settings={**STORE_ONLY, **(getattr(request, "param", None) or {})})
    cluster.start_all()
    try:
        try:
            cluster.wait_ready()
        except TimeoutError:
            print(cluster.logs())
            raise
        yield cluster
    finally:
        cluster.close()
        if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
            print(cluster.logs())


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
