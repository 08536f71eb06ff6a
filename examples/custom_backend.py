"""A complete sansloop backend on ``select.select``, to copy and adapt.

Run the conformance suite on it:
    python -m sansloop.backends.conformance examples.custom_backend:SelectBackend
and use it:
    loop = sansloop.new_event_loop(backend=SelectBackend())
"""

import select
import socket

from sansloop.backends import EVENT_READ, EVENT_WRITE, Backend


class SelectBackend(Backend):
    name = "select-example"

    def __init__(self):
        self._interest = {}  # fd -> EVENT_READ | EVENT_WRITE: what is registered
        self._waker, self._wake_writer = socket.socketpair()  # the wakeup channel
        self._waker.setblocking(False)
        self._wake_writer.setblocking(False)
        self._wakeup_pending = False  # a flag, not a queue: one byte per poll at most
        self._closed = False

    def register(self, fd, events):
        self._check(fd, events)
        if fd in self._interest:
            raise KeyError(f"fd {fd} is already registered")
        self._interest[fd] = events

    def modify(self, fd, events):
        self._check(fd, events)
        if fd not in self._interest:
            raise KeyError(f"fd {fd} is not registered")
        self._interest[fd] = events

    def unregister(self, fd):
        if self._closed:
            raise RuntimeError("backend is closed")
        del self._interest[fd]  # KeyError if it is not registered

    def poll(self, timeout):
        if self._closed:
            raise RuntimeError("backend is closed")
        if timeout is not None:
            timeout = min(max(timeout, 0.0), 86400.0)  # select() rejects < 0 and inf
        readers = [fd for fd, ev in self._interest.items() if ev & EVENT_READ]
        writers = [fd for fd, ev in self._interest.items() if ev & EVENT_WRITE]
        r, w, _ = select.select([self._waker, *readers], writers, [], timeout)
        ready = dict.fromkeys(w, EVENT_WRITE)
        for fd in r:
            if fd is self._waker:  # drain, then clear the flag: never report it
                while self._drain_once():
                    pass
                self._wakeup_pending = False
            else:
                ready[fd] = ready.get(fd, 0) | EVENT_READ
        return list(ready.items())

    def wakeup(self):  # any thread; select() reports errors/hang-ups as r or w
        if not self._wakeup_pending and not self._closed:
            self._wakeup_pending = True
            try:
                self._wake_writer.send(b"\0")
            except OSError:  # full (a wakeup is pending anyway) or closed meanwhile
                pass

    def close(self):
        if not self._closed:
            self._closed = True
            self._waker.close()
            self._wake_writer.close()

    def statistics(self):
        return {"registered_fds": len(self._interest)}

    def _drain_once(self):
        try:
            return self._waker.recv(4096)
        except BlockingIOError:
            return b""

    def _check(self, fd, events):
        if self._closed:
            raise RuntimeError("backend is closed")
        if fd < 0 or not events or events & ~(EVENT_READ | EVENT_WRITE):
            raise ValueError(f"invalid fd {fd} or events {events}")
