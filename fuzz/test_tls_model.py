"""TLSMachine pairs under random fragmentation and interleavings (hypothesis).

Two machines (trustme certificates) talk over a wire that hypothesis controls:
each direction holds the ciphertext in flight, and a step delivers any number
of its first bytes (one byte, part of a record, several records). Sends from
either side, the server's late start of the handshake and deliveries are
interleaved at random. The model is two byte strings: everything each side
sent, in order. Properties:

- what each side receives is always a prefix of what the other sent, and all
  of it once the wire is drained;
- every input does bounded work (the drain loop has a fixed bound);
- the end is told truthfully: a close_notify exchange ends ``Closed`` on both
  sides after all the data; a FIN without close_notify ends ``Truncated``.
"""

from __future__ import annotations

import ssl
from typing import Any

import trustme
from hypothesis import given, settings
from hypothesis import strategies as st

from sansloop.core.tls import (
    Closed,
    CloseNotifyReceived,
    DataReceived,
    Failed,
    HandshakeComplete,
    State,
    TLSMachine,
    Truncated,
)

_CA = trustme.CA()
_CERT = _CA.issue_cert("localhost")
_SERVER_CTX = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
_CERT.configure_cert(_SERVER_CTX)
_CLIENT_CTX = ssl.create_default_context()
_CA.configure_trust(_CLIENT_CTX)

SIDES = ("client", "server")
OTHER = {"client": "server", "server": "client"}


class World:
    def __init__(self) -> None:
        self.m = {
            "client": TLSMachine(_CLIENT_CTX, server_hostname="localhost"),
            "server": TLSMachine(_SERVER_CTX, server_side=True),
        }
        self.flight = {"client": bytearray(), "server": bytearray()}  # sent by key
        self.sent = {"client": bytearray(), "server": bytearray()}
        self.got = {"client": bytearray(), "server": bytearray()}
        self.events: dict[str, list[Any]] = {"client": [], "server": []}
        self.server_started = False

    def take(self, side: str, events: list[Any]) -> None:
        for event in events:
            if isinstance(event, DataReceived):
                assert event.data
                self.got[side] += event.data
            else:
                self.events[side].append(event)
        # the received stream is always a prefix of what the peer sent
        assert self.sent[OTHER[side]].startswith(self.got[side])

    def collect(self, side: str) -> None:
        self.flight[side] += self.m[side].data_to_send()

    def send(self, side: str, data: bytes) -> None:
        self.sent[side] += data
        self.take(side, self.m[side].send_plaintext(data))
        self.collect(side)

    def start_server(self) -> None:
        if not self.server_started:
            self.server_started = True
            self.take("server", self.m["server"].start_handshake())
            self.collect("server")

    def deliver(self, src: str, n: int) -> None:
        self.collect(src)
        data = bytes(self.flight[src][:n])
        del self.flight[src][:n]
        if data:
            dst = OTHER[src]
            self.take(dst, self.m[dst].receive_ciphertext(data))
            self.collect(dst)

    def drain(self) -> None:
        for _ in range(200):
            for side in SIDES:
                self.collect(side)
            if not (self.flight["client"] or self.flight["server"]):
                return
            for side in SIDES:
                self.deliver(side, len(self.flight[side]))
        raise AssertionError("the wire never drained")


ops = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.sampled_from(SIDES), st.binary(min_size=1, max_size=3000)),
        st.tuples(st.just("deliver"), st.sampled_from(SIDES), st.integers(1, 2000)),
        st.tuples(st.just("start_server"), st.just("server"), st.just(0)),
    ),
    max_size=40,
)


@settings(max_examples=50, deadline=None)
@given(script=ops, ending=st.sampled_from(["client closes", "server closes", "truncate"]))
def test_streams_arrive_intact_in_order_and_the_end_is_told(
    script: list[tuple[str, str, Any]], ending: str
) -> None:
    world = World()
    world.take("client", world.m["client"].start_handshake())
    world.collect("client")
    for op, side, arg in script:
        if op == "send":
            world.send(side, arg)
        elif op == "deliver":
            world.deliver(side, arg)
        else:
            world.start_server()
    world.start_server()
    world.drain()

    for side in SIDES:
        assert world.m[side].state is State.WRAPPED
        assert world.events[side] == [world.events[side][0]]
        assert isinstance(world.events[side][0], HandshakeComplete)
        assert world.m[side].buffered_plaintext == 0
        assert world.got[side] == world.sent[OTHER[side]]

    if ending == "truncate":
        (event,) = world.m["client"].peer_eof()
        assert isinstance(event, Truncated) and isinstance(event.exc, ssl.SSLEOFError)
        assert world.m["client"].state is State.FAILED
        return
    closer = "client" if ending == "client closes" else "server"
    world.send(closer, b"bye")
    world.take(closer, world.m[closer].start_shutdown())
    world.drain()
    other = OTHER[closer]
    assert world.got[other] == world.sent[closer]
    assert [type(e) for e in world.events[other][1:]] == [CloseNotifyReceived, Closed]
    assert [type(e) for e in world.events[closer][1:]] == [Closed]
    for side in SIDES:
        assert world.events[side][-1] == Closed(peer_close_notify=True)
        assert world.m[side].state is State.CLOSED


def _length_field_offsets(wire: bytes) -> set[int]:
    """Offsets of the 2-byte length field of each TLS record on *wire*."""
    offsets, at = set(), 0
    while at + 5 <= len(wire):
        offsets |= {at + 3, at + 4}
        at += 5 + int.from_bytes(wire[at + 3 : at + 5], "big")
    assert at == len(wire)
    return offsets


@settings(max_examples=50, deadline=None)
@given(
    messages=st.lists(st.binary(min_size=1, max_size=2000), min_size=1, max_size=5),
    position=st.integers(min_value=0),
    flip=st.integers(1, 255),
    chunk=st.integers(1, 500),
)
def test_a_corrupted_record_ends_in_an_ssl_error_never_in_bad_data(
    messages: list[bytes], position: int, flip: int, chunk: int
) -> None:
    """One byte of the server's application records is changed on the wire:
    the client delivers only an intact prefix and ends in Failed(SSLError),
    within a bounded number of inputs (one per chunk)."""
    world = World()
    world.take("client", world.m["client"].start_handshake())
    world.collect("client")
    world.start_server()
    world.drain()
    client = world.m["client"]
    assert client.state is State.WRAPPED
    for message in messages:
        world.send("server", message)
    world.collect("server")
    wire = bytearray(world.flight["server"])
    world.flight["server"].clear()
    position %= len(wire)
    in_length_field = position in _length_field_offsets(bytes(wire))
    wire[position] ^= flip
    failures = []
    for i in range(0, len(wire), chunk):
        for event in client.receive_ciphertext(bytes(wire[i : i + chunk])):
            if isinstance(event, DataReceived):
                world.got["client"] += event.data
            else:
                failures.append(event)
        assert world.sent["server"].startswith(world.got["client"])
    # the corrupted record is never delivered, so the stream is cut short
    assert world.got["client"] != world.sent["server"]
    if client.state is State.WRAPPED:
        # only a longer length field can leave the client waiting for more
        # bytes; the peer's FIN then tells truncation, never a clean close
        assert in_length_field, (position, failures)
        failures += client.peer_eof()
        assert [type(e) for e in failures] == [Truncated]
    else:
        assert len(failures) == 1 and isinstance(failures[0], Failed), failures
        assert isinstance(failures[0].exc, ssl.SSLError)
    assert client.state is State.FAILED
