"""An in-memory key-set source: URL -> document, counting fetches, able to fail like a dead IdP."""

from __future__ import annotations

import asyncio

from rolegate.authn.jwks import KeySourceUnavailable


class FakeKeySource:
    def __init__(self, documents: dict[str, bytes] | None = None, *, delay: float = 0.0) -> None:
        self.documents = dict(documents or {})
        self.fetches: list[str] = []
        self.is_down = False
        self.delay = delay

    async def __call__(self, url: str) -> bytes:
        self.fetches.append(url)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.is_down or url not in self.documents:
            raise KeySourceUnavailable(f"GET {url} failed")
        return self.documents[url]
