"""Sessions' parts that need no host: the framing both sides speak, and the master's book."""

from __future__ import annotations

import pytest

from berth.frames import FrameError, FrameReader, Stream, end_frame, frame
from master.api.session_book import SessionBook
from master.errors import ApiError
from master.runtime.ssh import OpenChannel
from tests.harness import wait_until


class FakeChannel:
    closed = False

    def close(self) -> None:
        self.closed = True


def test_frames_survive_any_cut_of_the_stream() -> None:
    stream = frame(Stream.STDOUT, b"out") + frame(Stream.KEEPALIVE) + frame(Stream.STDERR, b"err") + \
        end_frame(7)
    for cut in range(1, len(stream)):  # every way the bytes may arrive in two pieces
        reader = FrameReader()
        frames = [*reader.feed(stream[:cut]), *reader.feed(stream[cut:])]
        assert frames == [(Stream.STDOUT, b"out"), (Stream.KEEPALIVE, b""), (Stream.STDERR, b"err"),
                          (Stream.END, b'{"exitCode": 7}')]
        assert reader.pending == 0
    with pytest.raises(FrameError):
        list(FrameReader().feed(b"HTTP/1.1 502 Bad Gateway\r\n"))  # a proxy's page is no frame


def _opened(released: list[str], name: str) -> tuple[OpenChannel, FakeChannel]:
    channel = FakeChannel()
    return OpenChannel(channel, lambda: released.append(name)), channel  # type: ignore[arg-type]


def test_a_session_answers_only_its_owner_one_reader_and_gives_back_what_it_holds() -> None:
    book, released = SessionBook(attach_seconds=60), []
    opened, channel = _opened(released, "host")
    session = book.add("alice", opened, tty=True, stdin=True, release_slot=lambda: released.append("slot"))
    for owner, session_id in (("mallory", session.id), ("alice", "x" * 32), ("alice", "../../etc")):
        with pytest.raises(ApiError) as refused:
            book.find(session_id, owner)
        assert refused.value.status == 404  # someone else's session does not exist for them
    assert book.attach(session.id, "alice") is session
    with pytest.raises(ApiError) as second:
        book.attach(session.id, "alice")
    assert second.value.status == 409
    book.close(session.id)
    book.close(session.id)  # twice: gives back once
    assert channel.closed and sorted(released) == ["host", "slot"] and len(book) == 0


def test_a_session_nobody_reads_is_closed() -> None:
    book, released = SessionBook(attach_seconds=0.2), []
    opened, channel = _opened(released, "host")
    book.add("alice", opened, tty=False, stdin=False, release_slot=lambda: released.append("slot"))
    kept, _ = _opened(released, "kept")
    read = book.add("alice", kept, tty=False, stdin=False, release_slot=lambda: None)
    book.attach(read.id, "alice")
    wait_until(lambda: len(book) == 1, 10, what="the unread session closed")
    assert channel.closed and sorted(released) == ["host", "slot"]
    book.close_all()
    assert len(book) == 0
