"""Tests of CPython's test_asyncio that the conformance runner does not count.

Rule: a test is excluded only when it checks asyncio's *private internals*
(a private class, a mock of a private method, a private attribute of the
stdlib loop) or the stdlib loop itself rather than the implementation under
test. A test that checks public behaviour we get wrong is never excluded: it
is a failure, and it shows in the table.

Besides this list, the runner excludes at run time (reason recorded per test):
- in loop mode, a test that made a stock asyncio loop (test_utils.TestLoop,
  ``SelectorEventLoop(selector)``, a loop subclass of its own): the loop under
  test was not ours, so its result says nothing about us;
- in loop mode, a test that made no event loop at all: it exercised stock
  asyncio only;
- in class mode, a base class whose binding the implementation cannot provide.

Patterns are ``fnmatch`` patterns over ``Class.test_method``.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

__all__ = ["WHOLE_MODULES", "EXCLUDED", "whole_module_reason", "exclusion_reason"]

#: loop mode: modules whose every test is about asyncio's private machinery
WHOLE_MODULES: dict[str, str] = {
    "test_base_events": "asyncio.base_events internals (BaseEventLoop private methods, mocked selectors)",
    "test_selector_events": "asyncio.selector_events internals (_SelectorTransport and friends, mocked sockets)",
    "test_proactor_events": "asyncio.proactor_events internals (Windows proactor transports)",
    "test_windows_events": "Windows-only proactor internals",
    "test_windows_utils": "Windows-only helpers of asyncio.windows_utils",
}

#: (mode, module) -> [(pattern, reason)]
_STOCK_SELF_PIPE = "asserts on the stock loop's self-pipe (_ssock, _csock, _internal_fds)"
_RUN_ONCE = "replaces the stock loop's private _run_once and counts its calls"

EXCLUDED: dict[tuple[str, str], list[tuple[str, str]]] = {
    ("loop", "test_events"): [
        ("*.test_internal_fds", _STOCK_SELF_PIPE),
        ("*.test_timeout_rounding", _RUN_ONCE + " and checks its selector's timeouts"),
        (
            "*.test_create_server_multiple_hosts_ipv4",
            "mocks asyncio.base_events.socket and the stock loop's private _start_serving",
        ),
        (
            "*.test_create_server_multiple_hosts_ipv6",
            "mocks asyncio.base_events.socket and the stock loop's private _start_serving",
        ),
        ("*.test_prompt_cancellation", "calls the stock loop's private _stop_serving(sock)"),
    ],
    ("loop", "test_ssl"): [
        (
            "TestSSL.test_flush_before_shutdown",
            "reads transport._ssl_protocol (asyncio.sslproto.SSLProtocol, private) and calls "
            "its pause_writing()/resume_writing() directly",
        ),
        (
            "TestSSL.test_remote_shutdown_receives_trailing_data",
            "fills the write backlog through transport._test__append_write_backlog(), a test "
            "hook of asyncio.sslproto._SSLProtocolTransport (private)",
        ),
    ],
    ("loop", "test_tasks"): [
        (
            "CoroutineGatherTests.test_issue46672",
            "patches call_exception_handler on the stock BaseEventLoop class",
        ),
    ],
    ("loop", "test_unix_events"): [
        (
            "SelectorEventLoopSignalTests.*",
            "mocks asyncio.unix_events.signal and calls the stock loop's private signal "
            "machinery (_check_signal, _handle_signal, _signal_handlers)",
        ),
        (
            "SelectorEventLoopUnixSockSendfileTests.*",
            "calls the stock loop's private _sock_sendfile_native(_impl) and inspects its _selector",
        ),
        (
            "SelectorEventLoopUnixSocketTests.test_create_unix_server_bind_error",
            "mocks asyncio.unix_events.socket, the module global the stock loop uses",
        ),
        (
            "UnixReadPipeTransportTests.*",
            "asyncio.unix_events._UnixReadPipeTransport (private) over mocked fds and TestLoop's assert_reader",
        ),
        (
            "UnixWritePipeTransportTests.*",
            "asyncio.unix_events._UnixWritePipeTransport (private) over mocked fds and TestLoop's assert_writer",
        ),
    ],
}


def whole_module_reason(mode: str, module: str) -> str | None:
    """The reason ``module`` is skipped entirely in ``mode``, if it is."""
    if mode == "loop":
        return WHOLE_MODULES.get(module)
    return None


def exclusion_reason(mode: str, module: str, test_id: str) -> str | None:
    """The reason the test ``Class.method`` of ``module`` is excluded, if it is."""
    for pattern, reason in EXCLUDED.get((mode, module), ()):
        if fnmatchcase(test_id, pattern):
            return reason
    return None
