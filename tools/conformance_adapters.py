"""How the conformance runner binds an implementation into CPython's tests.

Two modes (see docs/conformance.md):

class mode
    CPython parametrizes some base classes by implementation (its C and pure
    Python Future/Task). ``class_mode_classes`` builds the same kind of
    concrete subclasses with our Future and Task, the way test_futures.py and
    test_tasks.py build ``PyFutureTests`` and ``PyTask_PyFuture_Tests``. Only
    those bound classes run; the loop under them is the stock asyncio test
    loop, as in CPython. ``patch_task_functions`` makes ``asyncio.current_task``
    and ``asyncio.all_tasks`` see our tasks.

loop mode
    Every module runs with our loop substituted wherever asyncio makes one
    (``patch_loop_creation``). Loop-parametrized mixins get one concrete
    subclass bound to our loop, and the stock-loop siblings it replaces are
    dropped (``loop_mode_bindings``). ``LoopTracker`` watches every loop made
    during a test, so that a test which ran on a stock loop (or on none) is
    excluded with that reason and never counted as passed.

Nothing here edits a CPython file; everything is done by subclassing and by
setting attributes in the running process (one module per process).
"""

from __future__ import annotations

import asyncio
import asyncio.base_events
import asyncio.events
import asyncio.tasks
import importlib
import types
import unittest
from collections.abc import Callable
from typing import Any

from conformance_impls import Impl
from conformance_testloop import virtual_time_loop_factory

__all__ = [
    "CLASS_MODE_MODULES",
    "class_mode_classes",
    "patch_task_functions",
    "patch_loop_creation",
    "loop_mode_bindings",
    "LoopTracker",
    "route_logging",
]

#: modules that have implementation-parametrized base classes
CLASS_MODE_MODULES = ("test_futures", "test_futures2", "test_tasks", "test_eager_task_factory")

PREFIX = "Sansloop"


def _make(
    module: types.ModuleType, name: str, bases: tuple[type, ...], attrs: dict[str, Any]
) -> type:
    """A concrete test class that looks as if it were defined in ``module``."""
    attrs = dict(attrs)
    attrs["__module__"] = module.__name__
    attrs["__qualname__"] = name
    cls = type(name, bases, attrs)
    setattr(module, name, cls)
    return cls


# --------------------------------------------------------------------------
# class mode


