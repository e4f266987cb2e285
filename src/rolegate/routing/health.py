"""`CircuitBreaker`: keeps traffic off a deployment that keeps failing, then probes it.

Closed: every request may go. After `failures` consecutive failures it opens for `cooldown`
seconds: no request goes. Then it is half-open: exactly one probe request goes; its success
closes the circuit, its failure opens it for another `cooldown`. Time comes from the injected
clock.

>>> breaker = CircuitBreaker(failures=3, cooldown=30.0)
>>> if breaker.is_available(now): breaker.on_attempt(now); ...; breaker.record_success()
"""

from __future__ import annotations


class CircuitBreaker:
    __slots__ = ("_threshold", "_cooldown", "_consecutive", "_open_until", "_is_probing")

    def __init__(self, *, failures: int, cooldown: float) -> None:
        self._threshold = failures
        self._cooldown = cooldown
        self._consecutive = 0
        self._open_until: float | None = None
        self._is_probing = False

    @property
    def is_open(self) -> bool:
        return self._open_until is not None

    def is_available(self, now: float) -> bool:
        if self._open_until is None:
            return True
        return now >= self._open_until and not self._is_probing

    def available_at(self) -> float | None:
        """When a request may next go: None when it may go now (or a probe is out)."""
        return None if self._open_until is None or self._is_probing else self._open_until

    def on_attempt(self, now: float) -> None:
        if self._open_until is not None and now >= self._open_until:
            self._is_probing = True

    def record_success(self) -> None:
        self._consecutive = 0
        self._open_until = None
        self._is_probing = False

    def record_failure(self, now: float) -> None:
        self._consecutive += 1
        if self._is_probing or self._consecutive >= self._threshold:
            self._open_until = now + self._cooldown
            self._is_probing = False

    def record_neutral(self) -> None:
        """An attempt that says nothing about health (the caller's own 4xx, a cancellation):
        a probe that ends so lets the next request probe."""
        self._is_probing = False
