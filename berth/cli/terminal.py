"""Joins this process's terminal (or pipes) to a session: `berth exec -i`, `exec -it`.

With a terminal, the local one goes raw, as `ssh -t` makes it: every key, Ctrl-C included,
goes to the command's terminal on the host, which does the echoing and line editing; a
resize of the local window is passed on. Output is written from a second thread, so a
command that writes while waiting for input shows at once.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import sys
import termios
import threading
import tty
from collections.abc import Callable, Iterator
from typing import BinaryIO

from berth.errors import BerthError
from berth.pod_session import OutputReader, PodSession

INPUT_CHUNK = 16 * 1024
POLL_SECONDS = 0.2  # how soon the input loop notices the command ended


def terminal_size() -> tuple[int, int]:
    """(rows, columns) of the terminal this process writes to."""
    size = shutil.get_terminal_size()
    return size.lines, size.columns


@contextlib.contextmanager
def raw_terminal(fd: int) -> Iterator[None]:
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _writer(stream: BinaryIO) -> Callable[[bytes], None]:
    def write(data: bytes) -> None:
        stream.write(data)
        stream.flush()

    return write


def attach(session: PodSession, *, send_stdin: bool, tty_mode: bool) -> int:
    """Runs until the command ends; its exit code (1 if the session broke, with the reason on
    stderr)."""
    output = OutputReader(session, _writer(sys.stdout.buffer), _writer(sys.stderr.buffer))
    output.start()
    resized = threading.Event()
    previous = None
    if tty_mode:
        previous = signal.signal(signal.SIGWINCH, lambda _s, _f: resized.set())
    try:
        if send_stdin:
            try:
                fd = sys.stdin.fileno()
            except (OSError, ValueError):  # input that is no file (a test's): read it as it comes
                _send_stream(session, sys.stdin.buffer)
            else:
                with raw_terminal(fd) if tty_mode else contextlib.nullcontext():
                    _pump_input(session, fd, output.done, resized)
        output.done.wait()
    except KeyboardInterrupt:  # without a terminal, Ctrl-C ends the command, as kubectl's does
        session.close()
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGWINCH, previous)
    output.join(timeout=5)
    if output.error is not None:
        if isinstance(output.error, BerthError):
            print(f"error: {output.error}", file=sys.stderr)
            return 1
        raise output.error
    return session.exit_code if session.exit_code is not None else 1


def _pump_input(session: PodSession, fd: int, done: threading.Event, resized: threading.Event) -> None:
    """Sends what comes on `fd` until its end (then the command's input ends too) or the command's."""
    while not done.is_set():
        ready, _, _ = select.select([fd], [], [], POLL_SECONDS)
        if resized.is_set():  # before the input that came after the resize
            resized.clear()
            with contextlib.suppress(BerthError):
                session.resize(*terminal_size())
        if not ready:
            continue
        data = os.read(fd, INPUT_CHUNK)
        try:
            session.send(data, eof=not data)
        except BerthError:
            return  # the command ended while this was on its way: its output says how
        if not data:
            return



def _send_stream(session: PodSession, stream: BinaryIO) -> None:
    try:
        while data := stream.read(INPUT_CHUNK):
            session.send(data)
        session.send(b"", eof=True)
    except BerthError:
        return
