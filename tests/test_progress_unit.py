"""The waiting commands' display (berth/cli/progress.py) without a master: the plain lines a log
gets from a sequence of states, with no control character; the live display drawn by rich on a
forced terminal; and what `rollout status` and `lab up` give it."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from berth.cli.progress import Progress, counts, is_terminal
from berth.cli.rollouts import rollout_counts
from berth.lab import cli as lab_cli
from berth.lab.hosts import Lab
from tests.harness import control_characters


def plain(*steps: tuple[str, ...]) -> str:
    """What a pipe receives from ("status", text, done, total, plain) and ("say", line) steps."""
    out = io.StringIO()
    with Progress(out) as shown:
        assert not shown.live
        for step in steps:
            if step[0] == "say":
                shown.say(step[1])
            else:
                _, text, done, total, keep = step
                shown.status(text, done, total, plain=keep)
    return out.getvalue()


WAITING = 'Waiting for deployment "web" rollout to finish: '


@pytest.mark.parametrize("steps, lines", [
    # kubectl's rollout lines: each once, when its words change; a count alone is no new line
    ([("status", f"{WAITING}1 out of 3 new replicas have been updated...", 1, 3, True),
      ("status", f"{WAITING}1 out of 3 new replicas have been updated...", 1, 3, True),
      ("status", f"{WAITING}2 out of 3 new replicas have been updated...", 2, 3, True),
      ("status", f"{WAITING}1 of 3 updated replicas are available...", 1, 3, True),
      ("say", 'deployment "web" successfully rolled out')],
     [f"{WAITING}1 out of 3 new replicas have been updated...",
      f"{WAITING}2 out of 3 new replicas have been updated...",
      f"{WAITING}1 of 3 updated replicas are available...",
      'deployment "web" successfully rolled out']),
    # drain's live line is the terminal's only: the log keeps kubectl's lines
    ([("status", "draining node/n0: pods evicted", 0, 2, False),
      ("say", "evicting pod default/a"),
      ("status", "draining node/n0: pods evicted", 1, 2, False),
      ("say", "pod/a evicted"),
      ("say", "node/n0 drained")],
     ["evicting pod default/a", "pod/a evicted", "node/n0 drained"]),
    # lab up: a line each time the state changes
    ([("status", lab_cli.up_line(0, 2), 0, 2, True), ("status", lab_cli.up_line(1, 2), 1, 2, True),
      ("status", lab_cli.up_line(2, 2), 2, 2, True), ("say", "h1  10.0.0.2  running"),
      ("status", lab_cli.up_line(2, 2, "running"), None, None, True),
      ("status", lab_cli.up_line(2, 2, "done", 0), 0, 2, True),
      ("status", lab_cli.up_line(2, 2, "done", 0), 0, 2, True),
      ("status", lab_cli.up_line(2, 2, "done", 2), 2, 2, True)],
     ["hosts 0/2", "hosts 1/2", "hosts 2/2", "h1  10.0.0.2  running", "hosts 2/2, playbook running",
      "hosts 2/2, playbook done, nodes Ready 0/2", "hosts 2/2, playbook done, nodes Ready 2/2"]),
    ([], []),
])
def test_plain_mode_writes_a_line_per_change_and_no_control_character(steps: list, lines: list[str]) -> None:
    out = plain(*steps)
    assert out.splitlines() == lines
    assert not control_characters(out)


def test_plain_mode_keeps_the_last_status_of_a_failure_once() -> None:
    out = io.StringIO()
    with pytest.raises(RuntimeError), Progress(out) as shown:
        shown.status("waiting", 1, 3)
        raise RuntimeError("boom")
    assert out.getvalue() == "waiting\n"  # printed when it came, not again


def live(steps: list[tuple[str, ...]], fail: bool = False) -> str:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100, color_system="standard")
    shown = Progress(console=console)
    assert shown.live
    try:
        with shown:
            for step in steps:
                if step[0] in ("say", "err"):
                    shown.say(step[1], err=step[0] == "err")
                else:
                    shown.status(step[1], step[2], step[3], plain=step[4] if len(step) > 4 else True)
            if fail:
                raise RuntimeError("boom")
    except RuntimeError:
        pass
    return screen.getvalue()


def test_live_mode_renders_on_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    screen = live([("status", "pods evicted", 1, 4), ("say", "pod/a evicted"), ("err", "a budget said no"),
                   ("status", "pods evicted", 2, 4), ("say", "node/n0 drained")])
    assert capsys.readouterr().err == "a budget said no\n"  # stderr stays stderr (not a terminal here)
    assert "\x1b[" in screen and "pod/a evicted\n" in screen and "node/n0 drained\n" in screen
    assert "pods evicted" in screen and "1/4" in screen
    # transient: the live line is gone at the end, and a success leaves no status behind
    assert not screen.rstrip("\n").endswith("4")
    failed = live([("status", f"{WAITING}0 of 2 updated replicas are available...", 0, 2)], fail=True)
    assert failed.endswith(f"{WAITING}0 of 2 updated replicas are available...\n")  # the error's context
    quiet = live([("status", "nothing to show", None, None, False)], fail=True)
    assert not quiet.endswith("nothing to show\n")  # a terminal-only status stays terminal-only


def test_only_a_real_terminal_is_live(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not is_terminal(io.StringIO())
    main, other = os.openpty()
    try:
        with os.fdopen(other, "w", closefd=False) as tty:
            monkeypatch.setenv("TERM", "xterm")
            assert is_terminal(tty) and Progress(tty).live
            monkeypatch.setenv("TERM", "dumb")
            assert not is_terminal(tty) and not Progress(tty).live
    finally:
        os.close(main)
        os.close(other)


@pytest.mark.parametrize("done, total, text", [
    (None, None, ""), (2, 4, "2/4"), (3, None, "3"), (0, 0, "0/0")])
def test_counts(done: int | None, total: int | None, text: str) -> None:
    assert counts(done, total) == text


@pytest.mark.parametrize("spec, status, expected", [
    ({"replicas": 3}, {"updatedReplicas": 1, "availableReplicas": 3}, (1, 3)),  # new ones still coming
    ({"replicas": 3}, {"updatedReplicas": 3, "availableReplicas": 2}, (2, 3)),
    ({"replicas": 3}, {"updatedReplicas": 3, "availableReplicas": 4}, (3, 3)),  # an old one still there
    ({}, {}, (0, 1)),  # replicas default to 1
])
def test_rollout_counts(spec: dict, status: dict, expected: tuple[int, int]) -> None:
    assert rollout_counts({"spec": spec, "status": status}) == expected


def test_lab_up_says_each_step_once_in_plain_mode(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`berth lab up`'s output through a pipe, its hosts, playbook and nodes played by stand-ins
    (no lab is made here: test_lab.py makes real ones)."""
    monkeypatch.setattr(lab_cli, "_lab", lambda name: Lab(name=name, hosts=2, subnet="10.99.0.0/24"))

    def hosts_up(lab: Lab, on_host) -> None:
        for made in range(1, lab.hosts + 1):
            on_host(made)

    def nodes_ready(lab: Lab, on_view) -> dict[str, bool]:
        for view in ({}, {"h1": True, "h2": False}, {"h1": True, "h2": False}, {"h1": True, "h2": True}):
            on_view(view)
        return view

    monkeypatch.setattr(lab_cli.lab_hosts, "up", hosts_up)
    monkeypatch.setattr(lab_cli.lab_hosts, "host_status", lambda lab: {
        h: {"address": f"10.99.0.{i + 2}", "running": True} for i, h in enumerate(lab.host_names())})
    monkeypatch.setattr(lab_cli.lab_deploy, "run_playbook", lambda lab: "TASK [x]\nPLAY RECAP\nh1 : ok=3\n")
    monkeypatch.setattr(lab_cli.lab_deploy, "write_cli_config", lambda lab, path: None)
    monkeypatch.setattr(lab_cli.lab_deploy, "wait_nodes_ready", nodes_ready)
    config = tmp_path / "config.yaml"
    result = CliRunner().invoke(lab_cli.lab_group, ["up", "--name", "px", "--hosts", "2",
                                                    "--config-out", str(config)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "hosts 0/2", "hosts 1/2", "hosts 2/2", "h1  10.99.0.2  running", "h2  10.99.0.3  running",
        "hosts 2/2, playbook running", "PLAY RECAP", "h1 : ok=3", "hosts 2/2, playbook done, nodes Ready 0/2",
        "hosts 2/2, playbook done, nodes Ready 1/2", "hosts 2/2, playbook done, nodes Ready 2/2",
        f"every node is Ready; CLI config: {config}"]
    assert not control_characters(result.output)
