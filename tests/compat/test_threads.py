"""Behaviour of to_thread() on every flavour (conftest)."""

from __future__ import annotations

import contextvars
import threading

import pytest

request_id = contextvars.ContextVar("request_id", default="none")


def test_to_thread_runs_in_another_thread_with_args(flavour):
    aio = flavour.api

    def work(a, b, *, scale):
        return threading.get_ident(), (a + b) * scale

    async def main():
        ident, value = await aio.to_thread(work, 1, 2, scale=10)
        return ident != threading.get_ident(), value

    assert flavour.run(main()) == (True, 30)


def test_to_thread_copies_the_context(flavour):
    aio = flavour.api

    def read_and_change():
        seen = request_id.get()
        request_id.set("changed in thread")
        return seen

    async def main():
        request_id.set("abc")
        seen = await aio.to_thread(read_and_change)
        return seen, request_id.get()

    assert flavour.run(main()) == ("abc", "abc")


def test_to_thread_propagates_exceptions(flavour):
    aio = flavour.api

    def fail():
        raise PermissionError("denied")

    async def main():
        with pytest.raises(PermissionError, match="denied"):
            await aio.to_thread(fail)
        return True

    assert flavour.run(main())


def test_to_thread_many_at_once(flavour):
    aio = flavour.api

    async def main():
        return await aio.gather(*(aio.to_thread(pow, n, 2) for n in range(20)))

    assert flavour.run(main()) == [n * n for n in range(20)]


def test_to_thread_needs_a_running_loop(flavour):
    aio = flavour.api
    coro = aio.to_thread(print)
    with pytest.raises(RuntimeError, match="no running event loop"):
        coro.send(None)
    coro.close()
