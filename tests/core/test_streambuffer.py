"""StreamBuffer: every operation, the limit's edges, separators, EOF/exception paths, flow.

The machine is driven synchronously: a read either answers (bytes or an
exception) or says NEED_DATA; a driver would park, and calls ``stop_waiting``
when the reader leaves.
"""

from __future__ import annotations

import asyncio
import pickle

import pytest

from sansloop.core.streambuffer import (
    DEFAULT_LIMIT,
    NEED_DATA,
    PAUSE,
    RESUME,
    WAKE,
    StreamBuffer,
)


def controlled(limit: int = DEFAULT_LIMIT) -> StreamBuffer:
    buf = StreamBuffer(limit)
    buf.controllable = True
    return buf


# -- construction and state ------------------------------------------------------


@pytest.mark.parametrize("limit", [0, -1])
def test_limit_must_be_positive(limit: int) -> None:
    with pytest.raises(ValueError, match=r"^Limit cannot be <= 0$"):
        StreamBuffer(limit)


def test_fresh_state_and_statistics() -> None:
    buf = StreamBuffer()
    stats = buf.statistics()
    assert stats.buffered == 0 and stats.limit == DEFAULT_LIMIT == 65536
    assert not (stats.eof or stats.paused or stats.controllable or stats.waiting)
    assert stats.demand is None and stats.exception is None
    assert not buf.at_eof() and len(buf) == 0
    assert "0 bytes" in repr(buf)


def test_need_data_is_a_named_singleton() -> None:
    assert repr(NEED_DATA) == "NEED_DATA"
    assert pickle.loads(pickle.dumps(NEED_DATA)) is NEED_DATA


# -- feeding ------------------------------------------------------------------------


def test_feed_accepts_bytes_like_and_ignores_empty() -> None:
    buf = StreamBuffer()
    assert buf.feed_data(b"") == 0
    assert buf.feed_data(bytearray(b"ab")) == 0
    assert buf.feed_data(memoryview(b"cd")) == 0
    assert bytes(buf.buffer) == b"abcd"


def test_feed_after_eof_is_the_callers_bug() -> None:
    buf = StreamBuffer()
    buf.feed_eof()
    with pytest.raises(AssertionError, match="feed_data after feed_eof"):
        buf.feed_data(b"x")


def test_feed_wakes_only_a_parked_reader() -> None:
    buf = StreamBuffer()
    assert buf.feed_data(b"a") == 0
    assert buf.read(5) == b"a"
    assert buf.read(5) is NEED_DATA
    assert buf.waiting
    assert buf.feed_data(b"b") == WAKE
    buf.stop_waiting()
    assert buf.read(5) == b"b"


def test_eof_and_exception_wake_a_parked_reader() -> None:
    buf = StreamBuffer()
    assert buf.feed_eof() == 0
    buf = StreamBuffer()
    assert buf.readline() is NEED_DATA
    assert buf.feed_eof() == WAKE
    buf = StreamBuffer()
    assert buf.set_exception(OSError()) == 0
    buf = StreamBuffer()
    assert buf.readexactly(3) is NEED_DATA
    assert buf.set_exception(OSError()) == WAKE


# -- read(n) ------------------------------------------------------------------------


def test_read_up_to_n_of_what_is_there() -> None:
    buf = StreamBuffer()
    buf.feed_data(b"0123456789")
    assert buf.read(0) == b""
    assert buf.read(3) == b"012"
    assert buf.read(100) == b"3456789"
    assert buf.read(1) is NEED_DATA


def test_read_at_eof_returns_empty() -> None:
    buf = StreamBuffer()
    buf.feed_data(b"xy")
    buf.feed_eof()
    assert not buf.at_eof()
    assert buf.read(1) == b"x"
    assert buf.read(10) == b"y"
    assert buf.at_eof()
    assert buf.read(10) == b""
    assert buf.read(-1) == b""


def test_read_all_waits_for_eof() -> None:
    buf = StreamBuffer()
    buf.feed_data(b"part")
    assert buf.read(-1) is NEED_DATA
    assert buf.feed_data(b"s") == WAKE
    buf.stop_waiting()
    assert buf.read() is NEED_DATA
    assert buf.feed_eof() == WAKE
    buf.stop_waiting()
    assert buf.read() == b"parts"


def test_read_raises_the_exception_first() -> None:
    buf = StreamBuffer()
    buf.feed_data(b"data")
    err = ConnectionResetError("gone")
    buf.set_exception(err)
    for op in (lambda: buf.read(0), lambda: buf.read(2), lambda: buf.read(-1)):
        with pytest.raises(ConnectionResetError) as info:
            op()
        assert info.value is err
    assert bytes(buf.buffer) == b"data"


