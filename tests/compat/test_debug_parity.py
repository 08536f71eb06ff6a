"""Debug mode: the same warnings and log records as asyncio, for the same program.

Each test runs one small program on stdlib asyncio (the reference) and on
sansloop in loop mode and in full mode, and compares what the program leaves
behind: records of the ``asyncio`` logger (level, message, the context keys
of an exception-handler report, the exception type) and warnings (category,
message). Object reprs are normalised first (paths, line numbers, addresses,
fds, task numbers, times, the loop's class name), since they name each
implementation's own internals; the wording, the keys and the order must be
asyncio's.

Covered: the three ways to turn debug mode on (``set_debug``,
``PYTHONASYNCIODEBUG``, ``run(debug=True)``) and coroutine origin tracking;
never-awaited coroutines; never-retrieved exceptions of futures and tasks;
pending tasks destroyed; unclosed loops, transports and stream writers
(ResourceWarning); slow callbacks (``slow_callback_duration``); an error in a
callback; non-thread-safe calls from another thread; the debug records of a
connection's life (address lookups, serving, accepting, connecting, closing).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import sansloop
import sansloop.compat

FLAVOURS = {
    "asyncio": asyncio.new_event_loop,
    "loop": sansloop.new_event_loop,
    "full": sansloop.compat.new_event_loop,
}
OURS = ["loop", "full"]


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


_NORMALISE = [
    (re.compile(r'File "[^"]+", line \d+'), "File F"),
    (re.compile(r"(?:/[\w.\-<>]+)+\.py(?::\d+)?"), "F"),
    (re.compile(r"0x[0-9a-fA-F]+"), "ADDR"),
    (re.compile(r"Task-\d+"), "Task-N"),
    (re.compile(r"fd=-?\d+"), "fd=N"),
    (re.compile(r"\d+\.\d+"), "NUM"),
    # the loop's class: asyncio's base class or Unix subclass, or ours
    (
        re.compile(r"\b(?:_UnixSelectorEventLoop|BaseEventLoop|SelectorEventLoop|EventLoop)\b"),
        "LOOP",
    ),
    # the done-callback run_until_complete() adds: asyncio's name, or ours
    (re.compile(r"\b(?:_run_until_complete_cb|_stop_when_done)\b"), "DONE_CB"),
    # reprlib's cut in the middle of an argument's repr (its tail is a path)
    (re.compile(r"\.\.\.[^()<>]*>?\)"), "...)"),
    # a task's wakeup callback: the C task's name, or the pure-Python one's
    (re.compile(r"Task\.(?:task_wakeup|__wakeup|_Task__wakeup)\(\)"), "Task.WAKEUP()"),
]


def normalise(text: str) -> str:
    for pattern, replacement in _NORMALISE:
        text = pattern.sub(replacement, text)
    return text


def _shape(record: logging.LogRecord) -> tuple[str, str, str, tuple[str, ...], str | None]:
    """(logger, level, first line, context keys, exception type) of a record."""
    lines = record.getMessage().split("\n")
    keys = tuple(m.group(1) for line in lines[1:] if (m := re.match(r"(\w+): ", line)))
    exc = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else None
    return record.name, record.levelname, normalise(lines[0]), keys, exc


@contextlib.contextmanager
def observed(
    level: int = logging.WARNING,
) -> Iterator[tuple[_Records, list[warnings.WarningMessage]]]:
    """Capture the asyncio logger's records at *level* and up, and every warning."""
    handler = _Records()
    logger = logging.getLogger("asyncio")
    saved = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                yield handler, caught
            finally:
                gc.collect()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved)


def on_every_flavour(program: Callable[[Callable[[], Any]], Any], flavour: str) -> tuple[Any, Any]:
    """(asyncio's result, *flavour*'s result) of ``program(make_loop)``."""
    return program(FLAVOURS["asyncio"]), program(FLAVOURS[flavour])


def debug_loop(make: Callable[[], Any]) -> Any:
    loop = make()
    loop.set_debug(True)
    return loop


# -- turning debug mode on ------------------------------------------------------


@pytest.mark.parametrize("flavour", OURS)
def test_debug_mode_sources(flavour, monkeypatch):
    def program(make):
        seen = {}
        loop = make()
        seen["default"] = loop.get_debug()
        loop.close()
        with monkeypatch.context() as patch:
            patch.setenv("PYTHONASYNCIODEBUG", "1")
            loop = make()
            seen["env"] = loop.get_debug()
            loop.close()

        async def main():
            return asyncio.get_running_loop().get_debug(), sys.get_coroutine_origin_tracking_depth()

        runner = asyncio.Runner if make is FLAVOURS["asyncio"] else sansloop.compat.Runner
        with runner(debug=True, loop_factory=make) as r:
            seen["run(debug=True)"] = r.run(main())
        seen["tracking after"] = sys.get_coroutine_origin_tracking_depth()
        return seen

    if sys.flags.dev_mode or sys.flags.ignore_environment:
        pytest.skip("needs PYTHONASYNCIODEBUG to be read and dev mode off")
    monkeypatch.delenv("PYTHONASYNCIODEBUG", raising=False)
    theirs, ours = on_every_flavour(program, flavour)
    assert theirs == {
        "default": False,
        "env": True,
        "run(debug=True)": (True, 10),
        "tracking after": 0,
    }
    assert ours == theirs


