"""Schemathesis against the API's own description: does Berth do what /api/v1/openapi.json says?

Three masters on loopback (bench/_common.py); Schemathesis' CLI (its stable interface) run with
every check (`--checks all`) and its four phases (examples, coverage, fuzzing, stateful), with
an admin's token against the first master and, at the same time, with a viewer's against the
second (a follower or the leader, as the election went). Prints requests, failures by check and time, and
exits 1 on any failure or error, or on fewer requests than `--requests`. Traffic stays on
loopback: the masters' addresses are the only ones Schemathesis is given.

One setting differs from Schemathesis' defaults: `positive_data_acceptance` also takes 422. The
description cannot state every rule (a Deployment's selector must match its template's labels,
a PUT's body names the object its path names); the API answers a request that fits the
description but breaks such a rule with 422, and a 400 only when the request breaks the
description (master/api/openapi.py `as_described`): a 400 to generated valid data is still a
failure. Watches are cut to a tenth of a second (bench/fuzz_hooks.py).

    python -m bench.fuzz [--max-examples 2] [--phases ...] [--seed N] [--keep DIR] [--requests 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bench._common import ROOT, interrupt_on_sigterm, machine_header, running_masters
from berth.lab.masters import LAB_TOKENS

ROLES = ("admin", "viewer")
PHASES = "examples,coverage,fuzzing,stateful"  # all of them; the test suite's short run: fuzzing alone
CONFIG = """\
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]
"""


@dataclass
class Run:
    """One Schemathesis run, as its JSON report tells it."""

    role: str
    url: str
    requests: int = 0
    seconds: float = 0.0
    failures: dict[str, int] = field(default_factory=dict)  # "Title (Type)" -> count
    operations: dict[str, list[str]] = field(default_factory=dict)  # the same key -> where
    errors: dict[str, int] = field(default_factory=dict)
    exit_code: int = 0


@dataclass
class Figures:
    runs: list[Run] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(r.requests for r in self.runs)

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.runs)

    @property
    def failures(self) -> dict[str, int]:
        """Failures by check, every run together (empty: none)."""
        total: dict[str, int] = {}
        for run in self.runs:
            for name, count in [*run.failures.items(), *(("error: " + e, n) for e, n in run.errors.items())]:
                total[name] = total.get(name, 0) + count
        return total

    def report(self) -> str:
        lines = []
        for run in self.runs:
            lines.append(f"{run.role:6} {run.url}: {run.requests} requests in {run.seconds:.1f} s, "
                         f"{sum(run.failures.values())} failures, {sum(run.errors.values())} errors "
                         f"(schemathesis exit {run.exit_code})")
            for name, count in sorted(run.failures.items()):
                lines.append(f"    {count:5} {name}: {', '.join(run.operations[name][:6])}")
            for name, count in sorted(run.errors.items()):
                lines.append(f"    {count:5} error: {name}")
        lines.append(f"total: {self.requests} requests, {sum(self.failures.values())} failures and errors "
                     f"(the runs side by side: {self.seconds:.1f} s of theirs added)")
        return "\n".join(lines)


def _read_report(run: Run, report: Path) -> None:
    document = json.loads(report.read_text())
    run.requests = document["test_cases"]["generated"]
    run.seconds = document["running_time"] or 0.0
    for group in document["failures"]:
        name = f"{group['title']} ({group['type']})"
        run.failures[name] = run.failures.get(name, 0) + group["count"]
        run.operations[name] = run.operations.get(name, []) + group["operations"]
    for error in document["errors"]:
        run.errors[error["title"]] = run.errors.get(error["title"], 0) + error["count"]


def schemathesis_run(url: str, role: str, max_examples: int, seed: int, phases: str, workdir: Path,
                     ca_file: Path, include: str | None = None) -> Run:
    """One run of Schemathesis' CLI (its stable interface) against `url`, with `role`'s token, the
    master verified with `ca_file`."""
    workdir = workdir.resolve()  # Schemathesis runs in it: every path given it is absolute
    workdir.mkdir(parents=True, exist_ok=True)
    config, report = workdir / "schemathesis.toml", workdir / f"{role}.json"
    config.write_text(CONFIG)
    command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run",
               f"{url}/api/v1/openapi.json", "--checks", "all", "--max-examples", str(max_examples),
               "--seed", str(seed), "--phases", phases,
               "--header", f"Authorization: Bearer {LAB_TOKENS[role][1]}",
               "--request-timeout", "30", "--report", "json", "--report-json-path", str(report),
               "--no-color", "--continue-on-failure", "--tls-verify", str(ca_file)]
    if include:
        command += ["--include-path-regex", include]
    # run in `workdir`, where Schemathesis keeps its cache, with the checkout importable for the hooks
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "bench.fuzz_hooks", "NO_COLOR": "1", "PYTHONPATH": path}
    with open(workdir / f"{role}.log", "wb") as log:
        done = subprocess.run(command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
                              timeout=3600, check=False)
    run = Run(role, url, exit_code=done.returncode)
    if not report.exists():
        run.errors[f"no report; see {workdir / f'{role}.log'}"] = 1
        return run
    _read_report(run, report)
    if done.returncode != 0 and not run.failures and not run.errors:
        run.errors[f"schemathesis exited {done.returncode}; see {workdir / f'{role}.log'}"] = 1
    return run


def fuzz(urls: list[str], ca_file: Path, max_examples: int = 10, seed: int = 0, phases: str = PHASES,
         workdir: Path | None = None, include: str | None = None) -> Figures:
    """One run a role, at the same time, each against its own master (verified with `ca_file`);
    `max_examples` a phase and operation."""
    own = workdir is None
    workdir = workdir or Path(tempfile.mkdtemp(prefix="berth-fuzz-"))
    figures = Figures()
    try:
        with ThreadPoolExecutor(len(ROLES)) as pool:
            runs = [pool.submit(schemathesis_run, urls[index % len(urls)], role, max_examples, seed + index,
                                phases, workdir / role, ca_file, include)
                    for index, role in enumerate(ROLES)]
            figures.runs = [run.result() for run in runs]
    finally:
        if own and not figures.failures:
            shutil.rmtree(workdir, ignore_errors=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=5000, help="fail below this many (all roles)")
    parser.add_argument("--max-examples", type=int, default=2,
                        help="a phase and operation (2: 160,000 requests)")
    parser.add_argument("--phases", default=PHASES)
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100_000)
    parser.add_argument("--include", help="only the paths this regular expression finds")
    parser.add_argument("--keep", type=Path, help="keep Schemathesis' logs and reports in this directory")
    args = parser.parse_args()
    interrupt_on_sigterm()
    print(machine_header())
    print(f"schemathesis, every check, phases {args.phases}, --max-examples {args.max_examples}, "
          f"seed {args.seed}")
    with running_masters(Path(tempfile.mkdtemp(prefix="berth-fuzz-masters-"))) as masters:
        started = time.monotonic()
        urls = [masters.url(i) for i in range(len(masters))]
        figures = fuzz(urls, masters.ca_file, args.max_examples, args.seed, args.phases, args.keep,
                       args.include)
        wall = time.monotonic() - started
    print(figures.report())
    print(f"wall time {wall:.1f} s")
    enough = figures.requests >= args.requests
    if not enough:
        print(f"fewer than {args.requests} requests: raise --max-examples")
    sys.exit(0 if enough and not figures.failures else 1)


if __name__ == "__main__":
    main()
