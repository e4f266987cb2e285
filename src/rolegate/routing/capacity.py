"""`MinuteWindow`: how much of a per-minute budget (requests or tokens) the last 60 s used."""

from __future__ import annotations

from collections import deque

WINDOW = 60.0


class MinuteWindow:
    """A sliding 60-second sum against `limit`.

    >>> rpm = MinuteWindow(limit=600); rpm.add(now, 1); rpm.is_full(now)
    """

    __slots__ = ("limit", "_entries", "_total")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._entries: deque[tuple[float, int]] = deque()
        self._total = 0

    def add(self, now: float, amount: int) -> None:
        if amount > 0:
            self._entries.append((now, amount))
            self._total += amount

    def used(self, now: float) -> int:
        entries = self._entries
        while entries and entries[0][0] <= now - WINDOW:
            self._total -= entries.popleft()[1]
        return self._total

    def is_full(self, now: float) -> bool:
        return self.used(now) >= self.limit

    def free_at(self, now: float) -> float:
        """When enough of the window has expired to take another request."""
        if not self.is_full(now):
            return now
        excess, expires = self._total - self.limit, now
        for when, amount in self._entries:
            excess -= amount
            expires = when + WINDOW
            if excess < 0:
                break
        return expires
