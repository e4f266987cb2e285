"""Which upstream failures are worth another attempt, and how long to wait before one.

Retried (before any byte has reached the caller): connection failures and timeouts, 429, and
500/502/503/504. Never retried: the caller's own mistakes (400, 404, 422) and the upstream
refusing the gateway (401, 403): another attempt would fail the same way.
"""

from __future__ import annotations

import random

from rolegate.config.model import RetryConfig

RETRYABLE_STATUSES = frozenset({500, 502, 503, 504})
RATE_LIMITED = 429


class Backoff:
    """Jittered exponential back-off: attempt n waits a random time in [d/2, d] with
    d = min(backoff_max, backoff_initial * 2**(n-1)), so retries from many callers spread out.

    >>> Backoff(config, random.Random(1)).delay(retry=1)
    """

    def __init__(self, config: RetryConfig, rng: random.Random) -> None:
        self._initial = config.backoff_initial
        self._max = config.backoff_max
        self._rng = rng

    def delay(self, retry: int) -> float:
        ceiling = min(self._max, self._initial * 2.0 ** max(0, retry - 1))
        return ceiling * self._rng.uniform(0.5, 1.0)
