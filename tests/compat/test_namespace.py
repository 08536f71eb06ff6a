"""``sansloop.compat`` is the running interpreter's asyncio namespace.

Everything here is computed from the ``asyncio`` module of the Python running
the tests (3.11, 3.12 or 3.13), never from a list kept by hand:

- ``sansloop.compat.__all__`` equals ``asyncio.__all__``, and each name is defined;
- the stdlib's exception classes, protocol and transport base classes and
  abstract base classes are the very same objects (a user's
  ``except asyncio.CancelledError`` or ``class P(asyncio.Protocol)`` must work
  with ours);
- every other function has asyncio's signature, and every other class has
  asyncio's ``__init__`` and public methods with asyncio's signatures
  (parameter names, kinds, order and defaults; annotations are ignored);
- ``sansloop.compat.subprocess`` has ``asyncio.subprocess``'s names, constants
  and signatures (programs reach it as ``asyncio.subprocess.PIPE``).

Signatures "match" when a call valid for asyncio's is valid for ours and binds
the same way: every parameter of asyncio's is there, in the same position,
with the same kind and default. Ours may add optional parameters that no
positional call can reach (keyword-only, or after all of asyncio's positional
ones). Each such addition is listed in ``ADDITIONS`` with the Python version
that brought it to asyncio (from then on it must be asyncio's own) or None
for sansloop's own (a loop's backend and mode).
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from typing import Any

import pytest

import sansloop.compat

# (name, method) -> {parameter: Python version whose asyncio has it, or None}
ADDITIONS: dict[tuple[str, str], dict[str, tuple[int, int] | None]] = {
    ("BaseEventLoop", "__init__"): {"backend": None, "mode": None},
    ("BaseEventLoop", "create_connection"): {"all_errors": (3, 12)},
    ("BaseEventLoop", "create_server"): {"keep_alive": (3, 13)},
    ("BaseEventLoop", "create_unix_server"): {"cleanup_socket": (3, 13)},
    ("BaseEventLoop", "shutdown_default_executor"): {"timeout": (3, 12)},
    ("SelectorEventLoop", "create_connection"): {"all_errors": (3, 12)},
    ("SelectorEventLoop", "create_server"): {"keep_alive": (3, 13)},
    ("SelectorEventLoop", "create_unix_server"): {"cleanup_socket": (3, 13)},
    ("SelectorEventLoop", "shutdown_default_executor"): {"timeout": (3, 12)},
    ("Server", "__init__"): {"keep_alive": None},
    ("StreamWriter", "start_tls"): {"ssl_shutdown_timeout": (3, 12)},
    ("Task", "__init__"): {"eager_start": (3, 12)},
    ("run", ""): {"loop_factory": (3, 12)},
}

# Where asyncio's class of that name is C code whose signatures are not
# introspectable, its pure-Python twin (same API) is the reference.
_PY_TWINS = {
    "Future": getattr(asyncio.futures, "_PyFuture", None),
    "Task": getattr(asyncio.tasks, "_PyTask", None),
}

# asyncio.BaseEventLoop names sock_recv's second parameter ``nbytes``; the
# concrete loop every stdlib program runs (SelectorEventLoop) names it ``n``.
# We have one class for both: its methods are checked against the concrete
# loop's, its constructor against BaseEventLoop's own.
_METHODS_FROM = {"BaseEventLoop": asyncio.SelectorEventLoop}

_P = inspect.Parameter
_POSITIONAL = (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD)


def _is_shared_by_identity(obj: Any) -> bool:
    """Exceptions, the protocol/transport base classes, abstract base classes."""
    if not inspect.isclass(obj):
        return False
    return (
        issubclass(obj, BaseException)
        or obj.__module__ in ("asyncio.protocols", "asyncio.transports")
        or obj.__name__.startswith("Abstract")
    )


def _signature(obj: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(obj)
    except (TypeError, ValueError):
        return None


def signature_mismatches(
    theirs: inspect.Signature, ours: inspect.Signature, additions: dict[str, Any]
) -> list[str]:
    """Why a call valid for *theirs* could fail or bind differently on *ours*."""
    problems = []
    their_params = list(theirs.parameters.values())
    our_params = list(ours.parameters.values())
    ours_by_name = {p.name: p for p in our_params}
    for index, their in enumerate(their_params):
        our = ours_by_name.get(their.name)
        if our is None:
            problems.append(f"parameter {their.name!r} missing")
            continue
        same_kind = our.kind == their.kind or (
            their.kind == _P.POSITIONAL_ONLY and our.kind == _P.POSITIONAL_OR_KEYWORD
        )
        if not same_kind:
            problems.append(
                f"{their.name!r} is {our.kind.description}, not {their.kind.description}"
            )
        if our.default != their.default:
            problems.append(f"{their.name!r} defaults to {our.default!r}, not {their.default!r}")
        if their.kind in _POSITIONAL and our_params.index(our) != index:
            problems.append(f"{their.name!r} is at position {our_params.index(our)}, not {index}")
    their_names = {p.name for p in their_params}
    last_positional = max(
        (i for i, p in enumerate(our_params) if p.name in their_names and p.kind in _POSITIONAL),
        default=-1,
    )
    for index, our in enumerate(our_params):
        if our.name in their_names:
            continue
        if our.name not in additions:
            problems.append(f"extra parameter {our.name!r}")
        elif additions[our.name] is not None and sys.version_info >= additions[our.name]:
            problems.append(
                f"{our.name!r} is asyncio's own from {additions[our.name]}, yet differs"
            )
        if our.kind in (_P.VAR_POSITIONAL, _P.VAR_KEYWORD):
            continue
        if our.default is _P.empty:
            problems.append(f"extra parameter {our.name!r} is required")
        if our.kind in _POSITIONAL and index < last_positional:
            problems.append(f"extra parameter {our.name!r} shifts asyncio's positional ones")
    return problems


def _public_callables(cls: type) -> list[str]:
    names = ["__init__"]
    for name in dir(cls):
        if name.startswith("_"):
            continue
        static = inspect.getattr_static(cls, name)
        if isinstance(static, (property, type)) or not callable(getattr(cls, name)):
            continue
        names.append(name)
    return names


def _public_attributes(cls: type) -> list[str]:
    return [name for name in dir(cls) if not name.startswith("_")]


NAMES = list(asyncio.__all__)
IDENTICAL = [n for n in NAMES if _is_shared_by_identity(getattr(asyncio, n))]
OURS = [n for n in NAMES if n not in IDENTICAL]


def _ours(name: str) -> Any:
    if not hasattr(sansloop.compat, name):
        pytest.fail(f"sansloop.compat has no {name}")
    return getattr(sansloop.compat, name)


@pytest.fixture(scope="module")
def star_imported() -> dict[str, Any]:
    scope: dict[str, Any] = {}
    exec("from sansloop.compat import *", scope)
    return scope


@pytest.mark.parametrize("name", NAMES)
def test_exported(name, star_imported):
    assert name in sansloop.compat.__all__
    assert star_imported.get(name) is _ours(name)


def test_exports_nothing_else():
    exported = sansloop.compat.__all__
    assert len(set(exported)) == len(exported)
    assert set(exported) - set(asyncio.__all__) == set()


@pytest.mark.parametrize("name", IDENTICAL)
def test_stdlib_classes_are_shared_by_identity(name):
    assert _ours(name) is getattr(asyncio, name)


def _class_mismatches(name: str, ours: type, module: Any = asyncio) -> list[str]:
    """Missing public attributes and signature mismatches of class *name* of *module*."""
    theirs = getattr(module, name)
    reference = _PY_TWINS.get(name) or theirs
    methods_from = _METHODS_FROM.get(name, reference)
    missing = set(_public_attributes(reference)) - set(dir(ours))
    problems = [f"{name}.{attr} missing" for attr in sorted(missing)]
    for method in _public_callables(reference):
        if method in missing:
            continue
        their_sig = _signature(getattr(reference if method == "__init__" else methods_from, method))
        if their_sig is None:
            continue
        our_sig = _signature(getattr(ours, method))
        assert our_sig is not None, f"{name}.{method} is not introspectable"
        additions = ADDITIONS.get((name, method), {})
        problems += [
            f"{name}.{method}: {p}" for p in signature_mismatches(their_sig, our_sig, additions)
        ]
    return problems


@pytest.mark.parametrize("name", OURS)
def test_signature_matches(name):
    theirs = getattr(asyncio, name)
    ours = _ours(name)
    if ours is theirs:
        return
    problems: list[str] = []
    if inspect.isclass(theirs):
        assert inspect.isclass(ours), f"{name} is a class in asyncio"
        problems += _class_mismatches(name, ours)
    elif callable(theirs):
        their_sig = _signature(theirs)
        if their_sig is not None:
            our_sig = _signature(ours)
            assert our_sig is not None, f"{name} is not introspectable"
            problems += signature_mismatches(their_sig, our_sig, ADDITIONS.get((name, ""), {}))
    else:
        assert ours == theirs
    assert problems == []


# asyncio.subprocess is reached as an attribute of asyncio (asyncio.subprocess.PIPE)
_SUBPROCESS_NAMES = sorted(
    set(asyncio.subprocess.__all__) | {"PIPE", "STDOUT", "DEVNULL", "Process"}
)


@pytest.mark.parametrize("name", _SUBPROCESS_NAMES)
def test_subprocess_module_matches(name):
    import asyncio.subprocess as theirs_module

    ours_module = sansloop.compat.subprocess
    assert sorted(ours_module.__all__) == sorted(theirs_module.__all__)
    theirs = getattr(theirs_module, name)
    ours = getattr(ours_module, name)
    if inspect.isclass(theirs):
        assert _class_mismatches(name, ours, module=theirs_module) == []
    elif callable(theirs):
        assert signature_mismatches(inspect.signature(theirs), inspect.signature(ours), {}) == []
    else:
        assert ours == theirs


# -- the checker itself can fail ---------------------------------------------


def _sig(fn: Any) -> inspect.Signature:
    return inspect.signature(fn)


def test_checker_catches_a_renamed_or_reordered_or_redefaulted_parameter():
    def theirs(a, b=1, *, c=None): ...

    def renamed(a, bb=1, *, c=None): ...

    def reordered(b=1, a=None, *, c=None): ...

    def redefaulted(a, b=2, *, c=None): ...

    def made_keyword_only(a, *, b=1, c=None): ...

    for ours in (renamed, reordered, redefaulted, made_keyword_only):
        assert signature_mismatches(_sig(theirs), _sig(ours), {}) != [], ours.__name__


def test_checker_allows_only_listed_optional_additions_out_of_positional_reach():
    def theirs(a, b=1): ...

    def keyword_only_extra(a, b=1, *, x=None): ...

    def trailing_extra(a, b=1, x=None): ...

    def shifting_extra(a, x=None, b=1): ...

    def required_extra(a, b=1, *, x): ...

    assert signature_mismatches(_sig(theirs), _sig(keyword_only_extra), {"x": None}) == []
    assert signature_mismatches(_sig(theirs), _sig(trailing_extra), {"x": None}) == []
    assert signature_mismatches(_sig(theirs), _sig(keyword_only_extra), {}) != []
    assert signature_mismatches(_sig(theirs), _sig(shifting_extra), {"x": None}) != []
    assert signature_mismatches(_sig(theirs), _sig(required_extra), {"x": None}) != []
    assert signature_mismatches(_sig(theirs), _sig(keyword_only_extra), {"x": (3, 0)}) != []


# -- the loop classes under asyncio's names ------------------------------------


def test_selector_event_loop_takes_a_selector_and_runs_full_mode():
    import selectors

    selector = selectors.PollSelector()
    loop = sansloop.compat.SelectorEventLoop(selector)
    try:

        async def main():
            return type(sansloop.compat.current_task()), asyncio.get_running_loop()

        task_type, running = loop.run_until_complete(main())
        assert (task_type, running, loop.mode) == (sansloop.compat.Task, loop, "full")
        assert loop.backend._selector is selector
    finally:
        loop.close()
    assert selector.get_map() is None  # closed with the loop, as asyncio closes it


def test_loops_made_by_the_namespace_are_its_selector_event_loops():
    made = [
        sansloop.compat.new_event_loop(),
        sansloop.compat.DefaultEventLoopPolicy().new_event_loop(),
    ]
    runner = sansloop.compat.Runner()
    made.append(runner.get_loop())
    try:
        for loop in made:
            assert isinstance(loop, sansloop.compat.SelectorEventLoop)
            assert isinstance(loop, sansloop.compat.BaseEventLoop)
            assert isinstance(loop, asyncio.AbstractEventLoop)
            assert loop.mode == "full"
        assert sansloop.compat.EventLoop is sansloop.compat.SelectorEventLoop
    finally:
        runner.close()
        for loop in made[:2]:
            loop.close()
