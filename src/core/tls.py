"""TLSMachine: one TLS connection over memory BIOs, driven by its caller's I/O.

Contract
--------
A ``TLSMachine`` wraps an ``ssl.SSLContext`` around two ``ssl.MemoryBIO``
objects (``SSLContext.wrap_bio``). Its caller owns the socket and the timers:
it hands the machine the bytes that came from the network, the plaintext the
application wants to send, and the facts "the network said EOF" and "a timer
fired". The machine answers with events (what the application must hear) and
keeps the ciphertext that must go out until the caller takes it with
``data_to_send()``. It never reads a clock, never touches a file descriptor;
OpenSSL works on memory only. (One caveat, owned by the context and not by
this module: a context configured with a CA *directory* lets OpenSSL open a
certificate file there during verification, as it would under asyncio.)

Inputs (methods; each returns the list of events it produced, in order):

- ``start_handshake()``: begin (a client sends its ClientHello now).
- ``receive_ciphertext(data)``: bytes from the network, in any fragmentation
  (one byte at a time works: a partial record waits in the incoming BIO).
- ``send_plaintext(data)``: application data. Before the handshake completes
  it is queued and sent, in order, right after it.
- ``start_shutdown()``: the application closes: queued plaintext is flushed,
  then our ``close_notify`` goes out; the machine waits for the peer's.
- ``peer_eof()``: the network reported EOF (FIN).
- ``handshake_timeout()`` / ``shutdown_timeout()``: the caller's timer fired.
  The machine knows no clock; a timer that fires in a state where it no
  longer matters (a stale timer) is a no-op.

Outputs:

- ``data_to_send(max_bytes=None) -> bytes``: ciphertext to write to the network.
- events (frozen dataclasses): ``HandshakeComplete`` (with the negotiated
  ``cipher``, ``compression``, ``version``, ``peercert`` and the
  ``ssl_object``), ``DataReceived``, ``CloseNotifyReceived`` (the peer ended its
  stream cleanly), ``Closed`` (the TLS session is over; ``peer_close_notify``
  says whether the peer's close_notify was seen), and the terminal errors
  ``HandshakeFailed``, ``Truncated`` and ``Failed``, each holding the exception
  a transport must report.
- ``buffered_plaintext``: plaintext accepted but not yet encrypted (queued
  before the handshake, or held while OpenSSL waits for the peer). A transport
  counts it, with its unsent ciphertext, in its write flow control.

States (``State``):

- ``UNWRAPPED``: created; nothing sent. Ciphertext that arrives early (a
  server's first ClientHello bytes) is kept in the BIO for the handshake.
- ``HANDSHAKING``: ``do_handshake()`` in progress.
- ``WRAPPED``: application data flows both ways.
- ``FLUSHING``: ``start_shutdown()`` came during the handshake: the handshake
  finishes, the queued plaintext goes out, then the close_notify.
- ``SHUTDOWN``: our close_notify is sent; application data from the peer is
  still delivered until its close_notify arrives.
- ``CLOSED``: clean end. ``FAILED``: an error ended it (its event says which).
  Both absorb late bytes, EOFs, timers and repeated shutdowns silently.

Transitions are data: ``TRANSITIONS[(state, input)] -> (next state, steps)``.
Some steps ask OpenSSL and report what it said as one of the *result* inputs
(``HANDSHAKE_DONE``, ``CLOSE_NOTIFY``, ``SHUTDOWN_DONE``, ``SSL_ERROR``); a
result input is looked up in the same table from the state reached so far,
and the rest of the row that produced it is dropped (the result's own row says
what happens next). A pair missing from the table raises ``TransitionError``:
the caller's misuse (sending after shutdown, starting twice) or our own bug.

Truncation (docs: RELIABILITY S4): ``peer_eof()`` before the peer's
close_notify, once application data may flow, is ``Truncated`` carrying an
``ssl.SSLEOFError`` -- never a clean close. The machine decides this from the
order of its own inputs, so it holds even for a context that sets
``ssl.OP_IGNORE_UNEXPECTED_EOF``. An EOF after *our* close_notify went out is
a ``Closed`` with ``peer_close_notify=False`` (the peer hung up on our close).

What it does not do: weaken the context (it never changes a context's
verification mode, hostname check or options; verification is whatever the
caller's context says, and ``ssl.create_default_context()`` verifies), decide
about TLS 1.2 renegotiation (OpenSSL does, as under asyncio: an OpenSSL 3
server refuses a client's; a client accepts a server's unless its context has
``OP_NO_RENEGOTIATION``; a refusal ends both sides in ``Failed``; plaintext
written while one is under way waits in ``buffered_plaintext``), know time,
sockets or the application's protocol.

(This module is past STYLE.md's ~600 lines: it is one machine, its events and
its table; about a sixth of it is this contract.)
"""

