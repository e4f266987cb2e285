"""An in-process loop of what the production shape adds to a request: `Metering` around a reply
read whole (the quotas acquired in a local Redis, the `x-ratelimit-*` headers, the usage read,
the lease settled, the usage record queued and turned into its `COPY` row), plus the response
headers checked and joined as uvicorn's httptools protocol does.

    PYTHONPATH=src python -m bench.micro.metering --shape production --requests 20000
    valgrind --tool=callgrind python -m bench.micro.metering --shape production --requests 2000

`--shape`: `plain` (no limits, no accounting: what `jwt-rs256` runs), `limits` (exact Redis
limits), `usage` (usage records, no limits) or `production` (both). The records go to a store
that builds each one's `COPY` row (what the PostgreSQL store does in this process) and keeps
nothing. Printed: CPU microseconds per request (`time.process_time`); under callgrind, compare
the instruction counts of two request counts: their difference over the difference in requests
is the cost of one request, free of start-up.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import secrets
import time
from collections.abc import Sequence

import orjson
from uvicorn.protocols.http.httptools_impl import HEADER_RE, HEADER_VALUE_RE

from rolegate.accounting.estimate import TokenEstimator
from rolegate.accounting.records import UsageRecord
from rolegate.accounting.recorder import Recorder
from rolegate.authn.principal import Principal
from rolegate.authz.model import Decision
from rolegate.config.load import validate_settings
from rolegate.config.model import Settings
from rolegate.limits.limiter import Limiter
from rolegate.limits.memory import MemoryLimiter
from rolegate.limits.quota import QuotaPlan
from rolegate.limits.redis import RedisLimiter
from rolegate.limits.reservation import Reserver
from rolegate.providers.base import OneChunk, UpstreamReply
from rolegate.proxy.metering import Metering
from rolegate.proxy.streaming import response_for
from rolegate.proxy.usage import UsageMeter
from rolegate.routing.dispatcher import Forwarded
from rolegate.routing.replies import usage_of
from rolegate.routing.request import ClientRequest
from rolegate.server.asgi import Request, Response

SHAPES = ("plain", "limits", "usage", "production")
REDIS_URL = "redis://127.0.0.1:6379/0"
RAW = orjson.dumps({"model": "gpt-4o-mini",
                    "messages": [{"role": "user", "content": "Say hello in five words."}]})
REPLY = orjson.dumps({
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "Hello there, how are you?"}}],
    "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})
SCOPE = {"type": "http", "method": "POST", "path": "/v1/chat/completions",
         "headers": [(b"authorization", b"Bearer x"), (b"content-type", b"application/json")]}


def settings_of(shape: str, prefix: str) -> Settings:
    is_limited = shape in ("limits", "production")
    limits = {"limits": {"rpm": 100_000_000, "tpm": 100_000_000}} if is_limited else {}
    return validate_settings({
        "models": [{"name": "gpt-4o-mini", "provider": "mock",
                    "input_cost_per_1k": 0.15, "output_cost_per_1k": 0.6}],
        "auth": {"dev_issuer": {"enabled": True}},
        "policy": [{"name": "users", "when": {"roles": ["user"]},
                    "allow": {"routes": ["inference"], "models": ["*"], **limits}}],
        "limits": {"backend": "redis", "url": REDIS_URL, "prefix": prefix} if is_limited
        else {},
    }, source="<bench>")


class RowStore:
    """Builds each record's `COPY` row, as the PostgreSQL store does, and keeps nothing."""

    def __init__(self) -> None:
        self.rows = 0

    async def insert_many(self, records: Sequence[UsageRecord]) -> None:
        self.rows += len([record.values() for record in records])


def metering_of(settings: Settings, shape: str) -> tuple[Metering, Limiter, Recorder | None]:
    limiter: Limiter = (RedisLimiter(settings.limits) if shape in ("limits", "production")
                        else MemoryLimiter())
    recorder = (Recorder(RowStore(), flush_interval=1.0, batch_size=500)  # type: ignore[arg-type]
                if shape in ("usage", "production") else None)
    metering = Metering(QuotaPlan(settings.policy), limiter, recorder, time.time,
                        settings.models, reserver=Reserver(settings.models, default_tokens=1024),
                        usage=UsageMeter(TokenEstimator()))
    return metering, limiter, recorder


def sent_head(response: Response) -> bytes:
    """The response's head as uvicorn's httptools protocol checks and joins its headers."""
    content = [b"HTTP/1.1 200 OK\r\n"]
    for name, value in [(b"content-type", response.content_type), *response.headers,
                        (b"content-length", str(len(response.body)).encode())]:
        if HEADER_RE.search(name) or HEADER_VALUE_RE.search(value):
            raise RuntimeError("invalid header")
        name = name.lower()
        content.extend([name, b": ", value, b"\r\n"])
    return b"".join(content)


async def one_request(metering: Metering, who: Principal, decision: Decision,
                      ids: itertools.count[int]) -> None:
    request = Request(SCOPE, None, f"r-{next(ids)}")  # type: ignore[arg-type]
    body = orjson.loads(RAW)
    call = ClientRequest("chat/completions", "gpt-4o-mini", body, RAW, False,
                         request.request_id)
    async with metering.measure(request, who, decision, call) as meter:
        reply = UpstreamReply(200, b"application/json", OneChunk(REPLY))
        reply.usage = usage_of(REPLY)
        forwarded = Forwarded(reply, REPLY, [(b"x-rolegate-deployment", b"gpt-4o-mini/0")],
                              "gpt-4o-mini", "gpt-4o-mini/0", 1)
        meter.reach_upstream()
        response = await meter.attach(forwarded, response_for(forwarded, "chat/completions"))
    sent_head(response)


async def run(shape: str, requests: int, callers: int) -> tuple[float, int]:
    """CPU seconds per request over `requests` requests, `callers` at a time, and the round
    trips to Redis they made."""
    prefix = "bench-" + secrets.token_hex(4)
    metering, limiter, recorder = metering_of(settings_of(shape, prefix), shape)
    who = Principal(issuer="https://issuer.bench.invalid", subject="bench-user",
                    roles=frozenset({"user"}))
    decision = Decision(True, "users", "granted by rule 'users'")
    ids = itertools.count()
    if recorder is not None:
        await recorder.start()

    async def caller(count: int) -> None:
        for _ in range(count):
            await one_request(metering, who, decision, ids)

    await caller(callers)  # warm: the script loaded, the connection made
    trips = limiter._acquire.round_trips if isinstance(limiter, RedisLimiter) else 0
    started = time.process_time()
    await asyncio.gather(*[caller(requests // callers) for _ in range(callers)])
    spent = time.process_time() - started
    if isinstance(limiter, RedisLimiter):
        trips = limiter._acquire.round_trips - trips
    if recorder is not None:
        await recorder.stop()
    if isinstance(limiter, RedisLimiter):
        await limiter.redis.delete(*[key async for key in limiter.redis.scan_iter(prefix + "*")])
    await limiter.close()
    return spent / max(requests, 1), trips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=SHAPES, default="production")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--callers", type=int, default=4)
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop, as `serve` does")
    args = parser.parse_args()
    runner = asyncio.run
    if args.uvloop:
        import uvloop
        runner = uvloop.run  # type: ignore[assignment]
    per_request, trips = runner(run(args.shape, args.requests, args.callers))
    print(f"{args.shape}: {per_request * 1e6:.1f} us CPU per request "
          f"({args.requests} requests, {args.callers} callers, {trips} round trips to Redis)")


if __name__ == "__main__":
    main()