# -- readexactly --------------------------------------------------------------------


def test_readexactly_checks_size_before_exception() -> None:
    buf = StreamBuffer()
    buf.set_exception(OSError("late"))
    with pytest.raises(ValueError, match=r"^readexactly size can not be less than zero$"):
        buf.readexactly(-1)
    with pytest.raises(OSError, match="late"):
        buf.readexactly(0)


def test_readexactly_waits_until_n_then_splits() -> None:
    buf = StreamBuffer()
    assert buf.readexactly(0) == b""
    buf.feed_data(b"abc")
    assert buf.readexactly(5) is NEED_DATA
    assert buf.statistics().demand == 5
    assert buf.feed_data(b"d") == 0  # still short: no pointless wake-up
    assert buf.feed_data(b"efg") == WAKE
    buf.stop_waiting()
    assert buf.readexactly(5) == b"abcde"
    assert buf.readexactly(2) == b"fg"
    assert len(buf) == 0


def test_readexactly_at_eof_gives_the_partial() -> None:
    buf = StreamBuffer()
    buf.feed_data(b"abc")
    buf.feed_eof()
    with pytest.raises(asyncio.IncompleteReadError) as info:
        buf.readexactly(4)
    assert info.value.partial == b"abc" and info.value.expected == 4
    assert str(info.value) == "3 bytes read on a total of 4 expected bytes"
    assert len(buf) == 0 and buf.at_eof()


# -- readuntil / readline -------------------------------------------------------------


@pytest.mark.parametrize("separator", [b"", (), (b"\n", b"")])
def test_bad_separators(separator: object) -> None:
    buf = StreamBuffer()
    buf.set_exception(OSError())  # the separator is checked first
    message = (
        "Separator should contain at least one element"
        if separator == ()
        else "Separator should be at least one-byte string"
    )
    with pytest.raises(ValueError, match=f"^{message}$"):
        buf.readuntil(separator)


def test_readuntil_returns_through_the_separator() -> None:
    buf = StreamBuffer()
    buf.feed_data(b"key: value\r\n\r\nbody")
    assert buf.readuntil(b"\r\n") == b"key: value\r\n"
    assert buf.readuntil(b"\r\n") == b"\r\n"
    assert buf.readuntil(b"\r\n") is NEED_DATA
    buf.stop_waiting()
    assert bytes(buf.buffer) == b"body"


def test_readuntil_separator_split_across_chunks() -> None:
    buf = StreamBuffer()
    for piece in (b"ab", b"cS", b"E"):
        buf.feed_data(piece)
        assert buf.readuntil(b"SEP") is NEED_DATA
        buf.stop_waiting()
    buf.feed_data(b"Ptail")
    assert buf.readuntil(b"SEP") == b"abcSEP"
    assert bytes(buf.buffer) == b"tail"


def test_readuntil_tuple_shortest_match_wins() -> None:
    buf = StreamBuffer()
    buf.feed_data(b"aa||bb|cc")
    assert buf.readuntil((b"||", b"|")) == b"aa|"
    assert buf.readuntil((b"bb|", b"|")) == b"|"
    # Two separators ending at the same place: the shorter one is the match.
    assert buf.readuntil((b"b|", b"bb|")) == b"bb|"
    assert buf.readuntil([b"c"][0]) == b"c"


def test_readuntil_at_eof_without_separator() -> None:
    buf = StreamBuffer()
    buf.feed_data(b"no end\r")
    buf.feed_eof()
    with pytest.raises(asyncio.IncompleteReadError) as info:
        buf.readuntil(b"\r\n")
    assert info.value.partial == b"no end\r" and info.value.expected is None
    assert buf.at_eof()


def test_readuntil_complete_message_wins_over_eof() -> None:
    buf = StreamBuffer()
    buf.feed_data(b"msg!rest")
    buf.feed_eof()
    assert buf.readuntil(b"!") == b"msg!"
    with pytest.raises(asyncio.IncompleteReadError):
        buf.readuntil(b"!")


def test_readuntil_limit_edges_found() -> None:
    # A separator starting exactly at the limit is fine; one byte later is not.
    buf = StreamBuffer(limit=4)
    buf.feed_data(b"abcd\nabcde\n")
    assert buf.readuntil() == b"abcd\n"
    with pytest.raises(asyncio.LimitOverrunError) as info:
        buf.readuntil()
    assert info.value.consumed == 5
    assert str(info.value) == "Separator is found, but chunk is longer than limit"
    assert bytes(buf.buffer) == b"abcde\n"  # kept for the caller


