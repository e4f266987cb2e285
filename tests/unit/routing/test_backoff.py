"""Jittered exponential back-off between retries on the same deployment."""

from __future__ import annotations

import random

from rolegate.config.model import RetryConfig
from rolegate.routing.retry import Backoff


def test_backoff_doubles_with_each_retry_up_to_the_cap_with_jitter_in_the_upper_half():
    backoff = Backoff(RetryConfig(backoff_initial=0.2, backoff_max=1.0), random.Random(3))

    for retry, ceiling in [(1, 0.2), (2, 0.4), (3, 0.8), (4, 1.0), (9, 1.0)]:
        delays = [backoff.delay(retry) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling / 4  # jittered, not fixed


def test_zero_initial_backoff_retries_at_once():
    assert Backoff(RetryConfig(backoff_initial=0), random.Random(1)).delay(5) == 0