# -- coroutines, futures and tasks ------------------------------------------------


@pytest.mark.parametrize("flavour", OURS)
def test_never_awaited_coroutine(flavour):
    async def forgotten():
        pass

    def program(make):
        async def main():
            forgotten()  # the line every report must point at
            gc.collect()

        loop = debug_loop(make)
        with observed() as (_, caught):
            try:
                loop.run_until_complete(main())
            finally:
                loop.close()
        messages = [str(w.message) for w in caught if w.category is RuntimeWarning]
        assert len(messages) == 1, messages
        lines = messages[0].split("\n")
        return lines[0], lines[1], normalise("\n".join(lines[-2:]))

    theirs, ours = on_every_flavour(program, flavour)
    assert theirs[0].endswith("forgotten' was never awaited")
    assert theirs[1] == "Coroutine created at (most recent call last)"
    assert theirs[2].endswith("in main\n    forgotten()  # the line every report must point at")
    assert ours == theirs


def _leave_an_exception_in_a_future(loop: Any) -> None:
    async def main():
        fut = loop.create_future()
        fut.set_exception(ValueError("never looked at"))

    loop.run_until_complete(main())


def _leave_an_exception_in_a_task(loop: Any) -> None:
    async def fails():
        raise ValueError("never looked at")

    async def main():
        task = loop.create_task(fails())
        await asyncio.sleep(0)
        assert task.done()

    loop.run_until_complete(main())


def _destroy_a_pending_task(loop: Any) -> None:
    async def waits():
        await loop.create_future()

    async def main():
        loop.create_task(waits())
        await asyncio.sleep(0)

    loop.run_until_complete(main())


@pytest.mark.parametrize("debug", [True, False], ids=["debug", "no-debug"])
@pytest.mark.parametrize(
    "leave",
    [_leave_an_exception_in_a_future, _leave_an_exception_in_a_task, _destroy_a_pending_task],
    ids=["future-never-retrieved", "task-never-retrieved", "pending-task-destroyed"],
)
@pytest.mark.parametrize("flavour", OURS)
def test_lost_results_are_logged_as_asyncio_logs_them(flavour, leave, debug):
    def program(make):
        loop = make()
        loop.set_debug(debug)
        with observed() as (records, caught):
            try:
                leave(loop)
            finally:
                loop.close()
            gc.collect()
        assert [w.message for w in caught] == []
        return [_shape(r) for r in records.records]

    theirs, ours = on_every_flavour(program, flavour)
    assert len(theirs) == 1
    assert ("source_traceback" in theirs[0][3]) is debug
    assert ours == theirs


def test_lost_result_messages_are_the_expected_ones():
    shapes = {}
    for leave in (
        _leave_an_exception_in_a_future,
        _leave_an_exception_in_a_task,
        _destroy_a_pending_task,
    ):
        loop = debug_loop(sansloop.compat.new_event_loop)
        with observed() as (records, _):
            try:
                leave(loop)
            finally:
                loop.close()
            gc.collect()
        shapes[leave.__name__] = [_shape(r)[2:] for r in records.records]
    assert shapes == {
        "_leave_an_exception_in_a_future": [
            ("Future exception was never retrieved", ("future", "source_traceback"), "ValueError")
        ],
        "_leave_an_exception_in_a_task": [
            ("Task exception was never retrieved", ("future", "source_traceback"), "ValueError")
        ],
        "_destroy_a_pending_task": [
            ("Task was destroyed but it is pending!", ("source_traceback", "task"), None)
        ],
    }


# -- callbacks ---------------------------------------------------------------------


def named_callback() -> None:
    pass


