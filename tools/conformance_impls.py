"""The implementations the conformance runner can put under CPython's tests.

An implementation answers three questions for the runner:

- class mode: which Future and Task classes to bind into CPython's
  parametrized base classes, and which ``current_task``/``all_tasks`` (and,
  when they exist, the ``_enter_task``/``_leave_task``/``_register_task``/
  ``_unregister_task`` helpers) the tests must see through ``asyncio.*``;
- loop mode: how to make a new event loop, and how to recognise one of ours
  (a test that ends up on any other loop is not counted as passed);
- a name for the report.

Two implementations exist:

- ``sansloop``: the thing under test; in loop mode its loops are made by
  ``sansloop.new_event_loop()`` (stdlib Future/Task on our loop).
- ``sansloop-full``: the same, but loop mode makes full-mode loops
  (``sansloop.compat.new_event_loop()``): ``create_future``/``create_task``
  return sansloop's Future and Task, so the tests run on our objects too.
- ``asyncio``: the stdlib's own pure-Python Future/Task and a plain subclass
  of the platform's default loop. Running the harness against it must report
  (nearly) everything passing: that is how the harness proves that its
  substitutions and bindings do not themselves break tests.

Nothing is imported from sansloop until ``load()`` runs, so the reference run
works even when sansloop is broken.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Impl", "load_impl", "IMPL_NAMES"]

IMPL_NAMES = ("sansloop", "sansloop-full", "asyncio")


@dataclass
class Impl:
    """What the runner binds into CPython's tests for one implementation."""

    name: str
    future_class: type | None
    task_class: type | None
    current_task: Callable[..., Any] | None
    all_tasks: Callable[..., Any] | None
    new_loop: Callable[[], Any]
    loop_types: tuple[type, ...]
    #: private task-registry helpers, only bound when the implementation has them
    introspection: dict[str, Callable[..., Any]] = field(default_factory=dict)
    #: why a class-mode binding is impossible (``None`` when it is possible)
    class_mode_missing: str | None = None
    #: the ``mode`` our loops are made in ("loop": stdlib futures and tasks on
    #: our loop; "full": create_future/create_task make ours too)
    loop_mode: str = "loop"

    def is_ours(self, loop: object) -> bool:
        return isinstance(loop, self.loop_types)


def _first_attr(candidates: list[tuple[str, str]]) -> Any:
    """The first ``module.attr`` of ``candidates`` that imports, or None."""
    for module_name, attr in candidates:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        value = getattr(module, attr, None)
        if value is not None:
            return value
    return None


def _load_sansloop(loop_mode: str = "loop") -> Impl:
    import sansloop.core.binding as binding

    try:  # importing compat installs asyncio's loop getters into core
        importlib.import_module("sansloop.compat")
    except ImportError:
        pass
    binding.install(asyncio.get_running_loop, asyncio.get_event_loop)

    future_class = _first_attr([("sansloop.core.futures", "Future")])
    task_class = _first_attr([("sansloop.core.tasks", "Task")])
    # the core registry's own functions: the runner unions them with asyncio's
    # (compat's current_task/all_tasks do that too, by calling asyncio.*, which
    # the runner patches: binding compat's would recurse)
    registry = "sansloop.core.taskregistry"
    current_task = _first_attr(
        [(registry, "current_task"), ("sansloop.core.tasks", "current_task")]
    )
    all_tasks = _first_attr([(registry, "all_tasks"), ("sansloop.core.tasks", "all_tasks")])
    introspection = {}
    for helper in ("_register_task", "_unregister_task", "_enter_task", "_leave_task"):
        value = _first_attr([(registry, helper), ("sansloop.core.tasks", helper)])
        if value is not None:
            introspection[helper] = value

    missing = [
        name
        for name, value in (
            ("sansloop.core.futures.Future", future_class),
            ("sansloop.core.tasks.Task", task_class),
            ("current_task", current_task),
            ("all_tasks", all_tasks),
        )
        if value is None
    ]

    loop_class = _first_attr([("sansloop.compat.loop", "EventLoop")])
    if loop_class is None:
        raise ImportError("sansloop.compat.loop.EventLoop is missing")
    if loop_mode == "loop":
        new_loop = _first_attr([("sansloop", "new_event_loop")])
    else:
        new_loop = _first_attr([("sansloop.compat", "new_event_loop")])
    if new_loop is None:

        def new_loop() -> Any:
            return loop_class(mode=loop_mode)

    return Impl(
        name="sansloop",
        future_class=future_class,
        task_class=task_class,
        current_task=current_task,
        all_tasks=all_tasks,
        new_loop=new_loop,
        loop_types=(loop_class,),
        introspection=introspection,
        class_mode_missing=("missing: " + ", ".join(missing)) if missing else None,
        loop_mode=loop_mode,
    )


def _load_asyncio() -> Impl:
    from asyncio import futures, tasks

    class ReferenceLoop(asyncio.SelectorEventLoop):  # type: ignore[misc,valid-type]
        """The stdlib loop, under a class of its own so the runner can tell it apart."""

    return Impl(
        name="asyncio",
        future_class=futures._PyFuture,
        task_class=tasks._PyTask,
        current_task=asyncio.current_task,
        all_tasks=asyncio.all_tasks,
        new_loop=ReferenceLoop,
        loop_types=(ReferenceLoop,),
        introspection={
            "_register_task": tasks._py_register_task,
            "_unregister_task": tasks._py_unregister_task,
            "_enter_task": tasks._py_enter_task,
            "_leave_task": tasks._py_leave_task,
        },
    )


def load_impl(name: str) -> Impl:
    """Import and describe the implementation called ``name``."""
    if name == "sansloop":
        return _load_sansloop()
    if name == "sansloop-full":
        impl = _load_sansloop("full")
        impl.name = "sansloop-full"
        return impl
    if name == "asyncio":
        return _load_asyncio()
    raise ValueError(f"unknown implementation {name!r}; choose from {IMPL_NAMES}")