def class_mode_classes(module: types.ModuleType, impl: Impl) -> tuple[list[type], dict[str, str]]:
    """Concrete test classes binding ``impl``'s Future/Task into ``module``'s bases.

    Returns the classes to run, and {class name: reason} for bases that could
    not be bound (reported as excluded).
    """
    name = module.__name__.rpartition(".")[2]
    test_utils = __import__("test.test_asyncio.utils", fromlist=["TestCase"])
    tc = test_utils.TestCase
    Future, Task = impl.future_class, impl.task_class
    out: list[type] = []
    missing: dict[str, str] = {}

    def bind(
        base_name: str, cls_name: str, bases_tail: tuple[type, ...], attrs: dict[str, Any]
    ) -> None:
        base = getattr(module, base_name, None)
        if base is None:
            return  # this Python version does not have that base class
        extra = attrs.pop("__extra_bases__", ())
        out.append(_make(module, f"{PREFIX}{cls_name}", (base, *extra, *bases_tail), attrs))

    if name == "test_futures":

        class SubFuture(Future):  # type: ignore[misc,valid-type]
            pass

        bind("BaseFutureTests", "FutureTests", (tc,), {"cls": Future})
        bind("BaseFutureTests", "SubFutureTests", (tc,), {"cls": SubFuture})
        bind(
            "BaseFutureDoneCallbackTests",
            "FutureDoneCallbackTests",
            (tc,),
            {"_new_future": lambda self: Future(loop=self.loop)},
        )
        bind(
            "BaseFutureDoneCallbackTests",
            "SubFutureDoneCallbackTests",
            (tc,),
            {"_new_future": lambda self: SubFuture(loop=self.loop)},
        )
        bind(
            "BaseFutureInheritanceTests",
            "FutureInheritanceTests",
            (tc,),
            {"_get_future_cls": lambda self: Future},
        )
    elif name == "test_futures2":
        bind("FutureTests", "FutureTests", (unittest.IsolatedAsyncioTestCase,), {"cls": Task})
    elif name == "test_tasks":
        set_methods = getattr(module, "SetMethodsTest", None)
        bind(
            "BaseTaskTests",
            "Task_Future_Tests",
            (tc,),
            {
                "Task": Task,
                "Future": Future,
                "__extra_bases__": (set_methods,) if set_methods else (),
            },
        )
        bind("BaseTaskTests", "Task_Future_SubclassTests", (tc,), {"Task": Task, "Future": Future})
        if out and hasattr(module, "add_subclass_tests"):
            module.add_subclass_tests(out[-1])
        bind(
            "BaseCurrentLoopTests",
            "CurrentLoopTests",
            (tc,),
            {
                "current_task": staticmethod(impl.current_task or asyncio.current_task),
                "new_task": lambda self, coro: Task(coro, loop=self.loop),
            },
        )
        helpers = ("_register_task", "_unregister_task", "_enter_task", "_leave_task")
        if all(h in impl.introspection for h in helpers):
            # CPython lists the mixin second: (TestCase, BaseTaskIntrospectionTests)
            base = getattr(module, "BaseTaskIntrospectionTests", None)
            if base is not None:
                attrs = {h: staticmethod(impl.introspection[h]) for h in helpers}
                out.append(_make(module, f"{PREFIX}IntrospectionTests", (tc, base), attrs))
        elif hasattr(module, "BaseTaskIntrospectionTests"):
            missing["BaseTaskIntrospectionTests"] = (
                "the implementation exposes no _register_task/_unregister_task/"
                "_enter_task/_leave_task helpers (private to asyncio)"
            )
    elif name == "test_eager_task_factory":
        bind("EagerTaskFactoryLoopTests", "EagerTaskFactoryLoopTests", (tc,), {"Task": Task})
        bind("BaseNonEagerTaskFactoryTests", "NonEagerTaskTests", (tc,), {"Task": Task})
        bind("BaseEagerTaskFactoryTests", "EagerTaskTests", (tc,), {"Task": Task})
    return out, missing


def patch_task_functions(impl: Impl) -> None:
    """Make ``asyncio.current_task``/``all_tasks`` see the implementation's tasks.

    The implementation's function answers first; when it knows of no task the
    stock answer is used, so asyncio's own tasks (the ones
    IsolatedAsyncioTestCase runs its tests in) stay visible.
    """
    ours_current, ours_all = impl.current_task, impl.all_tasks
    stock_current, stock_all = asyncio.tasks.current_task, asyncio.tasks.all_tasks
    if ours_current is None or ours_current is stock_current:
        return

    def current_task(loop: Any = None) -> Any:
        if loop is None:
            loop = asyncio.events.get_running_loop()
        task = ours_current(loop)
        return task if task is not None else stock_current(loop)

    def all_tasks(loop: Any = None) -> set[Any]:
        if loop is None:
            loop = asyncio.events.get_running_loop()
        found = set(ours_all(loop)) if ours_all is not None else set()
        return found | stock_all(loop)

    for target in (asyncio, asyncio.tasks):
        target.current_task = current_task  # type: ignore[attr-defined]
        target.all_tasks = all_tasks  # type: ignore[attr-defined]


# --------------------------------------------------------------------------
# loop mode


class LoopTracker:
    """Which loops each test made: ours, stock asyncio ones, or none."""

    def __init__(self, impl: Impl) -> None:
        self.impl = impl
        self.ours = 0
        self.stock: list[str] = []

    def reset(self) -> None:
        self.ours = 0
        self.stock = []

    def verdict(self) -> str | None:
        """None when the test ran on our loop only; else the exclusion reason."""
        if self.stock:
            kinds = ", ".join(sorted(set(self.stock)))
            return f"not substituted: the test made a stock asyncio loop ({kinds})"
        if not self.ours:
            return "no event loop made: the test exercises stock asyncio only"
        return None

    def made_ours(self) -> None:
        self.ours += 1

    def made_stock(self, loop: object) -> None:
        self.stock.append(type(loop).__name__)


