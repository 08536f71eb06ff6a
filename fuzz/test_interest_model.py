"""InterestTable under random set/remove of readers and writers on a few fds.

The driver does what the loop does: it performs each returned backend
operation on a strict fake backend (registering a known fd, or modifying or
unregistering an unknown one, is an error, as with epoll) and cancels the
handle that was replaced or removed. A reference model -- a dict from fd to
``[reader, writer]`` -- predicts every answer.

Checked after every step: the backend's masks equal the table's; the
replaced or removed handle is the model's previous one; ``reader()``,
``writer()``, ``len()``, ``in``, ``statistics()`` and ``fds()`` (registration
order, never hash order) agree with the model; ``clear()`` hands back every
handle once.
"""

from __future__ import annotations

from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from sansloop.core.interest import (
    MODIFY,
    NOTHING,
    READ,
    REGISTER,
    UNREGISTER,
    WRITE,
    InterestTable,
)

fds = st.sampled_from([3, 4, 7, 1000, 5])
slots = st.sampled_from(["reader", "writer"])


class _StrictBackend:
    def __init__(self) -> None:
        self.masks: dict[int, int] = {}

    def apply(self, fd: int, op: int, mask: int) -> None:
        if op == REGISTER:
            assert fd not in self.masks, "REGISTER of a registered fd"
            assert mask in (READ, WRITE)
            self.masks[fd] = mask
        elif op == MODIFY:
            assert fd in self.masks, "MODIFY of an unknown fd"
            assert mask in (READ, WRITE, READ | WRITE) and mask != self.masks[fd]
            self.masks[fd] = mask
        elif op == UNREGISTER:
            assert fd in self.masks, "UNREGISTER of an unknown fd"
            del self.masks[fd]
        else:
            assert op == NOTHING


class InterestMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.table = InterestTable()
        self.backend = _StrictBackend()
        self.model: dict[int, list[Any]] = {}
        self.made = 0

    def _handle(self) -> Any:
        self.made += 1
        return ("handle", self.made)

    @rule(fd=fds, slot=slots)
    def set(self, fd: int, slot: str) -> None:
        handle = self._handle()
        index = 0 if slot == "reader" else 1
        op, mask, previous = getattr(self.table, f"set_{slot}")(fd, handle)
        self.backend.apply(fd, op, mask)
        entry = self.model.setdefault(fd, [None, None])
        assert previous is entry[index]
        entry[index] = handle

    @rule(fd=fds, slot=slots)
    def remove(self, fd: int, slot: str) -> None:
        index = 0 if slot == "reader" else 1
        op, mask, previous = getattr(self.table, f"remove_{slot}")(fd)
        self.backend.apply(fd, op, mask)
        entry = self.model.get(fd)
        expected = None if entry is None else entry[index]
        assert previous is expected
        if entry is not None:
            entry[index] = None
            if entry == [None, None]:
                del self.model[fd]

    @rule()
    def clear(self) -> None:
        dropped = self.table.clear()
        expected = [h for entry in self.model.values() for h in entry if h is not None]
        assert sorted(dropped) == sorted(expected)
        self.model.clear()
        self.backend.masks.clear()  # the loop closes the backend with it

    @invariant()
    def agree(self) -> None:
        masks = {
            fd: (READ if e[0] is not None else 0) | (WRITE if e[1] is not None else 0)
            for fd, e in self.model.items()
        }
        assert self.backend.masks == masks
        assert self.table.fds() == list(self.model)
        assert len(self.table) == len(self.model)
        for fd in (3, 4, 7, 1000, 5):
            assert (fd in self.table) == (fd in self.model)
            entry = self.model.get(fd, [None, None])
            assert self.table.reader(fd) is entry[0]
            assert self.table.writer(fd) is entry[1]
        stats = self.table.statistics()
        assert stats == {
            "fds": len(self.model),
            "readers": sum(e[0] is not None for e in self.model.values()),
            "writers": sum(e[1] is not None for e in self.model.values()),
        }


InterestMachine.TestCase.settings = settings(
    max_examples=100, stateful_step_count=40, deadline=None
)
TestInterest = InterestMachine.TestCase