def test_readuntil_limit_edges_not_found() -> None:
    buf = StreamBuffer(limit=4)
    buf.feed_data(b"abcd")
    assert buf.readuntil() is NEED_DATA  # 4 bytes, none of them a separator start: ok
    buf.stop_waiting()
    buf.feed_data(b"e")
    with pytest.raises(asyncio.LimitOverrunError) as info:
        buf.readuntil()
    assert info.value.consumed == 5
    assert str(info.value) == "Separator is not found, and chunk exceed the limit"
    assert bytes(buf.buffer) == b"abcde"


def test_readuntil_long_separator_counts_what_could_start_it() -> None:
    # With a 3-byte separator the last 2 bytes may be its beginning: they are
    # not counted against the limit yet.
    buf = StreamBuffer(limit=4)
    buf.feed_data(b"abcdef")
    assert buf.readuntil(b"XYZ") is NEED_DATA
    buf.stop_waiting()
    buf.feed_data(b"g")
    with pytest.raises(asyncio.LimitOverrunError) as info:
        buf.readuntil(b"XYZ")
    assert info.value.consumed == 5
    # A tuple counts by its longest separator, and overruns by its shortest match.
    buf = StreamBuffer(limit=4)
    buf.feed_data(b"abcdefg")
    assert buf.readuntil((b"XYZW", b"Q")) is NEED_DATA


def test_readuntil_exception_after_separator_check() -> None:
    buf = StreamBuffer()
    buf.feed_data(b"line\n")
    buf.set_exception(EOFError("x"))
    with pytest.raises(EOFError):
        buf.readuntil()
    with pytest.raises(EOFError):
        buf.readline()


def test_readline_partial_at_eof_then_empty() -> None:
    buf = StreamBuffer()
    buf.feed_data(b"one\ntwo")
    buf.feed_eof()
    assert buf.readline() == b"one\n"
    assert buf.readline() == b"two"
    assert buf.readline() == b""
    assert buf.at_eof()


def test_readline_overrun_found_drops_through_the_newline() -> None:
    buf = StreamBuffer(limit=3)
    buf.feed_data(b"toolong\nok\n")
    with pytest.raises(ValueError, match=r"^Separator is found, but chunk is longer than limit$"):
        buf.readline()
    assert buf.readline() == b"ok\n"


def test_readline_overrun_not_found_clears_everything() -> None:
    buf = StreamBuffer(limit=3)
    buf.feed_data(b"abcdefgh")
    with pytest.raises(ValueError, match=r"^Separator is not found, and chunk exceed the limit$"):
        buf.readline()
    assert len(buf) == 0
    buf.feed_data(b"x\n")
    assert buf.readline() == b"x\n"


def test_readline_overrun_keeps_the_limit_error_as_context() -> None:
    buf = StreamBuffer(limit=1)
    buf.feed_data(b"abc")
    with pytest.raises(ValueError) as info:
        buf.readline()
    assert isinstance(info.value.__context__, asyncio.LimitOverrunError)


def test_scan_restarts_after_consumption() -> None:
    buf = StreamBuffer()
    buf.feed_data(b"aaaa")
    assert buf.readuntil(b"b") is NEED_DATA
    buf.stop_waiting()
    assert buf.read(4) == b"aaaa"
    buf.feed_data(b"xb")
    assert buf.readuntil(b"b") == b"xb"


# -- one parked reader at a time ----------------------------------------------------


def test_second_parked_reader_is_refused() -> None:
    buf = StreamBuffer()
    assert buf.readexactly(4) is NEED_DATA
    for op, name in (
        (lambda: buf.read(1), "read"),
        (buf.readline, "readuntil"),
        (lambda: buf.readuntil(b"!"), "readuntil"),
        (lambda: buf.readexactly(2), "readexactly"),
    ):
        with pytest.raises(RuntimeError) as info:
            op()
        assert str(info.value) == (
            f"{name}() called while another coroutine is already waiting for incoming data"
        )
    assert buf.statistics().demand == 4  # the parked reader is untouched
    buf.feed_data(b"ab")
    assert buf.read(1) == b"a"  # answerable at once: answered


# -- flow control --------------------------------------------------------------------


def test_no_pause_without_a_controllable_transport() -> None:
    buf = StreamBuffer(limit=2)
    assert buf.feed_data(b"x" * 100) == 0
    assert buf.flow() == 0 and not buf.paused


def test_pause_above_twice_the_limit_resume_at_the_limit() -> None:
    buf = controlled(limit=4)
    assert buf.feed_data(b"x" * 8) == 0  # exactly 2*limit: not yet
    assert buf.feed_data(b"x") == PAUSE
    assert buf.paused
    assert buf.feed_data(b"x") == 0  # pausing again would break alternation
    assert buf.read(5) == b"xxxxx"  # 5 left > limit
    assert buf.flow() == 0
    assert buf.read(1) == b"x"  # 4 left == limit
    assert buf.flow() == RESUME
    assert not buf.paused and buf.flow() == 0


