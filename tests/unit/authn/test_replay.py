"""ReplayCache: a `jti` is accepted once, and remembered for as long as its token could still be
accepted: through `expires` (the `exp` + leeway the verifier passes, the instant its token is
refused anyway), never a moment less; at capacity it refuses new tokens instead of forgetting
unexpired ones."""

from __future__ import annotations

import pytest

from rolegate.authn.replay import MAX_JTI_LENGTH, ReplayCache, token_replayed
from rolegate.errors import ServiceUnavailable, Unauthenticated
from tests.support.clock import FakeClock

START = 1_000.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=START)


def replayed(replay: ReplayCache, jti: str, expires: float = START + 1_000) -> Unauthenticated:
    with pytest.raises(Unauthenticated) as caught:
        replay.claim(jti, expires=expires)
    assert caught.value.code == "token_replayed"
    return caught.value


def full(replay: ReplayCache, jti: str, expires: float = START + 1_000) -> ServiceUnavailable:
    with pytest.raises(ServiceUnavailable) as caught:
        replay.claim(jti, expires=expires)
    return caught.value


def test_a_jti_is_accepted_once_and_refused_after(clock):
    replay = ReplayCache(clock)
    replay.claim("once", expires=START + 60)

    error = replayed(replay, "once")

    assert error.status == 401
    assert str(error) == "This token was already used; it may be used only once."


def test_the_replayed_error_names_its_code_and_says_why():
    error = token_replayed()
    assert (error.status, error.code) == (401, "token_replayed")
    assert str(error) == "This token was already used; it may be used only once."


def test_a_jti_is_remembered_up_to_and_including_the_second_its_token_expires(clock):
    replay = ReplayCache(clock)
    replay.claim("j", expires=START + 100)

    clock.advance(100)  # now == expires: still kept; the verifier refuses the token from here

    replayed(replay, "j")
    assert len(replay) == 1


def test_a_jti_is_forgotten_only_once_its_token_can_no_longer_be_accepted(clock):
    replay = ReplayCache(clock)
    replay.claim("j", expires=START + 100)

    clock.advance(100.001)
    replay.claim("other", expires=START + 500)  # each claim sweeps what has expired

    assert len(replay) == 1
    replay.claim("j", expires=START + 500)  # its token is past exp + leeway: no replay left


def test_entries_are_swept_by_expiry_not_by_arrival(clock):
    replay = ReplayCache(clock)
    replay.claim("late", expires=START + 300)
    replay.claim("early", expires=START + 100)
    replay.claim("middle", expires=START + 200)

    clock.advance(150)
    replay.claim("new", expires=START + 400)

    assert len(replay) == 3  # only "early" went
    for jti in ("late", "middle", "new"):
        replayed(replay, jti)
    replay.claim("early", expires=START + 400)


def test_several_expired_entries_go_in_one_sweep(clock):
    replay = ReplayCache(clock)
    for n in range(5):
        replay.claim(f"j{n}", expires=START + 10 + n)

    clock.advance(100)
    replay.claim("fresh", expires=START + 1_000)

    assert len(replay) == 1


def test_a_full_cache_refuses_a_new_token_with_503_and_keeps_the_old_ones(clock):
    replay = ReplayCache(clock, max_entries=2)
    replay.claim("a", expires=START + 100)
    replay.claim("b", expires=START + 100)

    error = full(replay, "c")

    assert (error.status, error.code) == (503, "replay_cache_full")
    assert str(error) == "Too many unexpired one-time tokens are outstanding."
    assert len(replay) == 2
    replayed(replay, "a")
    replayed(replay, "b")


def test_a_cache_one_below_capacity_still_accepts_a_token(clock):
    replay = ReplayCache(clock, max_entries=3)
    replay.claim("a", expires=START + 100)
    replay.claim("b", expires=START + 100)

    replay.claim("c", expires=START + 100)

    assert len(replay) == 3
    full(replay, "d")


def test_a_full_cache_keeps_an_entry_whose_token_expires_this_very_second(clock):
    replay = ReplayCache(clock, max_entries=1)
    replay.claim("a", expires=START + 100)

    clock.advance(100)

    full(replay, "b")
    replayed(replay, "a")


def test_a_full_cache_makes_room_once_an_entry_has_expired(clock):
    replay = ReplayCache(clock, max_entries=1)
    replay.claim("a", expires=START + 100)

    clock.advance(101)
    replay.claim("b", expires=START + 500)

    assert len(replay) == 1
    replayed(replay, "b")


def test_a_replay_is_reported_as_a_replay_even_when_the_cache_is_full(clock):
    replay = ReplayCache(clock, max_entries=1)
    replay.claim("a", expires=START + 100)
    replayed(replay, "a")


@pytest.mark.parametrize("jti", [None, "", 7, ["a"], b"bytes", "x" * (MAX_JTI_LENGTH + 1)],
                         ids=["missing", "empty", "number", "list", "bytes", "too-long"])
def test_an_unusable_jti_is_refused_as_a_missing_claim(jti, clock):
    replay = ReplayCache(clock)
    with pytest.raises(Unauthenticated) as caught:
        replay.claim(jti, expires=START + 100)

    assert caught.value.code == "missing_claim"
    assert str(caught.value) == ("The token has no usable `jti` claim, which this issuer's "
                                 "replay protection requires.")
    assert len(replay) == 0


def test_a_jti_of_the_maximum_length_is_accepted(clock):
    replay = ReplayCache(clock)
    replay.claim("x" * MAX_JTI_LENGTH, expires=START + 100)
    assert MAX_JTI_LENGTH == 256
    replayed(replay, "x" * MAX_JTI_LENGTH)


def test_one_character_jti_is_accepted(clock):
    replay = ReplayCache(clock)
    replay.claim("j", expires=START + 100)
    assert len(replay) == 1


async def test_claim_once_records_a_jti_until_its_expiry_like_claim(clock):
    """`claim_once`, the form the verifier awaits (shared with the Redis set), is `claim`."""
    replay = ReplayCache(clock)
    await replay.claim_once("j", expires=START + 100)

    with pytest.raises(Unauthenticated) as caught:
        await replay.claim_once("j", expires=START + 100)
    assert caught.value.code == "token_replayed"

    clock.advance(100.001)
    await replay.claim_once("j", expires=START + 500)  # its token can no longer be accepted
    with pytest.raises(Unauthenticated) as missing:
        await replay.claim_once(None, expires=START + 500)
    assert missing.value.code == "missing_claim"