def patch_loop_creation(impl: Impl, tracker: LoopTracker) -> Callable[[], Any]:
    """Route every loop asyncio makes to ``impl`` and report each one to ``tracker``.

    Covers: the default policy's loop factory (so ``asyncio.new_event_loop``,
    ``policy.new_event_loop``, ``asyncio.run``, ``asyncio.Runner`` and
    IsolatedAsyncioTestCase, even after ``set_event_loop_policy(None)``),
    ``asyncio.SelectorEventLoop()`` and ``asyncio.EventLoop()`` called without
    a selector, and test_utils.TestCase.new_test_loop() (a virtual-time loop of
    ours, see conformance_testloop). A stock loop made any other way (``SelectorEventLoop(selector)``,
    test_utils.TestLoop, a subclass defined by the test) still works but is
    recorded, and its test is then excluded as not substituted.

    Returns the (tracked) factory of our loops, for the mixin bindings.
    """
    make_ours = impl.new_loop
    base_loop = asyncio.base_events.BaseEventLoop
    # a loop class built on BaseEventLoop is counted by tracking_init below
    counts_itself = any(issubclass(t, base_loop) for t in impl.loop_types)

    def new_loop() -> Any:
        loop = make_ours()
        if not counts_itself:
            tracker.made_ours()
        return loop

    original_init = base_loop.__init__

    def tracking_init(self: Any, *args: Any, **kwargs: Any) -> None:
        if impl.is_ours(self):
            tracker.made_ours()
        else:
            tracker.made_stock(self)
        original_init(self, *args, **kwargs)

    base_loop.__init__ = tracking_init  # type: ignore[method-assign]

    # test_utils.TestCase.new_test_loop(gen): TestLoop's virtual-time contract
    test_utils = importlib.import_module("test.test_asyncio.utils")
    if impl.name == "asyncio":

        class VirtualTimeLoop(test_utils.TestLoop):  # type: ignore[misc,name-defined]
            """The stock TestLoop, under a class of its own (reference run)."""

    else:
        VirtualTimeLoop = virtual_time_loop_factory(impl.loop_types[0], impl.loop_mode)
    impl.loop_types = (*impl.loop_types, VirtualTimeLoop)

    def new_test_loop(self: Any, gen: Any = None) -> Any:
        loop = VirtualTimeLoop(gen)
        if not counts_itself:
            tracker.made_ours()
        self.set_event_loop(loop)
        return loop

    test_utils.TestCase.new_test_loop = new_test_loop

    policy_class = asyncio.DefaultEventLoopPolicy
    policy_class._loop_factory = staticmethod(new_loop)  # type: ignore[attr-defined]

    stock_selector_loop = asyncio.SelectorEventLoop

    class SubstitutedMeta(type):
        # isinstance(loop, asyncio.EventLoop) must hold for what the name makes
        def __instancecheck__(cls, obj: object) -> bool:
            return impl.is_ours(obj) or isinstance(obj, stock_selector_loop)

        def __subclasscheck__(cls, sub: type) -> bool:
            return issubclass(sub, (*impl.loop_types, stock_selector_loop))

    class SubstitutedLoop(metaclass=SubstitutedMeta):
        """Stands for asyncio.SelectorEventLoop/EventLoop: ours unless a selector is given."""

        def __new__(cls, selector: Any = None) -> Any:
            if selector is None:
                return new_loop()
            return stock_selector_loop(selector)

    modules = [asyncio, asyncio.events]
    unix_events = getattr(asyncio, "unix_events", None)
    if unix_events is not None:
        modules.append(unix_events)
    for module in modules:
        for attr in ("SelectorEventLoop", "EventLoop"):
            if getattr(module, attr, None) is stock_selector_loop:
                setattr(module, attr, SubstitutedLoop)
    return new_loop


