"""The accept policy: every (state, input) pair, batches, backoff, accounting."""

from __future__ import annotations

import errno

import pytest

from sansloop.core import acceptpolicy as ap
from sansloop.core.acceptpolicy import AcceptPolicy, AcceptPolicyError

# The specification, written out independently of the module's table:
# (state, input) -> (next state, actions) with one connection attached, so
# that CLOSING is reachable and no close releases the waiters. None: misuse.
A = ap
SPEC: dict[tuple[object, object], tuple[object, tuple[object, ...]] | None] = {}
for _input in A.INPUTS:
    for _state in A.STATES:
        SPEC[(_state, _input)] = None
SPEC.update(
    {
        (A.IDLE, A.START): (A.SERVING, (A.WATCH,)),
        (A.IDLE, A.READABLE): (A.IDLE, ()),
        (A.IDLE, A.CLOSE): (A.CLOSING, (A.CLOSE_LISTENERS,)),
        (A.IDLE, A.ATTACH): (A.IDLE, ()),
        (A.IDLE, A.DETACH): (A.IDLE, ()),
        (A.SERVING, A.START): (A.SERVING, ()),
        (A.SERVING, A.READABLE): (A.SERVING, (A.ACCEPT,)),
        (A.SERVING, A.ACCEPTED): (A.SERVING, (A.ACCEPT,)),
        (A.SERVING, A.ABORTED): (A.SERVING, (A.ACCEPT,)),
        (A.SERVING, A.WOULD_BLOCK): (A.SERVING, ()),
        (A.SERVING, A.OUT_OF_RESOURCES): (A.BACKING_OFF, (A.UNWATCH, A.ARM_TIMER, A.REPORT)),
        (A.SERVING, A.ERROR): (A.SERVING, (A.REPORT,)),
        (A.SERVING, A.CLOSE): (A.CLOSING, (A.UNWATCH, A.CLOSE_LISTENERS)),
        (A.SERVING, A.ATTACH): (A.SERVING, ()),
        (A.SERVING, A.DETACH): (A.SERVING, ()),
        (A.BACKING_OFF, A.START): (A.BACKING_OFF, ()),
        (A.BACKING_OFF, A.READABLE): (A.BACKING_OFF, ()),
        (A.BACKING_OFF, A.BACKOFF_EXPIRED): (A.SERVING, (A.WATCH,)),
        (A.BACKING_OFF, A.CLOSE): (A.CLOSING, (A.CANCEL_TIMER, A.CLOSE_LISTENERS)),
        (A.BACKING_OFF, A.ATTACH): (A.BACKING_OFF, ()),
        (A.BACKING_OFF, A.DETACH): (A.BACKING_OFF, ()),
        (A.CLOSING, A.READABLE): (A.CLOSING, ()),
        (A.CLOSING, A.ACCEPTED): (A.CLOSING, ()),
        (A.CLOSING, A.CLOSE): (A.CLOSING, ()),
        (A.CLOSING, A.ATTACH): (A.CLOSING, ()),
        # the last connection goes: closed in either order
        (A.CLOSING, A.DETACH): (A.CLOSED, (A.RELEASE_WAITERS,)),
        (A.CLOSED, A.READABLE): (A.CLOSED, ()),
        (A.CLOSED, A.ACCEPTED): (A.CLOSED, ()),
        (A.CLOSED, A.CLOSE): (A.CLOSED, ()),
    }
)


def policy_in(state: object, *, batch: int = 10) -> AcceptPolicy:
    """A policy in *state* with one connection attached (CLOSED has none)."""
    policy = AcceptPolicy(batch=batch)
    if state is A.CLOSED:
        assert policy.close() == (A.CLOSE_LISTENERS, A.RELEASE_WAITERS)
    else:
        policy.attach()
        if state in (A.SERVING, A.BACKING_OFF):
            policy.start()
        if state is A.BACKING_OFF:
            policy.readable()
            policy.accept_failed(OSError(errno.EMFILE, "Too many open files"))
        if state is A.CLOSING:
            policy.close()
        if state is A.SERVING:
            policy.readable()  # inside a batch, so batch results are legal
    assert policy.state is state
    return policy


