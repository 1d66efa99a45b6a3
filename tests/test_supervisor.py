"""The lab hosts' supervisor (berth/lab/supervisor.py): `boot` starts again, after a crash, every
service `start` started, with the environment it was started with, whatever pid files the crash
left (`berth lab start` relies on it instead of a playbook run)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.harness import wait_until

SUPERVISOR = [sys.executable, "-m", "berth.lab.supervisor"]
SERVICE = ["sh", "-c", 'echo "$BERTH_TEST_MARK" >> "$BERTH_TEST_OUT"; exec sleep 600']


def supervisor(*args: str, env: dict[str, str]) -> str:
    return subprocess.run([*SUPERVISOR, *args], env=env, capture_output=True, text=True, check=True,
                          timeout=30).stdout.strip()


def pid_of(run_dir: Path, name: str) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int((run_dir / name).read_text())
    return None


def kill(pid: int | None) -> None:
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_boot_starts_again_what_start_started_with_its_environment_past_stale_pids(tmp_path: Path) -> None:
    run_dir, out = tmp_path / "run", tmp_path / "out"
    env = {"PATH": os.environ["PATH"], "BERTH_TEST_MARK": "kept", "BERTH_TEST_OUT": str(out),
           "SSH_CONNECTION": "10.0.0.1 22 10.0.0.2 22", "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    other = subprocess.Popen(["sleep", "60"])  # a process that has the supervisor's old number now
    try:
        assert supervisor("start", "svc", "--dir", str(run_dir), "--", *SERVICE, env=env) == "started"
        wait_until(lambda: out.exists() and out.read_text() == "kept\n", 10, what="the service's first start")
        # a crash: every process gone at once, their pid files left, one now naming a live process
        kill(pid_of(run_dir, "svc.supervisor.pid"))
        kill(pid_of(run_dir, "svc.pid"))
        (run_dir / "svc.supervisor.pid").write_text(str(other.pid))
        assert supervisor("start", "svc", "--dir", str(run_dir), "--", *SERVICE, env=env) == "running"

        bare = {"PATH": os.environ["PATH"], "PYTHONPATH": env["PYTHONPATH"]}  # boot's own: no mark
        assert supervisor("boot", "--dir", str(run_dir), env=bare) == "svc started"
        wait_until(lambda: out.read_text() == "kept\nkept\n", 10, what="the service started at boot")
        service = wait_until(lambda: pid_of(run_dir, "svc.pid"), 10, what="the service's pid")
        environ = Path(f"/proc/{service}/environ").read_bytes().split(b"\0")
        assert b"BERTH_TEST_MARK=kept" in environ
        assert not [v for v in environ if v.startswith(b"SSH_")]  # the session's own, not the unit's
    finally:
        other.kill()
        other.wait()
        with contextlib.suppress(subprocess.SubprocessError):
            supervisor("stop", "svc", "--dir", str(run_dir), env={"PATH": os.environ["PATH"]})
        kill(pid_of(run_dir, "svc.supervisor.pid"))
        kill(pid_of(run_dir, "svc.pid"))
