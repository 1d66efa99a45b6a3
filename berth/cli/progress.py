"""What a person sees while a command waits: `rollout status`, `drain`, `wait`, `lab up`.

On a terminal the state is one live line (a spinner, the words, a bar and `done/total`) redrawn
in place by rich, and the lines that stay (`pod/x evicted`) are printed above it. Anywhere else
(a pipe, a file, a CI log, `TERM=dumb`) nothing is animated and no control character is written:
a state is one plain line, printed only when its words change, so a log reads as kubectl's does.

Commands say two things: `status()`, what they wait for now (transient on a terminal; a plain
line only when `plain`), and `say()`, a line that stays in both modes. The decision between the
two modes is made here once, from the stream itself, never from rich's guess (FORCE_COLOR in an
environment would make rich animate into a pipe).
"""

from __future__ import annotations

import os
import sys
from types import TracebackType
from typing import Any, TextIO

import click
from rich.console import Console
from rich.progress import BarColumn, SpinnerColumn, TaskID, TextColumn
from rich.progress import Progress as RichProgress

REFRESH_PER_SECOND = 8


def is_terminal(stream: TextIO) -> bool:
    """Whether `stream` is a terminal that can be redrawn in place (not a dumb one)."""
    try:
        attached = stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False
    return attached and os.environ.get("TERM", "") != "dumb"


def counts(done: int | None, total: int | None) -> str:
    """`2/4` for the live line; nothing when there is nothing to count."""
    if done is None:
        return ""
    return f"{done}/{total}" if total is not None else str(done)


class Progress:
    """One command's display: a context manager, live on a terminal, plain lines otherwise.

    `file` None writes to the process's stdout at the time of each write (click's, so a test's
    CliRunner sees it); `console` (a rich Console) forces the live mode onto it, as the tests do.
    """

    def __init__(self, file: TextIO | None = None, *, console: Console | None = None) -> None:
        self._file = file
        self._console = console
        self.live = console is not None or is_terminal(file or sys.stdout)
        self._last: str | None = None  # the words of the latest status
        self._last_plain = False
        self._printed: str | None = None  # the latest status printed as a plain line
        self._bar: RichProgress | None = None
        self._task: TaskID | None = None

    # --- the two things a command says ------------------------------------------------------

    def status(self, text: str, done: int | None = None, total: int | None = None, *,
               plain: bool = True) -> None:
        """What is waited for now. On a terminal it replaces the live line; otherwise, when `plain`,
        it is printed if its words differ from the last printed (a count alone changing prints
        nothing: it is in the words when it matters, as kubectl's rollout lines have it)."""
        self._last, self._last_plain = text, plain
        if not self.live:
            if plain and text != self._printed:
                self._write(text)
                self._printed = text
            return
        fields = {"description": text, "completed": done or 0, "total": total, "counts": counts(done, total)}
        if self._bar is None:
            self._start(fields)
        else:
            assert self._task is not None
            self._bar.update(self._task, **fields)

    def say(self, line: str, *, err: bool = False) -> None:
        """A line that stays: above the live line on a terminal, as it is otherwise."""
        if self._bar is None:
            self._write(line, err=err)
        elif err:
            # sys.stderr itself: on a terminal, rich's proxy of it prints above the live line (click's
            # echo would reach the terminal under it, breaking the line); elsewhere, the stream
            print(line, file=sys.stderr, flush=True)
        else:
            self._bar.console.print(line, markup=False, highlight=False, soft_wrap=True)

    # --- the edges ------------------------------------------------------------------------------

    def _write(self, line: str, err: bool = False) -> None:
        if err or self._file is None:
            click.echo(line, err=err)
        else:
            click.echo(line, file=self._file)

    def _start(self, fields: dict[str, Any]) -> None:
        """The live line, drawn first with its first state (never empty)."""
        console = self._console or Console(file=self._file or sys.stdout, force_terminal=True,
                                           highlight=False)
        self._bar = RichProgress(SpinnerColumn(), TextColumn("{task.description}"),
                                 BarColumn(bar_width=24), TextColumn("{task.fields[counts]}"),
                                 console=console, transient=True, refresh_per_second=REFRESH_PER_SECOND,
                                 redirect_stderr=is_terminal(sys.stderr))
        self._task = self._bar.add_task(fields.pop("description"), **fields)
        self._bar.start()

    def close(self, failed: bool = False) -> None:
        """Ends the live line. When the command failed, its last plain status stays on screen, so
        the error printed next has its context (a plain log already has it)."""
        if self._bar is None:
            return
        bar, self._bar = self._bar, None
        bar.stop()
        if failed and self._last_plain and self._last is not None:
            bar.console.print(self._last, markup=False, highlight=False, soft_wrap=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 _trace: TracebackType | None) -> None:
        quiet_exit = isinstance(error, SystemExit) and error.code in (0, None)
        self.close(failed=kind is not None and not quiet_exit)

