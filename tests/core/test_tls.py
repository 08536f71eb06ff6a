"""TLSMachine: two machines wired to each other in memory, with trustme certificates.

No socket, no loop, no clock: a ``Wire`` moves each machine's ``data_to_send()``
into the other's ``receive_ciphertext()`` (in chunks the test chooses) until
neither has anything to say, and records each side's events. The table is
checked pair by pair against a grid written out by hand.
"""

from __future__ import annotations

import ctypes
import datetime
import itertools
import random
import re
import ssl
from collections.abc import Iterator
from typing import Any

import pytest
import trustme

from sansloop.core import tls
from sansloop.core.tls import (
    CALLER_INPUTS,
    TRANSITIONS,
    Closed,
    CloseNotifyReceived,
    DataReceived,
    Failed,
    HandshakeComplete,
    HandshakeFailed,
    Input,
    State,
    TLSMachine,
    TransitionError,
    Truncated,
)

S, In = State, Input


# -- certificates and contexts -------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_cert(ca: trustme.CA) -> trustme.LeafCert:
    return ca.issue_cert("localhost")


def server_context(cert: trustme.LeafCert) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(ctx)
    return ctx


def client_context(ca: trustme.CA | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if ca is not None:
        ca.configure_trust(ctx)
    return ctx


# -- the wire ------------------------------------------------------------------


def _pieces(data: bytes, chunk: int | None) -> Iterator[bytes]:
    if chunk is None:
        yield data
        return
    for i in range(0, len(data), chunk):
        yield data[i : i + chunk]


class Wire:
    """A client and a server machine, connected by a lossless in-memory wire."""

    def __init__(
        self,
        ca: trustme.CA | None,
        cert: trustme.LeafCert,
        *,
        hostname: str = "localhost",
        client_ctx: ssl.SSLContext | None = None,
        server_ctx: ssl.SSLContext | None = None,
    ) -> None:
        self.client_ctx = client_ctx or client_context(ca)
        self.server_ctx = server_ctx or server_context(cert)
        self.client = TLSMachine(self.client_ctx, server_hostname=hostname)
        self.server = TLSMachine(self.server_ctx, server_side=True)
        self.events: dict[str, list[Any]] = {"client": [], "server": []}

    def side(self, name: str) -> TLSMachine:
        return self.client if name == "client" else self.server

    def do(self, name: str, method: str, *args: Any) -> list[Any]:
        events: list[Any] = getattr(self.side(name), method)(*args)
        self.events[name].extend(events)
        return events

    def pump(self, chunk: int | None = None, rounds: int = 1000) -> None:
        """Carry ciphertext both ways until both machines are quiet."""
        for _ in range(rounds):
            moved = False
            for src, dst in (("client", "server"), ("server", "client")):
                data = self.side(src).data_to_send()
                if data:
                    moved = True
                    for piece in _pieces(data, chunk):
                        self.do(dst, "receive_ciphertext", piece)
            if not moved:
                return
        raise AssertionError("the machines never went quiet")

    def handshake(self, chunk: int | None = None) -> None:
        self.do("client", "start_handshake")
        self.do("server", "start_handshake")
        self.pump(chunk)

    def received(self, name: str) -> bytes:
        return b"".join(e.data for e in self.events[name] if isinstance(e, DataReceived))

    def kinds(self, name: str) -> list[type]:
        return [type(e) for e in self.events[name] if not isinstance(e, DataReceived)]


@pytest.fixture
def wire(ca: trustme.CA, server_cert: trustme.LeafCert) -> Wire:
    return Wire(ca, server_cert)


@pytest.fixture
def connected(wire: Wire) -> Wire:
    wire.handshake()
    assert wire.client.state is S.WRAPPED and wire.server.state is S.WRAPPED
    return wire


# -- handshake -------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [None, 1, 7])
def test_handshake_completes_on_both_sides(wire: Wire, chunk: int | None) -> None:
    wire.handshake(chunk)
    assert wire.kinds("client") == [HandshakeComplete]
    assert wire.kinds("server") == [HandshakeComplete]
    done = wire.events["client"][0]
    assert done.ssl_object is wire.client.ssl_object
    assert done.version in ("TLSv1.2", "TLSv1.3")
    assert done.cipher is not None and done.cipher[1] == done.version
    assert done.peercert is not None
    assert ("DNS", "localhost") in done.peercert["subjectAltName"]
    assert wire.events["server"][0].peercert is None  # no client certificate asked
    info = wire.client.extra_info()
    assert info["sslcontext"] is wire.client_ctx
    assert info["ssl_object"] is wire.client.ssl_object
    assert info["peercert"] == done.peercert
    assert info["cipher"] == done.cipher
    assert info["compression"] == done.compression


def test_extra_info_before_the_handshake_has_no_peer_keys(wire: Wire) -> None:
    assert set(wire.client.extra_info()) == {"sslcontext", "ssl_object"}


def test_handshake_over_tls12(ca: trustme.CA, server_cert: trustme.LeafCert) -> None:
    ctx = client_context(ca)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    wire = Wire(ca, server_cert, client_ctx=ctx)
    wire.handshake(chunk=3)
    assert wire.events["client"][0].version == "TLSv1.2"
    wire.do("client", "send_plaintext", b"over 1.2")
    wire.pump()
    assert wire.received("server") == b"over 1.2"


def test_early_client_hello_waits_for_the_servers_start(wire: Wire) -> None:
    # bpo-33674: bytes that arrive before the handshake starts are not lost.
    wire.do("client", "start_handshake")
    hello = wire.client.data_to_send()
    assert hello
    assert wire.do("server", "receive_ciphertext", hello) == []
    assert wire.server.state is S.UNWRAPPED
    assert wire.server.statistics()["incoming_ciphertext"] == len(hello)
    wire.do("server", "start_handshake")
    wire.pump()
    assert wire.kinds("client") == [HandshakeComplete]
    assert wire.kinds("server") == [HandshakeComplete]


# -- application data -------------------------------------------------------------


def test_data_both_ways_one_byte_at_a_time(connected: Wire) -> None:
    a = bytes(range(256)) * 20
    b = b"\x00\xff" * 3000
    connected.do("client", "send_plaintext", a)
    connected.do("server", "send_plaintext", b)
    connected.pump(chunk=1)
    assert connected.received("server") == a
    assert connected.received("client") == b


def test_four_mib_both_ways(connected: Wire) -> None:
    rng = random.Random(4)
    a = rng.randbytes(4 * 1024 * 1024)
    b = rng.randbytes(4 * 1024 * 1024 + 17)
    for i in range(0, len(a), 1 << 20):
        connected.do("client", "send_plaintext", a[i : i + (1 << 20)])
    connected.do("server", "send_plaintext", b)
    assert connected.client.buffered_plaintext == 0  # encrypted at once when wrapped
    assert connected.client.buffered_ciphertext > len(a)
    connected.pump(chunk=65536)
    assert connected.received("server") == a
    assert connected.received("client") == b
    # a single read never hands out more than READ_SIZE
    sizes = [len(e.data) for e in connected.events["server"] if isinstance(e, DataReceived)]
    assert max(sizes) <= tls.READ_SIZE


def test_data_to_send_takes_at_most_max_bytes(connected: Wire) -> None:
    connected.do("client", "send_plaintext", b"x" * 5000)
    total = connected.client.buffered_ciphertext
    first = connected.client.data_to_send(100)
    assert len(first) == 100
    assert connected.client.data_to_send(0) == b""
    rest = connected.client.data_to_send()
    assert len(first) + len(rest) == total
    connected.do("server", "receive_ciphertext", first + rest)
    assert connected.received("server") == b"x" * 5000


def test_plaintext_sent_before_the_handshake_follows_it_in_order(wire: Wire) -> None:
    wire.do("client", "send_plaintext", b"early ")
    wire.do("client", "start_handshake")
    wire.do("client", "send_plaintext", b"and during")
    assert wire.client.buffered_plaintext == len(b"early and during")
    wire.do("server", "start_handshake")
    wire.pump(chunk=5)
    assert wire.client.buffered_plaintext == 0
    assert wire.received("server") == b"early and during"
    assert wire.kinds("server") == [HandshakeComplete]
    # the handshake event comes before the first data
    assert isinstance(wire.events["server"][0], HandshakeComplete)


# -- shutdown ------------------------------------------------------------------------


@pytest.mark.parametrize("closer", ["client", "server"])
def test_clean_shutdown_with_close_notify(connected: Wire, closer: str) -> None:
    other = "server" if closer == "client" else "client"
    connected.do(closer, "send_plaintext", b"last words")
    connected.do(closer, "start_shutdown")
    assert connected.side(closer).state is S.SHUTDOWN
    connected.pump(chunk=2)
    assert connected.received(other) == b"last words"
    assert connected.kinds(other) == [HandshakeComplete, CloseNotifyReceived, Closed]
    assert connected.kinds(closer) == [HandshakeComplete, Closed]
    assert connected.events[closer][-1] == Closed(peer_close_notify=True)
    assert connected.events[other][-1] == Closed(peer_close_notify=True)
    assert connected.client.state is S.CLOSED and connected.server.state is S.CLOSED
    # the FIN that follows, and stray bytes, change nothing
    assert connected.do(closer, "peer_eof") == []
    assert connected.do(other, "receive_ciphertext", b"late") == []


def test_both_sides_shut_down_at_once(connected: Wire) -> None:
    connected.do("client", "start_shutdown")
    connected.do("server", "start_shutdown")
    connected.pump()
    for name in ("client", "server"):
        assert connected.events[name][-1] == Closed(peer_close_notify=True)
        assert connected.side(name).state is S.CLOSED


def test_data_the_peer_sends_during_our_shutdown_is_delivered(connected: Wire) -> None:
    connected.do("client", "start_shutdown")
    connected.do("server", "send_plaintext", b"in flight")
    connected.pump()
    assert connected.received("client") == b"in flight"
    assert connected.events["client"][-1] == Closed(peer_close_notify=True)


def test_shutdown_during_the_handshake_waits_and_flushes(wire: Wire) -> None:
    wire.do("client", "start_handshake")
    wire.do("client", "send_plaintext", b"queued")
    wire.do("client", "start_shutdown")
    assert wire.client.state is S.FLUSHING
    assert wire.do("client", "start_shutdown") == []  # idempotent
    wire.do("server", "start_handshake")
    wire.pump(chunk=1)
    assert wire.received("server") == b"queued"
    assert wire.kinds("server") == [HandshakeComplete, CloseNotifyReceived, Closed]
    assert wire.kinds("client") == [HandshakeComplete, Closed]


def test_shutdown_before_the_handshake_closes_at_once(wire: Wire) -> None:
    wire.do("client", "send_plaintext", b"never")
    assert wire.do("client", "start_shutdown") == [Closed(peer_close_notify=False)]
    assert wire.client.buffered_plaintext == 0
    assert wire.client.data_to_send() == b""


def test_eof_after_our_close_notify_is_a_close_not_a_truncation(connected: Wire) -> None:
    connected.do("client", "start_shutdown")
    connected.client.data_to_send()  # the close_notify is lost with the peer
    assert connected.do("client", "peer_eof") == [Closed(peer_close_notify=False)]
    assert connected.client.state is S.CLOSED


def test_shutdown_timeout_when_the_peer_never_answers(connected: Wire) -> None:
    connected.do("client", "start_shutdown")
    connected.client.data_to_send()
    (event,) = connected.do("client", "shutdown_timeout")
    assert isinstance(event, Failed)
    assert type(event.exc) is TimeoutError and str(event.exc) == "SSL shutdown timed out"
    assert connected.client.state is S.FAILED


# -- truncation ------------------------------------------------------------------------


@pytest.mark.parametrize("ignore_eof", [False, True], ids=["default", "OP_IGNORE_UNEXPECTED_EOF"])
def test_eof_without_close_notify_is_truncation(
    ca: trustme.CA, server_cert: trustme.LeafCert, ignore_eof: bool
) -> None:
    ctx = client_context(ca)
    if ignore_eof:
        ctx.options |= ssl.OP_IGNORE_UNEXPECTED_EOF
    wire = Wire(ca, server_cert, client_ctx=ctx)
    wire.handshake()
    wire.do("server", "send_plaintext", b"partial answer")
    wire.pump()
    events = wire.do("client", "peer_eof")  # FIN, no close_notify
    assert len(events) == 1 and isinstance(events[0], Truncated)
    assert isinstance(events[0].exc, ssl.SSLEOFError)
    assert wire.received("client") == b"partial answer"
    assert wire.client.state is S.FAILED
    assert Closed not in wire.kinds("client") and CloseNotifyReceived not in wire.kinds("client")
    assert ctx.options & ssl.OP_IGNORE_UNEXPECTED_EOF == (
        ssl.OP_IGNORE_UNEXPECTED_EOF if ignore_eof else 0
    )


def test_eof_in_the_middle_of_a_record_is_truncation(connected: Wire) -> None:
    connected.do("server", "send_plaintext", b"y" * 1000)
    data = connected.server.data_to_send()
    connected.do("client", "receive_ciphertext", data[: len(data) // 2])
    (event,) = connected.do("client", "peer_eof")
    assert isinstance(event, Truncated)
    assert connected.received("client") == b""


def test_dropped_close_notify_then_eof_is_truncation(connected: Wire) -> None:
    connected.do("server", "start_shutdown")
    connected.server.data_to_send()  # the close_notify never arrives
    (event,) = connected.do("client", "peer_eof")
    assert isinstance(event, Truncated)


def test_eof_during_the_handshake_fails_it(wire: Wire) -> None:
    wire.do("client", "start_handshake")
    wire.client.data_to_send()
    (event,) = wire.do("client", "peer_eof")
    assert isinstance(event, HandshakeFailed)
    assert isinstance(event.exc, ssl.SSLError)
    assert wire.client.state is S.FAILED


def test_eof_before_the_handshake_fails_it_when_it_starts(wire: Wire) -> None:
    assert wire.do("server", "peer_eof") == []
    (event,) = wire.do("server", "start_handshake")
    assert isinstance(event, HandshakeFailed) and isinstance(event.exc, ssl.SSLError)


# -- verification ------------------------------------------------------------------------


def _handshake_errors(wire: Wire) -> tuple[BaseException, list[type]]:
    wire.handshake()
    client = [e for e in wire.events["client"] if isinstance(e, HandshakeFailed)]
    assert len(client) == 1, wire.events["client"]
    assert wire.client.state is S.FAILED
    assert HandshakeComplete not in wire.kinds("client")
    return client[0].exc, wire.kinds("server")


def test_hostname_mismatch_fails_verification(ca: trustme.CA, server_cert: Any) -> None:
    exc, server = _handshake_errors(Wire(ca, server_cert, hostname="example.com"))
    assert isinstance(exc, ssl.SSLCertVerificationError)
    assert "Hostname mismatch" in exc.verify_message
    assert server == [HandshakeFailed]  # the client's alert ends the server's handshake


def test_unknown_ca_fails_verification(server_cert: trustme.LeafCert) -> None:
    exc, _ = _handshake_errors(Wire(trustme.CA(), server_cert))
    assert isinstance(exc, ssl.SSLCertVerificationError)
    assert exc.verify_message == "unable to get local issuer certificate"


def test_expired_certificate_fails_verification(ca: trustme.CA) -> None:
    past = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
    expired = ca.issue_cert("localhost", not_before=past, not_after=past + datetime.timedelta(1))
    exc, _ = _handshake_errors(Wire(ca, expired))
    assert isinstance(exc, ssl.SSLCertVerificationError)
    assert exc.verify_message == "certificate has expired"


def test_the_default_context_verifies_and_is_never_weakened(
    ca: trustme.CA, server_cert: trustme.LeafCert
) -> None:
    ctx = client_context(ca)
    before = (ctx.verify_mode, ctx.check_hostname, ctx.options, ctx.minimum_version)
    assert before[:2] == (ssl.CERT_REQUIRED, True)
    wire = Wire(ca, server_cert, client_ctx=ctx)
    wire.handshake()
    wire.do("client", "start_shutdown")
    wire.pump()
    assert (ctx.verify_mode, ctx.check_hostname, ctx.options, ctx.minimum_version) == before
    # the same context, pointed at the wrong name, still refuses
    bad = Wire(ca, server_cert, client_ctx=ctx, hostname="other.test")
    exc, _ = _handshake_errors(bad)
    assert isinstance(exc, ssl.SSLCertVerificationError)


@pytest.mark.parametrize("hostname", [None, ""])
def test_a_verifying_client_needs_a_server_hostname(ca: trustme.CA, hostname: Any) -> None:
    # SSLContext.wrap_bio alone would accept this and then check no name at all.
    with pytest.raises(ValueError, match="^check_hostname requires server_hostname$"):
        TLSMachine(client_context(ca), server_hostname=hostname)


def test_wrap_bio_alone_would_skip_the_name_check(ca: trustme.CA, server_cert: Any) -> None:
    """Why the machine refuses a missing server_hostname: the stdlib does not."""
    ctx = client_context(ca)
    obj = ctx.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname=None)
    assert obj.server_hostname is None and ctx.check_hostname


def test_an_empty_server_hostname_is_refused_by_the_context(ca: trustme.CA) -> None:
    # asyncio turns server_hostname='' into "no name check" by passing None
    # with check_hostname off; the machine itself only forwards what it is given.
    ctx = client_context(ca)
    ctx.check_hostname = False
    machine = TLSMachine(ctx)
    assert machine.ssl_object.server_hostname is None


@pytest.mark.parametrize("name", ["handshake_timeout", "shutdown_timeout"])
@pytest.mark.parametrize("value", [0, -1.5])
def test_timeouts_must_be_positive(ca: trustme.CA, name: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"ssl_{name} should be a positive number, got {value}"):
        TLSMachine(client_context(ca), server_hostname="localhost", **{name: value})


# -- timeouts and bad peers -------------------------------------------------------------


def test_handshake_timeout_fails_the_handshake(ca: trustme.CA, server_cert: Any) -> None:
    machine = TLSMachine(server_context(server_cert), server_side=True, handshake_timeout=2.5)
    machine.start_handshake()  # a client that never sends its ClientHello
    (event,) = machine.handshake_timeout()
    assert isinstance(event, HandshakeFailed)
    assert type(event.exc) is ConnectionAbortedError
    assert str(event.exc) == (
        "SSL handshake is taking longer than 2.5 seconds: aborting the connection"
    )
    assert machine.state is S.FAILED
    assert machine.receive_ciphertext(b"\x16\x03\x01") == []  # too late: ignored


def test_stale_timers_are_no_ops(connected: Wire) -> None:
    assert connected.do("client", "handshake_timeout") == []
    assert connected.do("client", "shutdown_timeout") == []
    assert connected.client.state is S.WRAPPED


@pytest.mark.parametrize("seed", range(5))
def test_garbage_after_the_handshake_is_an_ssl_error(connected: Wire, seed: int) -> None:
    rng = random.Random(seed)
    events: list[Any] = []
    for _ in range(10_000):
        events += connected.do("client", "receive_ciphertext", rng.randbytes(rng.randint(1, 64)))
        if events:
            break
    assert len(events) == 1 and isinstance(events[0], Failed)
    assert isinstance(events[0].exc, ssl.SSLError)
    assert connected.client.state is S.FAILED
    # from now on the machine ignores the network and refuses the application
    assert connected.do("client", "receive_ciphertext", b"more") == []
    with pytest.raises(TransitionError):
        connected.client.send_plaintext(b"x")


def test_a_corrupted_record_is_an_ssl_error(connected: Wire) -> None:
    connected.do("server", "send_plaintext", b"z" * 100)
    record = bytearray(connected.server.data_to_send())
    record[-1] ^= 0x01
    (event,) = connected.do("client", "receive_ciphertext", bytes(record))
    assert isinstance(event, Failed) and isinstance(event.exc, ssl.SSLError)
    assert connected.received("client") == b""


def test_garbage_instead_of_a_server_hello_fails_the_handshake(wire: Wire) -> None:
    wire.do("client", "start_handshake")
    (event,) = wire.do("client", "receive_ciphertext", b"HTTP/1.1 400 Bad Request\r\n\r\n")
    assert isinstance(event, HandshakeFailed) and isinstance(event.exc, ssl.SSLError)


def test_misuse_is_refused(connected: Wire) -> None:
    with pytest.raises(TransitionError, match="'start_handshake' in state 'wrapped'"):
        connected.client.start_handshake()
    connected.client.start_shutdown()
    with pytest.raises(TransitionError, match="'send_plaintext' in state 'shutdown'"):
        connected.client.send_plaintext(b"after close")
    assert connected.client.state is S.SHUTDOWN  # a miss changes nothing


# -- renegotiation (TLS 1.2) ---------------------------------------------------------------
#
# The stdlib has no call that starts a renegotiation, so these tests ask libssl
# directly (ctypes) for SSL_renegotiate() on the SSL* behind an SSLObject. The
# pointer is read from _ssl's object (PyObject_HEAD, a weakref, then SSL *ssl:
# the same layout on 3.11-3.13) and checked through SSL_get_version() before
# use, so a different layout fails the test rather than passing it.


def _libssl() -> ctypes.CDLL:
    with open("/proc/self/maps", encoding="ascii", errors="replace") as maps:
        paths = sorted(set(re.findall(r"/\S*libssl\.so[.\d]*", maps.read())))
    assert paths, "_ssl is not linked against a shared libssl"
    lib = ctypes.CDLL(paths[0])
    lib.SSL_renegotiate.argtypes = [ctypes.c_void_p]
    lib.SSL_get_version.argtypes = [ctypes.c_void_p]
    lib.SSL_get_version.restype = ctypes.c_char_p
    lib.SSL_is_server.argtypes = [ctypes.c_void_p]
    return lib


def _renegotiate(obj: ssl.SSLObject) -> None:
    """Ask OpenSSL to renegotiate on *obj*'s next read or write."""
    lib = _libssl()
    inner = obj._sslobj  # type: ignore[attr-defined]
    offset = 2 * ctypes.sizeof(ctypes.c_void_p) + ctypes.sizeof(ctypes.c_ssize_t)
    pointer = ctypes.c_void_p.from_address(id(inner) + offset).value
    assert pointer
    assert lib.SSL_get_version(pointer).decode() == obj.version() == "TLSv1.2"
    assert bool(lib.SSL_is_server(pointer)) == obj.server_side
    assert lib.SSL_renegotiate(pointer) == 1


def _tls12_wire(ca: trustme.CA, cert: trustme.LeafCert, *, refuse: bool = False) -> Wire:
    ctx = client_context(ca)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if refuse:
        ctx.options |= ssl.OP_NO_RENEGOTIATION
    wire = Wire(ca, cert, client_ctx=ctx)
    wire.handshake()
    return wire


def test_client_renegotiation_is_refused_by_a_stdlib_server(
    ca: trustme.CA, server_cert: Any
) -> None:
    """OpenSSL 3 servers refuse client-initiated renegotiation unless
    SSL_OP_ALLOW_CLIENT_RENEGOTIATION (the stdlib never sets it): both ends
    fail with an SSL error, nothing hangs, the queued data is not delivered."""
    wire = _tls12_wire(ca, server_cert)
    _renegotiate(wire.client.ssl_object)
    wire.do("client", "send_plaintext", b"during renegotiation")
    assert wire.client.buffered_plaintext == len(b"during renegotiation")  # OpenSSL waits
    wire.pump()
    for name in ("client", "server"):
        (event,) = wire.events[name][1:]
        assert isinstance(event, Failed) and isinstance(event.exc, ssl.SSLError), event
        assert wire.side(name).state is S.FAILED
    assert "NO_RENEGOTIATION" in str(wire.events["client"][-1].exc)
    assert wire.received("server") == b""
    assert wire.client.buffered_plaintext == 0


def test_server_renegotiation_completes_with_a_default_client(
    ca: trustme.CA, server_cert: Any
) -> None:
    """Stdlib client contexts accept a server's renegotiation (OpenSSL's
    default): it happens under the machine, and the streams stay intact."""
    wire = _tls12_wire(ca, server_cert)
    _renegotiate(wire.server.ssl_object)
    wire.do("server", "send_plaintext", b"after hello request")
    wire.do("client", "send_plaintext", b"client data")
    wire.pump(chunk=3)
    wire.do("server", "send_plaintext", b" and more")
    wire.pump()
    assert wire.received("client") == b"after hello request and more"
    assert wire.received("server") == b"client data"
    assert wire.kinds("client") == wire.kinds("server") == [HandshakeComplete]
    assert wire.client.state is S.WRAPPED and wire.server.state is S.WRAPPED


def test_server_renegotiation_refused_by_the_client_context(
    ca: trustme.CA, server_cert: Any
) -> None:
    wire = _tls12_wire(ca, server_cert, refuse=True)
    _renegotiate(wire.server.ssl_object)
    wire.do("server", "send_plaintext", b"x")
    wire.pump()
    for name in ("client", "server"):
        event = wire.events[name][-1]
        assert isinstance(event, Failed) and isinstance(event.exc, ssl.SSLError), event
        assert wire.side(name).state is S.FAILED
    # the client answers no_renegotiation; the server gives up on it
    assert "NO_RENEGOTIATION" in str(wire.events["server"][-1].exc)


# -- the table, pair by pair ---------------------------------------------------------------

MISS = None
_INPUTS = [
    In.START_HANDSHAKE,
    In.CIPHERTEXT,
    In.PLAINTEXT,
    In.SHUTDOWN,
    In.PEER_EOF,
    In.HANDSHAKE_TIMEOUT,
    In.SHUTDOWN_TIMEOUT,
    In.HANDSHAKE_DONE,
    In.CLOSE_NOTIFY,
    In.SHUTDOWN_DONE,
    In.SSL_ERROR,
]
U, H, W, F, SD, C, X = (
    S.UNWRAPPED,
    S.HANDSHAKING,
    S.WRAPPED,
    S.FLUSHING,
    S.SHUTDOWN,
    S.CLOSED,
    S.FAILED,
)

# fmt: off
# columns:   START  CIPHER PLAIN  SHUTDN EOF    HS_TO  SD_TO  HS_DONE CN    SD_DONE SSL_ERR
GRID: dict[State, list[State | None]] = {
    S.UNWRAPPED:   [H,    U,     U,     C,     U,     MISS,  MISS,  MISS,  MISS,  MISS,  MISS],
    S.HANDSHAKING: [MISS, H,     H,     F,     H,     X,     H,     W,     MISS,  MISS,  X],
    S.WRAPPED:     [MISS, W,     W,     SD,    X,     W,     W,     MISS,  SD,    MISS,  X],
    S.FLUSHING:    [MISS, F,     MISS,  F,     F,     X,     X,     SD,    MISS,  MISS,  X],
    S.SHUTDOWN:    [MISS, SD,    MISS,  SD,    C,     SD,    X,     MISS,  SD,    C,     X],
    S.CLOSED:      [MISS, C,     MISS,  C,     C,     C,     C,     MISS,  MISS,  MISS,  MISS],
    S.FAILED:      [MISS, X,     MISS,  X,     X,     X,     X,     MISS,  MISS,  MISS,  MISS],
}
# fmt: on

PAIRS = list(itertools.product(list(State), _INPUTS))


def test_grid_covers_every_state_and_input() -> None:
    assert set(GRID) == set(State)
    assert set(_INPUTS) == set(Input)
    assert all(len(row) == len(_INPUTS) for row in GRID.values())
    assert len(TRANSITIONS) == sum(v is not MISS for row in GRID.values() for v in row)


@pytest.mark.parametrize(("state", "inp"), PAIRS, ids=lambda v: v.name)
def test_every_pair(state: State, inp: Input, ca: trustme.CA) -> None:
    expected = GRID[state][_INPUTS.index(inp)]
    if expected is MISS:
        assert (state, inp) not in TRANSITIONS
        machine = TLSMachine(client_context(ca), server_hostname="localhost")
        machine.state = state
        with pytest.raises(TransitionError) as info:
            machine._apply(inp)
        assert repr(inp.value) in str(info.value) and repr(state.value) in str(info.value)
        assert machine.state is state
        return
    nxt, steps = TRANSITIONS[(state, inp)]
    assert nxt is expected
    assert len(set(steps)) == len(steps)
    St = tls.Step
    emits = [s for s in steps if s.name.startswith(("EMIT", "FAIL", "TRUNCATE"))]
    # entering a terminal state says why, once; terminal states stay silent
    if state in tls.TERMINAL_STATES:
        assert nxt is state and steps == ()
    elif nxt is S.FAILED:
        assert emits and emits[-1] in (
            St.FAIL,
            St.FAIL_HANDSHAKE,
            St.FAIL_HANDSHAKE_TIMEOUT,
            St.FAIL_SHUTDOWN_TIMEOUT,
            St.TRUNCATE,
        )
        assert St.DISCARD in steps  # nothing queued survives a failure
    elif nxt is S.CLOSED:
        assert steps[-1] is St.EMIT_CLOSED
    # bytes are fed only on receive, plaintext queued only on send
    assert (St.FEED in steps) == (inp is In.CIPHERTEXT and state not in tls.TERMINAL_STATES)
    assert (St.QUEUE in steps) == (inp is In.PLAINTEXT)
    # a truncation is only ever the peer's EOF while data may flow
    assert (St.TRUNCATE in steps) == (inp is In.PEER_EOF and state is S.WRAPPED)


def test_caller_inputs_never_miss_outside_misuse() -> None:
    """Network and timer inputs are accepted in every state; only the
    application's own calls (start twice, send after close) can miss."""
    for state in State:
        for inp in (In.CIPHERTEXT, In.PEER_EOF, In.SHUTDOWN):
            assert (state, inp) in TRANSITIONS
        if state is not S.UNWRAPPED:
            assert (state, In.HANDSHAKE_TIMEOUT) in TRANSITIONS
            assert (state, In.SHUTDOWN_TIMEOUT) in TRANSITIONS
    assert {In.START_HANDSHAKE, In.PLAINTEXT} | {
        In.CIPHERTEXT,
        In.PEER_EOF,
        In.SHUTDOWN,
        In.HANDSHAKE_TIMEOUT,
        In.SHUTDOWN_TIMEOUT,
    } == CALLER_INPUTS


def test_every_state_is_reached_by_real_machines(ca: trustme.CA, server_cert: Any) -> None:
    seen: set[State] = set()
    wire = Wire(ca, server_cert)
    seen.add(wire.client.state)
    wire.do("client", "start_handshake")
    seen.add(wire.client.state)
    wire.do("client", "start_shutdown")
    seen.add(wire.client.state)
    wire.do("server", "start_handshake")
    wire.pump()
    seen.add(wire.client.state)
    other = Wire(ca, server_cert)
    other.handshake()
    seen.add(other.client.state)
    other.do("client", "start_shutdown")
    seen.add(other.client.state)
    other.do("client", "shutdown_timeout")
    seen.add(other.client.state)
    assert seen == set(State)


def test_skip_name_check_verifies_the_chain_but_not_the_name(
    ca: trustme.CA, server_cert: trustme.LeafCert
) -> None:
    # asyncio's server_hostname='': an explicit opt-out, unlike a forgotten name.
    ctx = client_context(ca)
    machine = TLSMachine(ctx, server_hostname="", skip_name_check=True)
    assert machine.ssl_object.server_hostname is None and ctx.check_hostname
    ok = Wire(ca, ca.issue_cert("other.test"), client_ctx=ctx)  # not "localhost"
    ok.client = machine
    ok.handshake()
    assert HandshakeComplete in ok.kinds("client")
    # the chain is still checked: a client trusting another CA refuses
    other = client_context(trustme.CA())
    bad = Wire(ca, server_cert, client_ctx=other)
    bad.client = TLSMachine(other, server_hostname="", skip_name_check=True)
    exc, _ = _handshake_errors(bad)
    assert isinstance(exc, ssl.SSLCertVerificationError)


def test_truncation_leaves_the_ssl_object_inspectable(connected: Wire) -> None:
    # asyncio never feeds the EOF to OpenSSL; an application may still ask the
    # ssl_object about the peer after a truncation, and nothing goes out.
    (event,) = connected.do("client", "peer_eof")
    assert isinstance(event, Truncated)
    assert connected.client.ssl_object.getpeercert() is not None
    assert connected.client.data_to_send() == b""