from __future__ import annotations

import enum
import ssl
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "READ_SIZE",
    "TRANSITIONS",
    "WRITE_SLICE",
    "Closed",
    "CloseNotifyReceived",
    "DataReceived",
    "Event",
    "Failed",
    "HandshakeComplete",
    "HandshakeFailed",
    "Input",
    "State",
    "Step",
    "TLSMachine",
    "TransitionError",
    "Truncated",
]

#: Plaintext asked of one ``SSLObject.read()``: asyncio's SSL read buffer size
#: (sslproto, 256 KiB). Plaintext out of one ``receive_ciphertext`` call is at
#: most the ciphertext put in, so no further cap is needed on that side.
READ_SIZE: Final = 256 * 1024
#: Plaintext handed to one ``SSLObject.write()``: keeps the ciphertext made in
#: one OpenSSL call to a slice (plus record overhead) so that a 4 MiB write
#: does not need a second 4 MiB buffer inside OpenSSL at once.
WRITE_SLICE: Final = 256 * 1024


class State(enum.Enum):
    """Where the TLS session is."""

    UNWRAPPED = "unwrapped"
    HANDSHAKING = "handshaking"
    WRAPPED = "wrapped"
    FLUSHING = "flushing"
    SHUTDOWN = "shutdown"
    CLOSED = "closed"
    FAILED = "failed"


class Input(enum.Enum):
    """The caller's inputs, then the results OpenSSL reports back."""

    START_HANDSHAKE = "start_handshake"
    CIPHERTEXT = "receive_ciphertext"
    PLAINTEXT = "send_plaintext"
    SHUTDOWN = "start_shutdown"
    PEER_EOF = "peer_eof"
    HANDSHAKE_TIMEOUT = "handshake_timeout"
    SHUTDOWN_TIMEOUT = "shutdown_timeout"
    # results of a step (OpenSSL said so)
    HANDSHAKE_DONE = "handshake done"
    CLOSE_NOTIFY = "close_notify received"
    SHUTDOWN_DONE = "shutdown done"
    SSL_ERROR = "SSL error"


#: The inputs a caller gives; the others are results of the machine's steps.
CALLER_INPUTS: Final = frozenset(
    {
        Input.START_HANDSHAKE,
        Input.CIPHERTEXT,
        Input.PLAINTEXT,
        Input.SHUTDOWN,
        Input.PEER_EOF,
        Input.HANDSHAKE_TIMEOUT,
        Input.SHUTDOWN_TIMEOUT,
    }
)


class Step(enum.Enum):
    """What the machine does on a transition, in the order of its row."""

    FEED = "feed ciphertext to the incoming BIO"
    FEED_EOF = "mark EOF on the incoming BIO"
    QUEUE = "queue plaintext"
    HANDSHAKE = "do_handshake"
    READ = "read application data"
    WRITE = "encrypt queued plaintext"
    UNWRAP = "send or complete close_notify"
    EMIT_HANDSHAKE_COMPLETE = "emit HandshakeComplete"
    EMIT_CLOSE_NOTIFY = "emit CloseNotifyReceived"
    EMIT_CLOSED = "emit Closed"
    FAIL_HANDSHAKE = "emit HandshakeFailed(SSL error)"
    FAIL_HANDSHAKE_TIMEOUT = "emit HandshakeFailed(timeout)"
    FAIL_SHUTDOWN_TIMEOUT = "emit Failed(timeout)"
    TRUNCATE = "emit Truncated"
    FAIL = "emit Failed(SSL error)"
    DISCARD = "drop queued plaintext"


class TransitionError(RuntimeError):
    """A ``(state, input)`` pair with no transition: the caller's misuse or our bug."""


# -- events -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HandshakeComplete:
    """The handshake succeeded; the peer's certificate was verified as the context asks."""

    cipher: tuple[str, str, int] | None
    compression: str | None
    version: str | None
    peercert: dict[str, Any] | None
    ssl_object: ssl.SSLObject


@dataclass(frozen=True, slots=True)
class DataReceived:
    """Decrypted application data, in order."""

    data: bytes