@pytest.mark.parametrize("pair", list(SPEC), ids=lambda p: f"{p[0]!r}-{p[1]!r}")
def test_every_state_input_pair(pair: tuple[object, object]) -> None:
    state, event = pair
    policy = policy_in(state)
    before = policy.active
    expected = SPEC[pair]
    if expected is None:
        with pytest.raises(AcceptPolicyError, match=f"cannot take {event!r} in {state!r}"):
            policy.feed(event)  # type: ignore[arg-type]
        assert policy.state is state and policy.active == before
        return
    assert policy.feed(event) == expected[1]  # type: ignore[arg-type]
    assert policy.state is expected[0]
    delta = {A.ATTACH: 1, A.DETACH: -1}.get(event, 0)  # type: ignore[call-overload]
    assert policy.active == before + delta


def test_the_spec_covers_the_table_and_nothing_else() -> None:
    # Every pair of the module's table is in the spec as legal, and vice versa.
    legal = {pair for pair, outcome in SPEC.items() if outcome is not None}
    assert legal == set(ap._TABLE)
    assert len(SPEC) == len(A.STATES) * len(A.INPUTS) == 55


@pytest.mark.parametrize("state", [A.IDLE, A.SERVING, A.BACKING_OFF])
def test_close_without_connections_releases_waiters_at_once(state: object) -> None:
    policy = AcceptPolicy()
    if state is not A.IDLE:
        policy.start()
    if state is A.BACKING_OFF:
        policy.readable()
        policy.accept_failed(OSError(errno.ENFILE, "x"))
    actions = policy.close()
    assert actions[-1] is A.RELEASE_WAITERS and actions.count(A.RELEASE_WAITERS) == 1
    assert policy.state is A.CLOSED
    assert policy.close() == ()  # idempotent, never released twice


def test_waiters_released_once_after_close_then_last_detach() -> None:
    policy = AcceptPolicy()
    policy.start()
    for _ in range(3):
        policy.attach()
    assert A.RELEASE_WAITERS not in policy.close()
    assert policy.detach() == ()
    assert policy.detach() == ()
    assert policy.detach() == (A.RELEASE_WAITERS,)
    assert policy.state is A.CLOSED and policy.active == 0
    with pytest.raises(AcceptPolicyError, match="no connection is attached"):
        policy.detach()


def test_detach_without_attach_is_a_caller_bug() -> None:
    policy = AcceptPolicy()
    policy.start()
    with pytest.raises(AcceptPolicyError, match="no connection is attached"):
        policy.detach()
    assert policy.active == 0


@pytest.mark.parametrize("batch", [1, 2, 7, 100])
def test_a_batch_accepts_at_most_batch_connections(batch: int) -> None:
    policy = AcceptPolicy(batch=batch)
    policy.start()
    accepts = 0
    actions = policy.readable()
    for _ in range(batch * 3):  # bounded
        if A.ACCEPT not in actions:
            break
        accepts += 1
        actions = policy.accepted()
    assert accepts == batch
    # the next readiness starts a new batch
    assert policy.readable() == (A.ACCEPT,)


def test_aborted_connections_count_against_the_batch() -> None:
    policy = AcceptPolicy(batch=3)
    policy.start()
    policy.readable()
    assert policy.accept_failed(ConnectionAbortedError()) == (A.ACCEPT,)
    assert policy.accept_failed(ConnectionAbortedError()) == (A.ACCEPT,)
    assert policy.accept_failed(ConnectionAbortedError()) == ()
    assert policy.statistics()["aborted"] == 3


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (BlockingIOError(errno.EAGAIN, "x"), A.WOULD_BLOCK),
        (InterruptedError(errno.EINTR, "x"), A.WOULD_BLOCK),
        (ConnectionAbortedError(errno.ECONNABORTED, "x"), A.ABORTED),
        (OSError(errno.EMFILE, "x"), A.OUT_OF_RESOURCES),
        (OSError(errno.ENFILE, "x"), A.OUT_OF_RESOURCES),
        (OSError(errno.ENOBUFS, "x"), A.OUT_OF_RESOURCES),
        (OSError(errno.ENOMEM, "x"), A.OUT_OF_RESOURCES),
        (OSError(errno.EINVAL, "x"), A.ERROR),
        (OSError("no errno"), A.ERROR),
        (ValueError("not an OSError"), A.ERROR),
    ],
)
def test_classify_accept_error(exc: BaseException, expected: object) -> None:
    assert ap.classify_accept_error(exc) is expected


