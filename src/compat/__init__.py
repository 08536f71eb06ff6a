"""sansloop.compat: the asyncio namespace, on sansloop's own objects (full mode).

``import sansloop.compat as asyncio`` gives a module with asyncio's names whose
futures, tasks, locks, queues and combinators are sansloop's, and whose loops
are sansloop ``EventLoop``s in full mode (``new_event_loop()``, ``run()``,
``Runner``). Exceptions, protocol base classes and the running-loop functions
are the stdlib's own objects: identity matters (``except asyncio.CancelledError``
must catch ours; a framework's ``asyncio.Protocol`` subclass must be ours too).
"""

# The names below are imported to be re-exported; __all__ is computed from the
# running interpreter's asyncio.__all__ (end of file), which ruff cannot see.
# ruff: noqa: F401

from __future__ import annotations

import asyncio as _asyncio
import sys as _sys

from ..core import binding as _binding
from ..core import queues as _core_queues
from ..core import tasks as _core_tasks

# Our core machines find the running loop the same way stdlib code does, and
# raise the stdlib's own queue exceptions.
_binding.install(_asyncio.get_running_loop, _asyncio.get_event_loop)
# One current-task table for stdlib tasks and ours (asyncio 3.11-3.13 keep it
# in a dict shared with their C tasks): asyncio.current_task() and
# asyncio.timeout() in libraries then work inside our tasks too.
_stdlib_current_tasks = getattr(_asyncio.tasks, "_current_tasks", None)
if isinstance(_stdlib_current_tasks, dict):
    _core_tasks.share_current_task_table(_stdlib_current_tasks)
_core_queues.install_exceptions(
    _asyncio.QueueEmpty, _asyncio.QueueFull, getattr(_asyncio, "QueueShutDown", None)
)

# -- the stdlib's own objects, shared by identity ---------------------------
from asyncio import (  # noqa: E402
    AbstractEventLoop,
    AbstractEventLoopPolicy,
    AbstractServer,
    BaseProtocol,
    BaseTransport,
    BrokenBarrierError,
    BufferedProtocol,
    CancelledError,
    DatagramProtocol,
    DatagramTransport,
    IncompleteReadError,
    InvalidStateError,
    LimitOverrunError,
    Protocol,
    QueueEmpty,
    QueueFull,
    ReadTransport,
    SendfileNotAvailableError,
    SubprocessProtocol,
    SubprocessTransport,
    TimeoutError,
    Transport,
    WriteTransport,
    get_event_loop,
    get_event_loop_policy,
    get_running_loop,
    set_event_loop,
    set_event_loop_policy,
)
from asyncio.events import _get_running_loop, _set_running_loop  # noqa: E402, F401

# -- ours ----------------------------------------------------------------------
from ..core.barriers import Barrier  # noqa: E402
from ..core.futures import Future  # noqa: E402
from ..core.handles import Handle, TimerHandle  # noqa: E402
from ..core.locks import BoundedSemaphore, Condition, Event, Lock, Semaphore  # noqa: E402
from ..core.queues import LifoQueue, PriorityQueue, Queue  # noqa: E402
from ..core.taskregistry import (  # noqa: E402
    _enter_task,
    _leave_task,
    _register_task,
    _unregister_task,
)
from ..core.tasks import Task, create_eager_task_factory, eager_task_factory  # noqa: E402
from . import subprocess  # noqa: E402
from .childwatchers import *  # noqa: E402, F403  (3.11-3.13 only; none on 3.14+)
from .loop import EventLoop as _SansloopLoop  # noqa: E402
from .loopclasses import SelectorEventLoop  # noqa: E402
from .policy import EventLoopPolicy  # noqa: E402
from .runners import Runner, run  # noqa: E402
from .servers import Server  # noqa: E402
from .streams import (  # noqa: E402
    StreamReader,
    StreamReaderProtocol,
    StreamWriter,
    open_connection,
    open_unix_connection,
    start_server,
    start_unix_server,
)
from .subprocess import create_subprocess_exec, create_subprocess_shell  # noqa: E402
from .taskgroups import TaskGroup  # noqa: E402
from .tasks import (  # noqa: E402
    ALL_COMPLETED,
    FIRST_COMPLETED,
    FIRST_EXCEPTION,
    all_tasks,
    as_completed,
    create_task,
    current_task,
    ensure_future,
    gather,
    iscoroutine,
    iscoroutinefunction,
    isfuture,
    run_coroutine_threadsafe,
    shield,
    sleep,
    wait,
    wait_for,
    wrap_future,
)
from .threads import to_thread  # noqa: E402
from .timeouts import Timeout, timeout, timeout_at  # noqa: E402

if _sys.version_info >= (3, 13):
    from asyncio import QueueShutDown  # noqa: E402
else:
    from ..core.queues import QueueShutDown  # noqa: E402


def new_event_loop() -> SelectorEventLoop:
    """A new sansloop loop in full mode (an instance of ``SelectorEventLoop``)."""
    return SelectorEventLoop()


class DefaultEventLoopPolicy(EventLoopPolicy):
    """asyncio's default policy shape, making full-mode sansloop loops."""

    def __init__(self) -> None:
        super().__init__(mode="full")

    def new_event_loop(self) -> SelectorEventLoop:
        """A new full-mode sansloop loop, as ``new_event_loop()`` makes."""
        return SelectorEventLoop()


BaseEventLoop = _SansloopLoop
# asyncio.EventLoop (3.13) is SelectorEventLoop on Unix; the name exists here
# on every version, as sansloop's other newer names do.
EventLoop = SelectorEventLoop

# Exactly the running interpreter's asyncio.__all__: what asyncio exports on
# this Python and nothing more (a name from a newer Python stays importable
# from here but is not exported). tests/compat/test_namespace.py checks that
# every one of them is defined here, with asyncio's signature.
__all__ = [_name for _name in _asyncio.__all__ if _name in globals()]
