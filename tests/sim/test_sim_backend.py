"""SimBackend at the socket level: virtual time, readiness, TCP rules, choices."""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator

import pytest

from sansloop import sim
from sansloop.backends.base import EVENT_READ, EVENT_WRITE


class Fixed:
    """A choice source answering from a script, then 0; records the labels asked."""

    def __init__(self, answers: dict[str, list[int]] | None = None) -> None:
        self.answers = {k: list(v) for k, v in (answers or {}).items()}
        self.labels: list[str] = []

    def choose(self, n: int, label: str) -> int:
        self.labels.append(label)
        queue = self.answers.get(label)
        return min(queue.pop(0), n - 1) if queue else 0


@pytest.fixture
def backend() -> Iterator[sim.SimBackend]:
    b = sim.SimBackend(seed=1, guard=False)
    yield b
    b.close()


def _pair(b: sim.SimBackend) -> tuple[socket.socket, socket.socket, socket.socket]:
    listener = b.socket()
    listener.bind(("127.0.0.1", 80))
    listener.listen(8)
    client = b.socket()
    client.setblocking(False)
    with pytest.raises(BlockingIOError) as info:
        client.connect(("127.0.0.1", 80))
    assert info.value.errno == errno.EINPROGRESS
    b.register(client.fileno(), EVENT_WRITE)
    while not b.poll(10):
        pass
    b.unregister(client.fileno())
    assert client.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
    server, peer = listener.accept()
    server.setblocking(False)
    assert peer == client.getsockname() == server.getpeername()
    return listener, client, server


def _read_all(b: sim.SimBackend, sock: socket.socket, n: int) -> bytes:
    got = b""
    b.register(sock.fileno(), EVENT_READ)
    try:
        for _ in range(10_000):
            if len(got) >= n:
                break
            if b.poll(5):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                got += chunk
    finally:
        b.unregister(sock.fileno())
    return got


def test_poll_jumps_virtual_time(backend: sim.SimBackend) -> None:
    assert backend.time() == 0.0
    assert backend.poll(3600) == []
    assert backend.time() == 3600.0
    assert backend.poll(0) == [] and backend.time() == 3600.0
    with pytest.raises(sim.Deadlock):
        backend.poll(None)
    backend.wakeup()
    assert backend.poll(None) == []  # a wakeup made before: returns at once


def test_tcp_keeps_order_under_segmentation() -> None:
    b = sim.SimBackend(seed=3, guard=False, tcp_segment_one_in=1, latency=(0.001, 0.1))
    try:
        _, client, server = _pair(b)
        data = bytes(range(256)) * 400
        sent = 0
        while sent < len(data):
            sent += client.send(data[sent:])
        assert _read_all(b, server, len(data)) == data
        cuts = [e for e in b.trace.kinds("seg") if e[4] == "data"]
        assert len(cuts) > 2  # it was really cut
    finally:
        b.close()


def test_window_full_then_writable_after_reads(backend: sim.SimBackend) -> None:
    _, client, server = _pair(backend)
    total = 0
    with pytest.raises(BlockingIOError):
        for _ in range(1000):
            total += client.send(b"x" * 65536)
    assert total == backend.config.tcp_window
    backend.register(client.fileno(), EVENT_WRITE)
    assert backend.poll(1) == []  # nothing read yet: still full
    backend.unregister(client.fileno())
    assert len(_read_all(backend, server, 100_000)) >= 100_000
    backend.register(client.fileno(), EVENT_WRITE)
    assert backend.poll(0) == [(client.fileno(), EVENT_WRITE)]
    backend.unregister(client.fileno())


def test_half_close_and_close_with_unread_data_resets(backend: sim.SimBackend) -> None:
    _, client, server = _pair(backend)
    client.send(b"hello")
    client.shutdown(socket.SHUT_WR)
    assert _read_all(backend, server, 100) == b"hello"  # then EOF
    assert server.recv(10) == b""
    with pytest.raises(BrokenPipeError):
        client.send(b"more")
    server.send(b"unread")
    backend.poll(1)
    client.close()  # data left unread: RST, as Linux does
    backend.poll(1)  # (server is readable all along: it has seen EOF)
    with pytest.raises(ConnectionResetError):
        server.recv(10)
    assert server.recv(10) == b""  # reported once
    with pytest.raises(BrokenPipeError):
        server.send(b"x")