class _LoggerViaBaseEvents:
    """The ``asyncio`` logger, reached through ``asyncio.base_events.logger``.

    CPython's tests observe "the loop logged an error" by patching
    ``asyncio.base_events.logger``, the name through which the stock loop
    reaches the ``asyncio`` logger. Our loop logs on the same logger through
    its own module attribute; routing that attribute through the one the tests
    patch lets them observe our loop's real logging.
    """

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio.base_events.logger, name)


def route_logging(impl: Impl) -> None:
    """Send the implementation's loop logging through ``asyncio.base_events.logger``."""
    if not impl.name.startswith("sansloop"):
        return
    for name in ("sansloop.compat.errors", "sansloop.compat.loop"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, "logger"):
            module.logger = _LoggerViaBaseEvents()  # type: ignore[attr-defined]


#: loop-parametrized mixins: module -> (the stock concrete class whose bases
#: CPython uses on this platform, the method that makes the loop, the stock
#: concrete classes that the bound class replaces)
_MIXIN_BINDINGS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "test_events": (
        "SelectEventLoopTests",
        "create_event_loop",
        (
            "SelectEventLoopTests",
            "EPollEventLoopTests",
            "PollEventLoopTests",
            "KqueueEventLoopTests",
        ),
    ),
    "test_sock_lowlevel": (
        "SelectEventLoopTests",
        "create_event_loop",
        (
            "SelectEventLoopTests",
            "EPollEventLoopTests",
            "PollEventLoopTests",
            "KqueueEventLoopTests",
        ),
    ),
    "test_sendfile": (
        "SelectEventLoopTests",
        "create_event_loop",
        (
            "SelectEventLoopTests",
            "EPollEventLoopTests",
            "PollEventLoopTests",
            "KqueueEventLoopTests",
        ),
    ),
    "test_buffered_proto": (
        "BufferedProtocolSelectorTests",
        "new_loop",
        ("BufferedProtocolSelectorTests",),
    ),
    "test_server": ("SelectorStartServerTests", "new_loop", ("SelectorStartServerTests",)),
    "test_sslproto": ("SelectorStartTLSTests", "new_loop", ("SelectorStartTLSTests",)),
}


def loop_mode_bindings(
    module: types.ModuleType, impl: Impl, new_loop: Callable[[], Any]
) -> tuple[list[type], set[str]]:
    """Classes bound to our loop for ``module``, and the stock classes they replace.

    ``new_loop`` is the (tracked) factory of our loops.
    """
    name = module.__name__.rpartition(".")[2]
    added: list[type] = []
    replaced: set[str] = set()
    spec = _MIXIN_BINDINGS.get(name)
    if spec is not None:
        template_name, method, replaces = spec
        template = getattr(module, template_name, None)
        if template is not None:
            cls = _make(
                module,
                f"{PREFIX}{template_name}",
                template.__bases__,
                {method: lambda self: new_loop()},
            )
            added.append(cls)
            replaced = {r for r in replaces if hasattr(module, r)}
    if name == "test_runners":
        base = getattr(module, "BaseTest", None)
        if base is not None:

            def runner_new_loop(self: Any) -> Any:
                # CPython's version is a mocked BaseEventLoop; ours is real. The
                # tests only need to know that Runner called shutdown_asyncgens.
                loop = new_loop()
                loop.shutdown_ag_run = False
                real_shutdown = loop.shutdown_asyncgens

                async def shutdown_asyncgens() -> None:
                    loop.shutdown_ag_run = True
                    await real_shutdown()

                loop.shutdown_asyncgens = shutdown_asyncgens
                return loop

            base.new_loop = runner_new_loop
    if name == "test_pep492":
        base = getattr(module, "BaseTest", None)
        if base is not None:

            def pep492_setup(self: Any) -> None:
                # CPython's is a BaseEventLoop whose selector is a mock that
                # never blocks; the tests only need a loop that runs.
                super(base, self).setUp()
                self.loop = new_loop()
                self.set_event_loop(self.loop)

            base.setUp = pep492_setup
    return added, replaced