@pytest.mark.parametrize("flavour", OURS)
def test_slow_callbacks_are_reported_with_asyncio_wording(flavour):
    def program(make):
        loop = debug_loop(make)
        loop.slow_callback_duration = 0.0  # every callback is "slow": no real waiting
        fut = loop.create_future()
        loop.call_soon(named_callback)
        loop.call_soon(fut.set_result, 1)
        loop.call_later(0, named_callback)
        handle = loop.call_soon(named_callback)
        handle.cancel()

        async def step():
            await asyncio.sleep(0)

        task = loop.create_task(step())
        with observed() as (records, _):
            try:
                loop.run_until_complete(task)
            finally:
                loop.close()
        return [_shape(r) for r in records.records]

    theirs, ours = on_every_flavour(program, flavour)
    assert [line.split(" took ")[0] for _, _, line, _, _ in theirs] == [
        "Executing <Handle named_callback() at F created at F>",
        "Executing <Handle Future.set_result(1) created at F>",
        "Executing <Task pending name='Task-N' coro=<"
        "test_slow_callbacks_are_reported_with_asyncio_wording.<locals>.program.<locals>.step() running at F>"
        " cb=[DONE_CB() at F] created at F>",
        "Executing <TimerHandle when=NUM named_callback() at F created at F>",
        "Executing <Task finished name='Task-N' coro=<"
        "test_slow_callbacks_are_reported_with_asyncio_wording.<locals>.program.<locals>.step() done, defined at F>"
        " result=None created at F>",
        "Executing <Handle DONE_CB(<Task finishe...) at F created at F>",
    ]
    assert all(line.endswith(" took NUM seconds") for _, _, line, _, _ in theirs)
    assert {(name, level) for name, level, _, _, _ in theirs} == {("asyncio", "WARNING")}
    assert ours == theirs


@pytest.mark.parametrize("debug", [False, True], ids=["no-debug", "debug-fast"])
@pytest.mark.parametrize("flavour", OURS)
def test_fast_callbacks_or_no_debug_mode_report_nothing(flavour, debug):
    def program(make):
        loop = make()
        loop.set_debug(debug)
        loop.slow_callback_duration = 3600.0 if debug else 0.0
        loop.call_soon(loop.stop)
        with observed() as (records, _):
            try:
                loop.run_forever()
            finally:
                loop.close()
        return [_shape(r) for r in records.records]

    assert on_every_flavour(program, flavour) == ([], [])


@pytest.mark.parametrize("flavour", OURS)
def test_error_in_a_callback_reports_where_the_handle_was_made(flavour):
    def fails():
        raise KeyError("boom")

    def program(make):
        loop = debug_loop(make)
        loop.call_soon(fails)
        loop.call_soon(loop.stop)
        with observed() as (records, _):
            try:
                loop.run_forever()
            finally:
                loop.close()
        return [_shape(r) for r in records.records]

    theirs, ours = on_every_flavour(program, flavour)
    assert theirs == [
        (
            "asyncio",
            "ERROR",
            "Exception in callback test_error_in_a_callback_reports_where_the_handle_was_made"
            ".<locals>.fails() at F",
            ("handle", "source_traceback"),
            "KeyError",
        )
    ]
    assert ours == theirs


# -- connections -----------------------------------------------------------------------


@pytest.mark.parametrize("flavour", OURS)
def test_connection_lifecycle_debug_records(flavour):
    transport_names = re.compile(r"<_?(?:Selector)?SocketTransport\b")
    port = re.compile(r":\d+\b|, \d{4,5}\)")

    def program(make):
        loop = debug_loop(make)
        # a lookup slower than this is logged at INFO, not DEBUG: keep the
        # level independent of how loaded the machine is
        loop.slow_callback_duration = 3600.0
        with observed(logging.DEBUG) as (records, _):
            try:

                async def main():
                    await loop.getaddrinfo("localhost", 80, type=1)
                    server = await loop.create_server(asyncio.Protocol, "localhost", 0)
                    port = server.sockets[0].getsockname()[1]
                    transport, _ = await loop.create_connection(asyncio.Protocol, "localhost", port)
                    transport.close()
                    server.close()

                loop.run_until_complete(main())
            finally:
                loop.close()
        shapes = []
        for record in records.records:
            logger, level, line, keys, exc = _shape(record)
            line = port.sub(":PORT", transport_names.sub("<TRANSPORT", line))
            line = re.sub(r" mode=\w+ backend=\w+", "", line)  # our loop's repr says more
            shapes.append((logger, level, line.split(": (<TRANSPORT")[0], keys, exc))
        return shapes

    theirs, ours = on_every_flavour(program, flavour)
    assert [line.split(" ")[0] for _, _, line, _, _ in theirs] == [
        "Get",
        "Getting",
        "Get",
        "Getting",
        "<Server",
        "Get",
        "Getting",
        "<Server",
        "<asyncio.TransportSocket",
        "Close",
    ]
    assert ours == theirs


# -- threads -------------------------------------------------------------------------