@dataclass(frozen=True, slots=True)
class CloseNotifyReceived:
    """The peer ended its stream with close_notify (asyncio: ``eof_received()``)."""


@dataclass(frozen=True, slots=True)
class Closed:
    """The session is over without error; nothing more will be sent or delivered."""

    peer_close_notify: bool


@dataclass(frozen=True, slots=True)
class HandshakeFailed:
    """The handshake failed: an SSL error (e.g. certificate verify failed) or a timeout."""

    exc: BaseException


@dataclass(frozen=True, slots=True)
class Truncated:
    """The peer's EOF came without close_notify: the data may be cut short."""

    exc: ssl.SSLEOFError


@dataclass(frozen=True, slots=True)
class Failed:
    """An error after the handshake: a bad record, an alert, a shutdown timeout."""

    exc: BaseException


Event = (
    HandshakeComplete
    | DataReceived
    | CloseNotifyReceived
    | Closed
    | HandshakeFailed
    | Truncated
    | Failed
)


# -- the table ----------------------------------------------------------------

S, In, St = State, Input, Step
_Row = tuple[State, tuple[Step, ...]]

#: States whose transitions absorb everything the network or a timer can say.
TERMINAL_STATES: Final = frozenset({S.CLOSED, S.FAILED})


def _build() -> dict[tuple[State, Input], _Row]:
    t: dict[tuple[State, Input], _Row] = {}

    def row(state: State, inp: Input, nxt: State, *steps: Step) -> None:
        assert (state, inp) not in t, (state, inp)
        t[(state, inp)] = (nxt, steps)

    # Before the handshake: keep what comes, start when told.
    row(S.UNWRAPPED, In.START_HANDSHAKE, S.HANDSHAKING, St.HANDSHAKE)
    row(S.UNWRAPPED, In.CIPHERTEXT, S.UNWRAPPED, St.FEED)
    row(S.UNWRAPPED, In.PLAINTEXT, S.UNWRAPPED, St.QUEUE)
    row(S.UNWRAPPED, In.SHUTDOWN, S.CLOSED, St.DISCARD, St.EMIT_CLOSED)
    row(S.UNWRAPPED, In.PEER_EOF, S.UNWRAPPED, St.FEED_EOF)  # fails once started

    # The handshake, alone or with a shutdown waiting for it (FLUSHING).
    for s in (S.HANDSHAKING, S.FLUSHING):
        row(s, In.CIPHERTEXT, s, St.FEED, St.HANDSHAKE)
        row(s, In.PEER_EOF, s, St.FEED_EOF, St.HANDSHAKE)
        row(s, In.HANDSHAKE_TIMEOUT, S.FAILED, St.DISCARD, St.FAIL_HANDSHAKE_TIMEOUT)
        row(s, In.SSL_ERROR, S.FAILED, St.DISCARD, St.FAIL_HANDSHAKE)
    row(S.HANDSHAKING, In.PLAINTEXT, S.HANDSHAKING, St.QUEUE)
    row(S.HANDSHAKING, In.SHUTDOWN, S.FLUSHING)
    row(S.HANDSHAKING, In.SHUTDOWN_TIMEOUT, S.HANDSHAKING)
    row(
        S.HANDSHAKING,
        In.HANDSHAKE_DONE,
        S.WRAPPED,
        St.EMIT_HANDSHAKE_COMPLETE,
        St.WRITE,
        St.READ,
    )
    row(S.FLUSHING, In.SHUTDOWN, S.FLUSHING)
    row(S.FLUSHING, In.SHUTDOWN_TIMEOUT, S.FAILED, St.DISCARD, St.FAIL_SHUTDOWN_TIMEOUT)
    row(
        S.FLUSHING,
        In.HANDSHAKE_DONE,
        S.SHUTDOWN,
        St.EMIT_HANDSHAKE_COMPLETE,
        St.WRITE,
        St.UNWRAP,
        St.READ,
    )

    # Application data.
    row(S.WRAPPED, In.CIPHERTEXT, S.WRAPPED, St.FEED, St.READ, St.WRITE)
    row(S.WRAPPED, In.PLAINTEXT, S.WRAPPED, St.QUEUE, St.WRITE)
    row(S.WRAPPED, In.SHUTDOWN, S.SHUTDOWN, St.WRITE, St.UNWRAP)
    row(S.WRAPPED, In.PEER_EOF, S.FAILED, St.FEED_EOF, St.DISCARD, St.TRUNCATE)
    row(S.WRAPPED, In.HANDSHAKE_TIMEOUT, S.WRAPPED)
    row(S.WRAPPED, In.SHUTDOWN_TIMEOUT, S.WRAPPED)
    row(S.WRAPPED, In.CLOSE_NOTIFY, S.SHUTDOWN, St.EMIT_CLOSE_NOTIFY, St.WRITE, St.UNWRAP)
    row(S.WRAPPED, In.SSL_ERROR, S.FAILED, St.DISCARD, St.FAIL)

    # Our close_notify is out: deliver what still comes, wait for the peer's.
    row(S.SHUTDOWN, In.CIPHERTEXT, S.SHUTDOWN, St.FEED, St.READ)
    row(S.SHUTDOWN, In.SHUTDOWN, S.SHUTDOWN)
    row(S.SHUTDOWN, In.PEER_EOF, S.CLOSED, St.FEED_EOF, St.EMIT_CLOSED)
    row(S.SHUTDOWN, In.HANDSHAKE_TIMEOUT, S.SHUTDOWN)
    row(S.SHUTDOWN, In.SHUTDOWN_TIMEOUT, S.FAILED, St.DISCARD, St.FAIL_SHUTDOWN_TIMEOUT)
    row(S.SHUTDOWN, In.CLOSE_NOTIFY, S.SHUTDOWN, St.UNWRAP)
    row(S.SHUTDOWN, In.SHUTDOWN_DONE, S.CLOSED, St.EMIT_CLOSED)
    row(S.SHUTDOWN, In.SSL_ERROR, S.FAILED, St.DISCARD, St.FAIL)

    # The end: late bytes, EOFs, timers and shutdowns change nothing.
    for s in TERMINAL_STATES:
        for inp in (In.CIPHERTEXT, In.SHUTDOWN, In.PEER_EOF):
            row(s, inp, s)
        row(s, In.HANDSHAKE_TIMEOUT, s)
        row(s, In.SHUTDOWN_TIMEOUT, s)
    return t


