"""Smoke test of benchmarks/tcp_echo.py: each body, tiny size, in every mode.

The bodies run with the Python load client (no build needed): each must return
its op count, and the client's report must say every round trip came back
intact. One more run checks the C client when a compiler is there. No timing is
asserted (``run.py`` measures).
"""

from __future__ import annotations

import importlib.util
import pathlib
import shutil
import sys
from types import ModuleType

import pytest

BENCH_DIR = pathlib.Path(__file__).resolve().parent.parent / "benchmarks"


def _load(name: str) -> ModuleType:
    if str(BENCH_DIR) not in sys.path:
        sys.path.insert(0, str(BENCH_DIR))  # the bodies import ``micro`` as run.py does
    spec = importlib.util.spec_from_file_location(
        f"sansloop_benchmarks_{name}", BENCH_DIR / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


child = _load("child")
tcp_echo = _load("tcp_echo")
SMALL = 24  # fewer than 8 per connection on some: uneven shares are exercised


@pytest.fixture
def python_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tcp_echo, "CLIENT", "python")


@pytest.mark.parametrize("mode", ["asyncio", "sansloop-loop", "sansloop-full"])
@pytest.mark.parametrize("name", sorted(tcp_echo.BENCHMARKS))
def test_tcp_echo_body_returns_expected_ops(name: str, mode: str, python_client: None) -> None:
    bench = tcp_echo.BENCHMARKS[name]
    aio, runner = child.runner_for(mode)
    tcp_echo.CLIENT_REPORT.clear()
    assert runner(bench.body(aio, SMALL)) == SMALL
    report = tcp_echo.CLIENT_REPORT
    assert report["client"] == "python"
    assert report["round_trips"] == SMALL
    assert report["conns"] == tcp_echo.CONNS


def test_measure_carries_the_client_report(python_client: None) -> None:
    bench = tcp_echo.BENCHMARKS["tcp_proto_1k"]
    aio, runner = child.runner_for("sansloop-loop")
    result = runner(child.measure(aio, bench, SMALL))
    assert result["ops"] == SMALL
    assert result["client"]["round_trips"] == SMALL
    assert result["client"]["cpu_measured"] >= 0


def test_echo_benchmarks_are_registered_with_the_runner() -> None:
    for name in (*tcp_echo.BENCHMARKS, "udp_echo", "udp_echo_ext"):
        assert name in child.BENCHMARKS


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler: the Python client is used")
def test_c_client_round_trips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tcp_echo, "CLIENT", "c")
    bench = tcp_echo.BENCHMARKS["tcp_proto_100k"]
    aio, runner = child.runner_for("sansloop-full")
    assert runner(bench.body(aio, SMALL)) == SMALL
    assert tcp_echo.CLIENT_REPORT["client"] == "c"
    assert tcp_echo.CLIENT_REPORT["round_trips"] == SMALL


_Echo = tcp_echo._EchoProtocol


class _Corrupting:
    """An echo protocol that flips the first byte of every chunk it sends back."""

    def __init__(self, on_closed: object) -> None:
        self.inner = _Echo(on_closed)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def data_received(self, data: bytes) -> None:
        self.inner.transport.write(bytes([data[0] ^ 0xFF]) + data[1:])


@pytest.mark.parametrize("kind", ["python", "c"])
def test_a_corrupting_server_produces_no_figure(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong echo makes the client fail, and the body raises instead of returning."""
    if kind == "c" and shutil.which("cc") is None:
        pytest.skip("no C compiler")
    monkeypatch.setattr(tcp_echo, "CLIENT", kind)
    monkeypatch.setattr(tcp_echo, "_EchoProtocol", _Corrupting)
    bench = tcp_echo.BENCHMARKS["tcp_proto_1k"]
    aio, runner = child.runner_for("asyncio")
    with pytest.raises(AssertionError, match="load client: exit status 1"):
        runner(bench.body(aio, SMALL))