def test_reset_at_an_offset_is_chosen_by_the_source() -> None:
    # reset the client->server direction (dir 0) after exactly 7 bytes
    source = Fixed({"tcp.reset": [1], "tcp.reset.dir": [0], "tcp.reset.offset": [7]})
    b = sim.SimBackend(choices=source, guard=False, tcp_reset_one_in=2)
    try:
        _, client, server = _pair(b)
        assert client.send(b"0123456789") == 10
        assert _read_all(b, server, 7) == b"0123456"
        b.poll(1)
        with pytest.raises(ConnectionResetError):
            server.recv(10)
        b.poll(1)
        with pytest.raises(ConnectionResetError):
            client.recv(10)
        assert "tcp.reset.offset" in source.labels
    finally:
        b.close()


def test_zero_choices_give_the_calm_run() -> None:
    b = sim.SimBackend(choices=sim.ZeroChoices(), guard=False, latency=(0.25, 1.0))
    try:
        _, client, server = _pair(b)
        assert b.time() == pytest.approx(0.5, abs=1e-3)  # SYN + SYN-ACK at the minimum
        client.send(b"x" * 1000)
        assert _read_all(b, server, 1000) == b"x" * 1000
        assert [e[5] for e in b.trace.kinds("seg") if e[4] == "data"] == [1000]  # not cut
    finally:
        b.close()


def test_poll_order_rotation_is_a_choice(backend: sim.SimBackend) -> None:
    source = Fixed({"poll.order": [0, 1, 2]})
    b = sim.SimBackend(choices=source, guard=False)
    try:
        socks = [b.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
        for s in socks:
            b.register(s.fileno(), EVENT_WRITE)
        fds = [s.fileno() for s in socks]
        orders = [[fd for fd, _ in b.poll(0)] for _ in range(3)]
        assert orders == [fds, fds[1:] + fds[:1], fds[2:] + fds[:2]]
        for s in socks:
            b.unregister(s.fileno())
            s.close()
    finally:
        b.close()


def test_register_refuses_foreign_and_closed_fds(backend: sim.SimBackend) -> None:
    sock = backend.socket()
    fd = sock.fileno()
    sock.close()
    with pytest.raises(OSError):
        backend.register(fd, EVENT_READ)
    with pytest.raises(sim.NondeterminismError):
        backend.register(0, EVENT_READ)
    with pytest.raises(ValueError):
        backend.register(-1, EVENT_READ)


def test_unix_datagrams_and_paths(backend: sim.SimBackend) -> None:
    a = backend.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    b = backend.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    a.bind("/sim/a")
    b.bind("/sim/b")
    b.setblocking(False)
    a.sendto(b"ping", "/sim/b")
    backend.register(b.fileno(), EVENT_READ)
    assert backend.poll(1) == [(b.fileno(), EVENT_READ)]
    assert b.recvfrom(100) == (b"ping", "/sim/a")
    c = backend.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    with pytest.raises(OSError) as info:
        c.bind("/sim/a")
    assert info.value.errno == errno.EADDRINUSE
    a.close()
    c.bind("/sim/a")  # released on close
    backend.unregister(b.fileno())
    for s in (b, c):
        s.close()


def test_statistics_and_repr(backend: sim.SimBackend) -> None:
    sock = backend.socket()
    backend.register(sock.fileno(), EVENT_READ)
    stats = backend.statistics()
    assert stats["registered_fds"] == 1 and stats["open_fds"] == 1
    assert "sim socket" in repr(sock) and "SimBackend" in repr(backend)
    backend.unregister(sock.fileno())
    sock.close()


def test_heal_one_pair_one_host_or_everything() -> None:
    b = sim.SimBackend(hosts={"a": "10.0.0.1", "b": "10.0.0.2", "c": "10.0.0.3"}, guard=False)
    try:
        blocked = b.world.blocked
        b.partition("a", "b")
        b.partition("a", "c", oneway=True)
        b.partition("b", "c")
        b.heal("a", "b")
        assert sorted(blocked) == [("a", "c"), ("b", "c"), ("c", "b")]
        b.heal("c")
        assert not blocked
        b.partition("a", "b")
        b.heal()
        assert not blocked
    finally:
        b.close()


def test_closing_a_listener_resets_unaccepted_connections(backend: sim.SimBackend) -> None:
    listener, client, server = _pair(backend)
    second = backend.socket()
    second.setblocking(False)
    with pytest.raises(BlockingIOError):
        second.connect(("127.0.0.1", 80))
    backend.poll(1)  # connected, waiting in the accept queue
    listener.close()
    backend.poll(1)
    with pytest.raises(ConnectionResetError):
        second.recv(1)
    for s in (client, server, second):
        s.close()
