"""`ScriptBatch`: the calls of one Redis Lua script made in the same turn of the event loop,
sent together in one pipeline.

Under load many requests check their limits in the same turn; sent one by one, each pays a
round trip and a pass through the client (a pooled connection taken and given back, a write, a
read, a timeout). Sent together they share them. Each call stays its own script run, atomic on
the server as before, and the calls run in the order they were made. A caller that gave up
(its request was cancelled) leaves the others unaffected.

    batch = ScriptBatch(redis, SOURCE, timeout=1.0)
    result = await batch.call(keys, args)   # EVALSHA, loading the script when Redis lacks it

`timeout` bounds a whole batch, so the client can run without a timer per reply read (give it
no `socket_timeout`): past it, every call of the batch fails with `TimeoutError` and the
connection is dropped.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

Args = Sequence[str | float | int]
_Call = tuple[Sequence[str], Args, "asyncio.Future[Any]"]


class ScriptBatch:
    def __init__(self, redis: Redis, source: str, *, timeout: float) -> None:
        self._redis = redis
        self._source = source
        self._timeout = timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sha = hashlib.sha1(source.encode()).hexdigest()
        self._pending: list[_Call] = []
        self._sends: set[asyncio.Task[None]] = set()

    def call(self, keys: Sequence[str], args: Args) -> asyncio.Future[Any]:
        """The script's result for `keys` and `args`, or the exception Redis or the connection
        raised."""
        loop = self._loop
        if loop is None or not loop.is_running():  # (looked up once: a system call on 3.11)
            loop = self._loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._send)
        self._pending.append((keys, args, future))
        return future

    def _send(self) -> None:
        calls, self._pending = self._pending, []
        task = asyncio.ensure_future(self._run(calls))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    async def _run(self, calls: list[_Call]) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                results = await self._results(calls)
        except asyncio.CancelledError:  # the process is stopping
            for _, _, future in calls:
                future.cancel()
            raise
        except Exception as exc:  # the connection failed or timed out: so did every call
            results = [exc] * len(calls)
        for (_, _, future), result in zip(calls, results, strict=True):
            if future.done():  # its caller gave up
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def _results(self, calls: list[_Call]) -> list[Any]:
        results = await self._pipeline(calls)
        missing = [index for index, result in enumerate(results)
                   if isinstance(result, NoScriptError)]
        if missing:  # Redis restarted or its script cache was flushed: load it, run those again
            await self._redis.script_load(self._source)
            again = await self._pipeline([calls[index] for index in missing])
            for index, result in zip(missing, again, strict=True):
                results[index] = result
        return results

    async def _pipeline(self, calls: list[_Call]) -> list[Any]:
        pipeline = self._redis.pipeline(transaction=False)
        for keys, args, _ in calls:
            pipeline.evalsha(self._sha, len(keys), *keys, *args)
        return list(await pipeline.execute(raise_on_error=False))