@pytest.mark.parametrize("debug", [True, False], ids=["debug", "no-debug"])
@pytest.mark.parametrize("flavour", OURS)
def test_non_threadsafe_calls_from_another_thread(flavour, debug):
    def program(make):
        loop = make()
        loop.set_debug(debug)
        made = []

        def from_another_thread():
            outcomes = {}
            calls = {
                "call_soon": lambda: loop.call_soon(len, ()),
                "call_later": lambda: loop.call_later(3600, len, ()),
                "call_at": lambda: loop.call_at(loop.time() + 3600, len, ()),
                "call_soon_threadsafe": lambda: loop.call_soon_threadsafe(len, ()),
                "create_task": lambda: made.append(loop.create_task(asyncio.sleep(0))),
            }
            for name, call in calls.items():
                try:
                    handle = call()
                    if isinstance(handle, asyncio.Handle):
                        handle.cancel()
                    outcomes[name] = "ok"
                except RuntimeError as exc:
                    outcomes[name] = str(exc)
            return outcomes

        async def main():
            return await loop.run_in_executor(None, from_another_thread)

        with observed(logging.ERROR) as (records, caught):
            try:
                outcomes = loop.run_until_complete(main())
                for task in made:
                    loop.run_until_complete(task)
            finally:
                loop.close()
        return outcomes, [_shape(r) for r in records.records]

    theirs, ours = on_every_flavour(program, flavour)
    refused = "Non-thread-safe operation invoked on an event loop other than the current one"
    expected = refused if debug else "ok"
    assert theirs[0] == {
        "call_soon": expected,
        "call_later": expected,
        "call_at": expected,
        "call_soon_threadsafe": "ok",
        "create_task": expected,
    }
    assert ours == theirs


# -- resources left open ----------------------------------------------------------------


def _unclosed(caught: list[warnings.WarningMessage], target_id: int) -> list[str]:
    return [
        normalise(str(w.message))
        for w in caught
        if w.category is ResourceWarning and id(w.source) == target_id
    ]


@pytest.mark.parametrize("debug", [True, False], ids=["debug", "no-debug"])
@pytest.mark.parametrize("flavour", OURS)
def test_unclosed_loop(flavour, debug):
    def program(make):
        with observed() as (_, caught):
            loop = make()
            loop.set_debug(debug)
            target = id(loop)
            del loop
            gc.collect()
            found = _unclosed(caught, target)
        assert len(found) == 1, found
        return re.sub(r" mode=\w+ backend=\w+", "", found[0])

    theirs, ours = on_every_flavour(program, flavour)
    assert theirs == f"unclosed event loop <LOOP running=False closed=False debug={debug}>"
    assert ours == theirs


@pytest.mark.parametrize("flavour", OURS)
def test_unclosed_transports(flavour):
    def program(make):
        loop = debug_loop(make)
        with observed() as (_, caught):
            try:

                async def main():
                    server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
                    port = server.sockets[0].getsockname()[1]
                    closed, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
                    tcp, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
                    server.close()
                    closed.close()
                    udp, _ = await loop.create_datagram_endpoint(
                        asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
                    )
                    read_end, write_end = os.pipe()
                    reader, _ = await loop.connect_read_pipe(
                        asyncio.Protocol, os.fdopen(read_end, "rb", 0)
                    )
                    writer, _ = await loop.connect_write_pipe(
                        asyncio.Protocol, os.fdopen(write_end, "wb", 0)
                    )
                    return [id(t) for t in (closed, tcp, udp, reader, writer)]

                ids = loop.run_until_complete(main())
            finally:
                loop.close()
            gc.collect()
            found = [_unclosed(caught, target) for target in ids]
        return [[text.split(" ")[:2] for text in group] for group in found]

    theirs, ours = on_every_flavour(program, flavour)
    warned = [["unclosed", "transport"]]
    assert theirs == [[], warned, warned, warned, warned]
    assert ours == theirs


def test_unclosed_stream_writer_in_full_mode():
    def program(make):
        namespace = asyncio if make is FLAVOURS["asyncio"] else sansloop.compat
        loop = debug_loop(make)
        with observed() as (_, caught):
            try:

                async def main():
                    async def serve(reader, writer):
                        writer.close()

                    server = await namespace.start_server(serve, "127.0.0.1", 0)
                    port = server.sockets[0].getsockname()[1]
                    await namespace.open_connection("127.0.0.1", port)  # writer dropped
                    server.close()

                loop.run_until_complete(main())
            finally:
                loop.close()
            gc.collect()
        # asyncio gives no source= for this one: find it by its wording.
        return [
            str(w.message).split(" ")[:2]
            for w in caught
            if w.category is ResourceWarning and str(w.message).startswith("unclosed <StreamWriter")
        ]

    theirs = program(FLAVOURS["asyncio"])
    if theirs == []:
        pytest.skip("this asyncio does not warn about an unclosed StreamWriter")
    assert theirs == [["unclosed", "<StreamWriter"]]
    assert program(FLAVOURS["full"]) == theirs