#: ``(state, input) -> (next state, steps)``; a pair absent here is a misuse or a bug.
TRANSITIONS: Final[dict[tuple[State, Input], _Row]] = _build()


class _Result(Exception):
    """Raised inside a step to report an OpenSSL result as an input."""

    def __init__(self, inp: Input, exc: BaseException | None = None) -> None:
        self.inp = inp
        self.exc = exc


_SSL_AGAIN = (ssl.SSLWantReadError, ssl.SSLSyscallError)  # "give me more bytes"


class TLSMachine:
    """A TLS client or server over memory BIOs; see the module docstring."""

    __slots__ = (
        "_context",
        "_incoming",
        "_outgoing",
        "_sslobj",
        "_pending",
        "_events",
        "_error",
        "_peer_close_notify",
        "_handshake_timeout",
        "_shutdown_timeout",
        "_data",
        "_handshake",
        "state",
    )

    def __init__(
        self,
        context: ssl.SSLContext,
        *,
        server_side: bool = False,
        server_hostname: str | None = None,
        handshake_timeout: float | None = None,
        shutdown_timeout: float | None = None,
        skip_name_check: bool = False,
    ) -> None:
        """Wrap *context* around fresh memory BIOs.

        *server_hostname* is checked against the server's certificate when the
        context has ``check_hostname``; a client without one is refused with
        ``ValueError("check_hostname requires server_hostname")``, as
        ``SSLContext.wrap_socket`` does (``wrap_bio`` itself would skip the
        name check silently). The timeouts are only quoted in the messages of
        the timeout errors (the caller runs the timers).

        *skip_name_check* is the caller's explicit opt-out of the name check
        (asyncio's ``server_hostname=''``): the chain is still verified as
        the context asks, no name is checked, and no server name is sent.
        """
        for name, value in (
            ("ssl_handshake_timeout", handshake_timeout),
            ("ssl_shutdown_timeout", shutdown_timeout),
        ):
            if value is not None and value <= 0:
                raise ValueError(f"{name} should be a positive number, got {value}")
        if skip_name_check:
            server_hostname = None
        elif not server_side and context.check_hostname and not server_hostname:
            # SSLSocket refuses this; SSLContext.wrap_bio does not, and would
            # then verify the chain but no name at all: refuse it here.
            raise ValueError("check_hostname requires server_hostname")
        self._context = context
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._sslobj = context.wrap_bio(
            self._incoming,
            self._outgoing,
            server_side=server_side,
            server_hostname=server_hostname,
        )
        self._pending = bytearray()
        self._events: list[Event] = []
        self._error: BaseException | None = None
        self._peer_close_notify = False
        self._handshake_timeout = handshake_timeout
        self._shutdown_timeout = shutdown_timeout
        self._data = b""
        self._handshake: HandshakeComplete | None = None
        self.state = State.UNWRAPPED

    # -- inputs ------------------------------------------------------------

    def start_handshake(self) -> list[Event]:
        """Begin the handshake (a client's ClientHello is then in ``data_to_send()``)."""
        return self._run(Input.START_HANDSHAKE)

    def receive_ciphertext(self, data: bytes) -> list[Event]:
        """Bytes from the network, in any fragmentation."""
        self._data = bytes(data)
        try:
            return self._run(Input.CIPHERTEXT)
        finally:
            self._data = b""

    def send_plaintext(self, data: bytes) -> list[Event]:
        """Application data to send (queued until the handshake completes)."""
        self._data = bytes(data)
        try:
            return self._run(Input.PLAINTEXT)
        finally:
            self._data = b""

    def start_shutdown(self) -> list[Event]:
        """Flush queued plaintext, send close_notify, wait for the peer's."""
        return self._run(Input.SHUTDOWN)

    def peer_eof(self) -> list[Event]:
        """The network reported EOF."""
        return self._run(Input.PEER_EOF)

    def handshake_timeout(self) -> list[Event]:
        """The caller's handshake timer fired."""
        return self._run(Input.HANDSHAKE_TIMEOUT)

    def shutdown_timeout(self) -> list[Event]:
        """The caller's shutdown timer fired."""
        return self._run(Input.SHUTDOWN_TIMEOUT)

    # -- outputs -----------------------------------------------------------

    def data_to_send(self, max_bytes: int | None = None) -> bytes:
        """Take up to *max_bytes* (all by default) of the ciphertext to send."""
        if max_bytes is None:
            return self._outgoing.read()
        if max_bytes <= 0:
            return b""
        return self._outgoing.read(max_bytes)

    @property
    def buffered_ciphertext(self) -> int:
        """Ciphertext made and not yet taken by ``data_to_send()``."""
        return self._outgoing.pending

    @property
    def buffered_plaintext(self) -> int:
        """Plaintext accepted and not yet encrypted (count it in write flow control)."""
        return len(self._pending)

    @property
    def ssl_object(self) -> ssl.SSLObject:
        """The ``ssl.SSLObject`` (asyncio's ``get_extra_info('ssl_object')``)."""
        return self._sslobj

    def extra_info(self) -> dict[str, Any]:
        """asyncio's TLS ``get_extra_info`` keys (the handshake ones once it completed)."""
        info: dict[str, Any] = {"sslcontext": self._context, "ssl_object": self._sslobj}
        done = self._handshake
        if done is not None:
            info["peercert"] = done.peercert
            info["cipher"] = done.cipher
            info["compression"] = done.compression
        return info

    def statistics(self) -> dict[str, Any]:
        """The numbers a transport or a test asks about."""
        return {
            "state": self.state.value,
            "buffered_plaintext": len(self._pending),
            "buffered_ciphertext": self._outgoing.pending,
            "incoming_ciphertext": self._incoming.pending,
        }

    def __repr__(self) -> str:
        side = "server" if self._sslobj.server_side else "client"
        return f"<TLSMachine {side} {self.state.value} plaintext={len(self._pending)}>"

    # -- the engine --------------------------------------------------------

    def _run(self, inp: Input) -> list[Event]:
        events = self._events = []
        self._apply(inp)
        self._events = []
        return events

    def _apply(self, inp: Input) -> None:
        # A result input re-enters here; results nest at most a few deep
        # (HANDSHAKE_DONE -> CLOSE_NOTIFY -> SHUTDOWN_DONE), never loop.
        try:
            nxt, steps = TRANSITIONS[(self.state, inp)]
        except KeyError:
            raise TransitionError(
                f"TLSMachine: no transition for input {inp.value!r} in state {self.state.value!r}"
            ) from None
        self.state = nxt
        for step in steps:
            try:
                self._do(step)
            except _Result as result:
                self._error = result.exc
                self._apply(result.inp)
                return

    def _do(self, step: Step) -> None:
        obj = self._sslobj
        if step is St.FEED:
            if self._data and not self._incoming.eof:  # nothing comes after EOF
                self._incoming.write(self._data)
        elif step is St.FEED_EOF:
            self._incoming.write_eof()
        elif step is St.QUEUE:
            self._pending += self._data
        elif step is St.HANDSHAKE:
            try:
                obj.do_handshake()
            except _SSL_AGAIN as exc:
                if self._incoming.eof:  # no more bytes will come: never wait for them
                    raise _Result(In.SSL_ERROR, _eof_error(exc)) from None
                return
            except ssl.SSLError as exc:
                raise _Result(In.SSL_ERROR, exc) from None
            raise _Result(In.HANDSHAKE_DONE)
        elif step is St.READ:
            self._read()
        elif step is St.WRITE:
            self._write()
        elif step is St.UNWRAP:
            try:
                obj.unwrap()
            except _SSL_AGAIN:
                return
            except ssl.SSLError as exc:
                raise _Result(In.SSL_ERROR, exc) from None
            raise _Result(In.SHUTDOWN_DONE)
        elif step is St.DISCARD:
            self._pending.clear()
        else:
            self._events.append(self._event(step))

    def _event(self, step: Step) -> Event:
        obj = self._sslobj
        if step is St.EMIT_HANDSHAKE_COMPLETE:
            self._handshake = HandshakeComplete(
                cipher=obj.cipher(),
                compression=obj.compression(),
                version=obj.version(),
                peercert=obj.getpeercert(),
                ssl_object=obj,
            )
            return self._handshake
        if step is St.EMIT_CLOSE_NOTIFY:
            return CloseNotifyReceived()
        if step is St.EMIT_CLOSED:
            return Closed(peer_close_notify=self._peer_close_notify)
        if step is St.FAIL_HANDSHAKE:
            assert self._error is not None
            return HandshakeFailed(self._error)
        if step is St.FAIL_HANDSHAKE_TIMEOUT:
            return HandshakeFailed(
                ConnectionAbortedError(
                    f"SSL handshake is taking longer than {self._handshake_timeout} "
                    "seconds: aborting the connection"
                )
            )
        if step is St.FAIL_SHUTDOWN_TIMEOUT:
            return Failed(TimeoutError("SSL shutdown timed out"))
        if step is St.TRUNCATE:
            return Truncated(self._truncation_error())
        if step is St.FAIL:
            assert self._error is not None
            return Failed(self._error)
        raise AssertionError(f"TLSMachine: unknown step {step!r}")  # pragma: no cover

    def _read(self) -> None:
        # Each successful read consumes at least one record, so this ends when
        # the BIO holds less than a record: bounded by the bytes fed.
        while True:
            try:
                chunk = self._sslobj.read(READ_SIZE)
            except _SSL_AGAIN:
                return
            except ssl.SSLZeroReturnError:
                chunk = b""  # close_notify after ours went out (see below)
            except ssl.SSLError as exc:
                raise _Result(In.SSL_ERROR, exc) from None
            if not chunk:
                # The peer's close_notify: SSLObject.read() answers b"" when
                # only it was seen, SSLZeroReturnError when ours was sent too.
                self._peer_close_notify = True
                raise _Result(In.CLOSE_NOTIFY)
            self._events.append(DataReceived(chunk))

    def _write(self) -> None:
        pending = self._pending
        sent = 0
        try:
            while sent < len(pending):
                with memoryview(pending)[sent : sent + WRITE_SLICE] as piece:
                    sent += self._sslobj.write(piece)
        except _SSL_AGAIN:
            pass  # OpenSSL waits for the peer (renegotiation): keep the rest
        except ssl.SSLError as exc:
            raise _Result(In.SSL_ERROR, exc) from None
        finally:
            del pending[:sent]

    def _truncation_error(self) -> ssl.SSLEOFError:
        # OpenSSL is not asked (no read at EOF): that read would put the
        # SSLObject in its failed state (getpeercert() then raises "handshake
        # not done yet") and may queue an alert, while the application may
        # still inspect ssl_object after a truncation, as under asyncio,
        # which never feeds the EOF to OpenSSL at all.
        return _eof_error(None)


def _eof_error(cause: BaseException | None) -> ssl.SSLEOFError:
    exc = ssl.SSLEOFError(ssl.SSL_ERROR_EOF, "EOF occurred in violation of protocol")
    exc.__cause__ = cause
    return exc