def test_backoff_cycle_and_statistics() -> None:
    policy = AcceptPolicy(retry_delay=0.25)
    assert policy.retry_delay == 0.25
    policy.start()
    policy.readable()
    assert policy.accepted() == (A.ACCEPT,)
    actions = policy.accept_failed(OSError(errno.EMFILE, "x"))
    assert actions == (A.UNWATCH, A.ARM_TIMER, A.REPORT)
    assert policy.serving  # is_serving() stays True while backing off
    assert policy.readable() == ()  # stale readiness: no accept
    assert policy.backoff_expired() == (A.WATCH,)
    assert policy.readable() == (A.ACCEPT,)
    assert policy.accept_failed(OSError(errno.EBADF, "x")) == (A.REPORT,)
    stats = policy.statistics()
    assert stats == {
        "state": "SERVING",
        "active": 0,
        "accepted": 1,
        "aborted": 0,
        "backoffs": 1,
        "errors": 1,
    }


def test_properties_by_state() -> None:
    for state in A.STATES:
        policy = policy_in(state)
        assert policy.serving == (state in (A.SERVING, A.BACKING_OFF))
        assert policy.closed == (state in (A.CLOSING, A.CLOSED))
        assert repr(state) in repr(policy)


def test_bad_construction() -> None:
    with pytest.raises(ValueError, match="batch must be at least 1"):
        AcceptPolicy(batch=0)
    with pytest.raises(ValueError, match="retry_delay must not be negative"):
        AcceptPolicy(retry_delay=-1)


def test_the_limits_mirror_asyncio() -> None:
    import asyncio.constants

    assert ap.ACCEPT_RETRY_DELAY == asyncio.constants.ACCEPT_RETRY_DELAY
    assert ap.DEFAULT_BACKLOG == 100


def test_unknown_input_is_refused() -> None:
    policy = AcceptPolicy()
    with pytest.raises(AcceptPolicyError, match="not an input of this machine"):
        policy.feed(A.ACCEPT)  # an action, not an input


# -- random input sequences against a reference model --------------------------------

from hypothesis import example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


class Model:
    """What the driver can observe, kept with plain booleans and counters."""

    def __init__(self, batch: int) -> None:
        self.batch = batch
        self.watched = False
        self.timer = False
        self.listening = True  # listeners open
        self.closed = False
        self.released = False
        self.active = 0
        self.accepts_in_batch = 0


@settings(max_examples=400, deadline=None)
@given(st.integers(1, 4), st.lists(st.sampled_from(A.INPUTS), max_size=60))
@example(1, [A.START, A.READABLE, A.ACCEPTED, A.READABLE, A.ACCEPTED, A.ACCEPTED])
@example(2, [A.START, A.ATTACH, A.READABLE, A.OUT_OF_RESOURCES, A.CLOSE, A.DETACH])
def test_random_sequences_keep_the_invariants(batch: int, inputs: list[object]) -> None:
    policy = AcceptPolicy(batch=batch)
    model = Model(batch)
    for event in inputs:
        state_before = policy.state
        try:
            actions = policy.feed(event)  # type: ignore[arg-type]
        except AcceptPolicyError:
            assert policy.state is state_before  # a refused input changes nothing
            continue
        if event is A.BACKOFF_EXPIRED:
            model.timer = False  # it fired
        if event is A.READABLE:
            model.accepts_in_batch = 0  # a new batch
        for action in actions:
            if action is A.WATCH:
                assert not model.watched and model.listening and not model.timer
                model.watched = True
            elif action is A.UNWATCH:
                assert model.watched
                model.watched = False
            elif action is A.ARM_TIMER:
                assert not model.timer and not model.watched
                model.timer = True
            elif action is A.CANCEL_TIMER:
                assert model.timer
                model.timer = False
            elif action is A.CLOSE_LISTENERS:
                assert model.listening and not model.watched and not model.timer
                model.listening = False
                model.closed = True
            elif action is A.RELEASE_WAITERS:
                assert not model.released and model.closed
                model.released = True
            elif action is A.ACCEPT:
                assert model.watched
                model.accepts_in_batch += 1
                assert model.accepts_in_batch <= model.batch
        if event is A.ATTACH:
            model.active += 1
        if event is A.DETACH:
            model.active -= 1
        assert policy.active == model.active >= 0
        # wait_closed's condition, in either order, released exactly then
        assert model.released == (model.closed and model.active == 0)
        assert (policy.state is A.CLOSED) == model.released
        assert policy.serving == (model.watched or model.timer)
