"""Time to first byte and total time of sequential streaming requests (aiohttp client)."""

from __future__ import annotations

import asyncio
import time

import aiohttp

BODY = b'{"model":"echo","messages":[{"role":"user","content":"hi"}],"stream":true}'


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, round(pct / 100 * len(ordered) + 0.4999))
    return ordered[min(rank, len(ordered)) - 1]


async def _one(session: aiohttp.ClientSession, url: str, headers: dict) -> tuple[float, float]:
    """(ttfb, total) in seconds; ttfb is the first body byte (the first SSE event)."""
    start = time.perf_counter()
    async with session.post(url, data=BODY, headers=headers) as resp:
        if resp.status != 200:
            raise RuntimeError(f"status {resp.status}")
        first = await resp.content.readany()
        ttfb = time.perf_counter() - start
        rest = await resp.content.read()
        total = time.perf_counter() - start
    if b"[DONE]" not in first + rest[-64:]:
        raise RuntimeError("stream ended without [DONE]")
    return ttfb, total


async def _probe(url: str, auth: str | None, count: int, warmup: int) -> dict:
    headers = {"Content-Type": "application/json"}
    if auth:
        headers["Authorization"] = auth
    ttfbs, totals, errors = [], [], 0
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for i in range(warmup + count):
            try:
                ttfb, total = await _one(session, url, headers)
            except (TimeoutError, aiohttp.ClientError, RuntimeError):
                errors += 1
                continue
            if i >= warmup:
                ttfbs.append(ttfb)
                totals.append(total)
    return _summary(ttfbs, totals, errors, count)


def _summary(ttfbs: list[float], totals: list[float], errors: int, count: int) -> dict:
    result = {"requests": count, "ok": len(ttfbs), "errors": errors}
    for name, values in (("ttfb", ttfbs), ("total", totals)):
        for pct in (50, 99):
            result[f"{name}_p{pct}_ms"] = percentile(values, pct) * 1e3 if values else None
    return result


def probe(url: str, auth: str | None = None, count: int = 200, warmup: int = 10) -> dict:
    """Run `count` sequential streaming requests after `warmup` unmeasured ones."""
    return asyncio.run(_probe(url, auth, count, warmup))
