"""The circuit breaker and the per-minute budgets, on an injected clock."""

from __future__ import annotations

from rolegate.routing.capacity import MinuteWindow
from rolegate.routing.health import CircuitBreaker


def test_breaker_opens_after_consecutive_failures_only():
    breaker = CircuitBreaker(failures=3, cooldown=30)
    breaker.record_failure(0)
    breaker.record_failure(0)
    breaker.record_success()
    breaker.record_failure(0)
    breaker.record_failure(0)
    assert breaker.is_available(0)

    breaker.record_failure(0)

    assert not breaker.is_available(0)
    assert not breaker.is_available(29.9)
    assert breaker.available_at() == 30


def test_after_cooldown_exactly_one_probe_goes_and_its_success_closes_the_circuit():
    breaker = CircuitBreaker(failures=1, cooldown=30)
    breaker.record_failure(0)

    assert breaker.is_available(30)
    breaker.on_attempt(30)
    assert not breaker.is_available(30)  # the probe is out: nobody else goes
    breaker.record_success()
    assert breaker.is_available(30) and not breaker.is_open


def test_failed_probe_opens_the_circuit_for_another_cooldown():
    breaker = CircuitBreaker(failures=3, cooldown=30)
    for _ in range(3):
        breaker.record_failure(0)
    breaker.on_attempt(31)

    breaker.record_failure(31)

    assert not breaker.is_available(60)
    assert breaker.is_available(61)


def test_probe_ending_without_a_verdict_lets_the_next_request_probe():
    breaker = CircuitBreaker(failures=1, cooldown=10)
    breaker.record_failure(0)
    breaker.on_attempt(10)

    breaker.record_neutral()

    assert breaker.is_available(10) and breaker.is_open


def test_minute_window_fills_and_frees_as_entries_age_out():
    window = MinuteWindow(limit=3)
    for now in (0, 10, 20):
        window.add(now, 1)

    assert window.is_full(30)
    assert window.free_at(30) == 60
    assert not window.is_full(60)


def test_token_window_frees_when_enough_tokens_have_aged_out():
    window = MinuteWindow(limit=100)
    window.add(0, 80)
    window.add(30, 50)

    assert window.is_full(31)
    assert window.free_at(31) == 60  # the 80 expire: 50 left
    assert window.used(61) == 50