def test_parking_resumes_a_paused_transport() -> None:
    buf = controlled(limit=2)
    buf.feed_data(b"abcdef")
    assert buf.paused
    assert buf.readuntil(b"!!!!!") is NEED_DATA  # 6 bytes, a 5-byte separator may start at 2
    assert buf.flow() == RESUME


def test_readexactly_keeps_reading_until_n_then_pauses() -> None:
    limit = 4
    n = 40
    buf = controlled(limit)
    actions = []
    assert buf.readexactly(n) is NEED_DATA
    assert buf.flow() == 0
    for _ in range(n // 3):
        actions.append(buf.feed_data(b"abc"))
    assert actions == [0] * (n // 3)  # 39 bytes: no pause, no wake
    assert buf.feed_data(b"abc") == WAKE | PAUSE  # 42 >= 40
    assert buf.feed_data(b"more") == WAKE  # still one paused state
    buf.stop_waiting()
    assert len(buf.readexactly(n)) == n
    assert buf.flow() == 0  # 6 left > limit
    assert buf.read(2) == b"bc"
    assert buf.flow() == RESUME


def test_readexactly_small_n_uses_the_usual_high_water() -> None:
    buf = controlled(limit=4)
    assert buf.readexactly(3) is NEED_DATA
    assert buf.feed_data(b"x" * 9) == WAKE | PAUSE


def test_cancelled_readexactly_restores_the_usual_high_water() -> None:
    buf = controlled(limit=4)
    assert buf.readexactly(100) is NEED_DATA
    assert buf.feed_data(b"x" * 20) == 0
    buf.stop_waiting()  # the reader was cancelled
    assert buf.feed_data(b"x") == PAUSE


def test_paused_readexactly_releases_only_while_short() -> None:
    buf = controlled(limit=2)
    buf.feed_data(b"x" * 10)
    assert buf.paused
    assert buf.readexactly(10) == b"x" * 10
    assert buf.flow() == RESUME
    buf.feed_data(b"y" * 10)
    assert buf.paused
    assert buf.readexactly(12) is NEED_DATA
    assert buf.flow() == RESUME  # 10 < 12: the reader needs more
    buf.stop_waiting()


def test_no_flow_changes_after_eof() -> None:
    buf = controlled(limit=2)
    buf.feed_data(b"x" * 10)
    buf.feed_eof()
    assert buf.read(10) == b"x" * 10
    assert buf.flow() == 0


def test_losing_control_forgets_the_pause() -> None:
    buf = controlled(limit=1)
    buf.feed_data(b"abc")
    assert buf.paused
    buf.controllable = False
    assert not buf.paused and buf.flow() == 0


def test_repr_shows_the_state() -> None:
    buf = controlled(limit=1)
    buf.feed_data(b"abc")
    assert buf.readexactly(5) is NEED_DATA
    buf.set_exception(OSError("e"))
    text = repr(buf)
    for part in ("3 bytes", "limit=1", "paused", "waiting demand=5", "exception=OSError('e')"):
        assert part in text


def test_docs_blocking_driver() -> None:
    """docs/core-streams.md's driver without an event loop, run as written."""
    import pathlib
    import re
    import socket

    page = pathlib.Path(__file__).parents[2] / "docs" / "core-streams.md"
    code = re.findall(r"```python\n(.*?)```", page.read_text(), re.S)[0]
    namespace: dict[str, object] = {}
    exec(compile(code, str(page), "exec"), namespace)
    near, far = socket.socketpair()
    with near, far:
        far.sendall(b"first\nsecond\nno newline")
        far.shutdown(socket.SHUT_WR)
        got = list(namespace["lines"](near))  # type: ignore[operator]
    assert got == [b"first\n", b"second\n", b"no newline"]


def test_never_pauses_under_a_starving_parked_reader() -> None:
    # Bytes buffered before there was a transport to pause; then a reader
    # parks with more than 2*limit buffered (a separator longer than the
    # limit may still be arriving). Pausing now would starve it forever.
    buf = StreamBuffer(limit=4)
    buf.feed_data(b"x" * 12)
    buf.controllable = True
    assert buf.readuntil(b"0123456789") is NEED_DATA
    assert buf.flow() == 0 and not buf.paused
    assert buf.feed_data(b"y") == WAKE | PAUSE  # as asyncio: feeding pauses...
    buf.stop_waiting()
    assert buf.readuntil(b"0123456789") is NEED_DATA
    assert buf.flow() == RESUME  # ...and the parked reader resumes at once
