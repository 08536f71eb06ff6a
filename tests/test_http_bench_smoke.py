"""Smoke test of benchmarks/http_bench.py: the request parser, and a tiny run under wrk.

The parser runs against a fake transport (requests split across reads, several
per read, a malformed request); the body runs once per mode at a tiny size when
wrk is installed (the load client is an external program; without it the body
is skipped, and its RuntimeError is checked instead). No timing is asserted.
"""

from __future__ import annotations

import asyncio
import importlib.util
import pathlib
import shutil
import sys
from types import ModuleType
from typing import Any

import pytest

BENCH_DIR = pathlib.Path(__file__).resolve().parent.parent / "benchmarks"


def _load(name: str) -> ModuleType:
    if str(BENCH_DIR) not in sys.path:
        sys.path.insert(0, str(BENCH_DIR))
    spec = importlib.util.spec_from_file_location(
        f"sansloop_benchmarks_{name}", BENCH_DIR / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


child = _load("child")
http_bench = _load("http_bench")
REQ = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


class FakeTransport:
    def __init__(self) -> None:
        self.out = bytearray()
        self.closed = False

    def write(self, data: bytes) -> None:
        self.out += data

    def close(self) -> None:
        self.closed = True


def _proto(limit: int = 100) -> tuple[Any, FakeTransport, dict[str, Any]]:
    loop = asyncio.new_event_loop()
    state = {"answered": 0, "bad": 0, "limit": limit, "done": loop.create_future()}
    proto = http_bench.HttpProtocol(state)
    transport = FakeTransport()
    proto.connection_made(transport)
    loop.close()
    return proto, transport, state


def test_split_and_batched_requests_are_each_answered_once() -> None:
    proto, transport, state = _proto()
    stream = REQ * 5
    for i in range(0, len(stream), 7):  # 7-byte pieces: every split point is crossed
        proto.data_received(stream[i : i + 7])
    proto.data_received(REQ * 3)
    assert state["answered"] == 8
    assert bytes(transport.out) == http_bench.RESPONSE * 8
    assert not transport.closed and state["bad"] == 0


def test_answers_stop_at_the_limit() -> None:
    proto, transport, state = _proto(limit=3)
    proto.data_received(REQ * 5)
    assert state["answered"] == 3 and state["done"].done()
    assert bytes(transport.out) == http_bench.RESPONSE * 3


@pytest.mark.parametrize("bad", [b"POST / HTTP/1.1\r\n\r\n", b"GET / HTTP/1.0\r\n\r\n"])
def test_malformed_request_closes(bad: bytes) -> None:
    proto, transport, state = _proto()
    proto.data_received(bad)
    assert transport.closed and state["bad"] == 1 and not transport.out


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
@pytest.mark.parametrize("mode", ["asyncio", "sansloop-loop", "sansloop-full"])
def test_body_under_wrk(mode: str) -> None:
    bench = http_bench.BENCHMARKS["http_keepalive"]
    aio, runner = child.runner_for(mode)
    assert runner(bench.body(aio, 300)) == 300
    report = http_bench.CLIENT_REPORT
    assert report["client"] == "wrk" and report["responses"] >= 300 - http_bench.CONNS
    assert report["non_2xx"] == 0 and not report["socket_errors"]
