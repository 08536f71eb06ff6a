"""The I/O interest table tells the loop exactly which backend call to make."""

from __future__ import annotations

from sansloop.core.handles import Handle
from sansloop.core.interest import MODIFY, NOTHING, READ, REGISTER, UNREGISTER, WRITE, InterestTable


def _handle() -> Handle:
    return Handle(print, (), None)


def test_register_modify_unregister_sequence():
    table = InterestTable()
    reader, writer = _handle(), _handle()
    assert table.set_reader(5, reader) == (REGISTER, READ, None)
    assert table.set_writer(5, writer) == (MODIFY, READ | WRITE, None)
    assert table.remove_reader(5) == (MODIFY, WRITE, reader)
    assert table.remove_writer(5) == (UNREGISTER, 0, writer)
    assert 5 not in table and len(table) == 0


def test_replacing_a_reader_returns_the_old_one_and_keeps_the_mask():
    table = InterestTable()
    first, second = _handle(), _handle()
    table.set_reader(3, first)
    assert table.set_reader(3, second) == (NOTHING, READ, first)
    assert table.reader(3) is second


def test_removing_what_is_not_there_is_nothing():
    table = InterestTable()
    assert table.remove_reader(9) == (NOTHING, 0, None)
    table.set_writer(9, _handle())
    assert table.remove_reader(9) == (NOTHING, 0, None)
    assert table.writer(9) is not None


def test_fds_listed_in_registration_order_and_statistics():
    table = InterestTable()
    for fd in (30, 4, 17):
        table.set_reader(fd, _handle())
    table.set_writer(4, _handle())
    assert table.fds() == [30, 4, 17]
    assert table.statistics() == {"fds": 3, "readers": 3, "writers": 1}
    table.forget(30)
    assert table.fds() == [4, 17]


def test_clear_returns_every_handle_and_empties_the_table():
    table = InterestTable()
    r, w = _handle(), _handle()
    table.set_reader(1, r)
    table.set_writer(1, w)
    table.set_reader(2, _handle())
    assert len(table.clear()) == 3
    assert len(table) == 0 and table.fds() == []
