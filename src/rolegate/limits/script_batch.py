"""`ScriptBatch`: calls of one Redis Lua script sent together, over one connection of its own,
with at most one batch on the wire at a time.

Under load many requests check their limits at once; sent one by one, each pays a round trip and
a pass through the client (a pooled connection taken, checked and given back, a write, a read).
Here the calls made while a batch is out wait for it and then leave together as the next batch:
one write of commands packed by hiredis, then one reply read per call. Each call stays its own
script run, atomic on the server as before, and the calls run in the order they were made. A
caller that gave up (its request was cancelled) leaves the others unaffected.

    batch = ScriptBatch(redis, SOURCE, timeout=1.0)
    result = await batch.call(keys, args)   # EVALSHA, loading the script when Redis lacks it

`timeout` bounds a whole batch, so the client can run without a timer per reply read (give it
no `socket_timeout`): past it, every call of the batch fails with `TimeoutError` and the
connection is dropped (a new one is made for the next batch). `round_trips` counts the batches
written.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from typing import Any

from hiredis import pack_command
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import NoScriptError, ResponseError

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
        self._is_sending = False
        self._sends: set[asyncio.Task[None]] = set()
        self._connection: AbstractConnection | None = None
        self.round_trips = 0

    def call(self, keys: Sequence[str], args: Args) -> asyncio.Future[Any]:
        """The script's result for `keys` and `args`, or the exception Redis or the connection
        raised."""
        loop = self._loop
        if loop is None or not loop.is_running():  # (looked up once: a system call on 3.11)
            loop = self._loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((keys, args, future))
        if not self._is_sending:  # else it leaves with the calls that wait for the batch out
            self._is_sending = True
            loop.call_soon(self._send)
        return future

    def _send(self) -> None:
        calls, self._pending = self._pending, []
        task = asyncio.ensure_future(self._run(calls))
        self._sends.add(task)
        task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sends.discard(task)
        if self._pending and not task.cancelled():
            self._send()
            return
        self._is_sending = False
        if self._pending:  # the process is stopping: the waiting calls go with it
            calls, self._pending = self._pending, []
            for _, _, future in calls:
                future.cancel()

    async def _run(self, calls: list[_Call]) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                results = await self._results(calls)
        except asyncio.CancelledError:  # the process is stopping
            await self._drop_connection()
            for _, _, future in calls:
                future.cancel()
            raise
        except Exception as exc:  # the connection failed or timed out: so did every call
            await self._drop_connection()
            results = [exc] * len(calls)
        for (_, _, future), result in zip(calls, results, strict=True):
            if future.done():  # its caller gave up
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def _results(self, calls: list[_Call]) -> list[Any]:
        results = await self._exchange(calls)
        missing = [index for index, result in enumerate(results)
                   if isinstance(result, NoScriptError)]
        if missing:  # Redis restarted or its script cache was flushed: load it, run those again
            await self._redis.script_load(self._source)
            again = await self._exchange([calls[index] for index in missing])
            for index, result in zip(missing, again, strict=True):
                results[index] = result
        return results

    async def _exchange(self, calls: list[_Call]) -> list[Any]:
        connection = self._connection
        if connection is None:
            pool = self._redis.connection_pool
            connection = self._connection = await pool.get_connection()  # type: ignore[no-untyped-call]
        sha = self._sha
        commands: list[tuple[Any, ...]] = [("EVALSHA", sha, len(keys), *keys, *args)
                                           for keys, args, _ in calls]
        await connection.send_packed_command(
            b"".join(pack_command(command) for command in commands), check_health=False)
        self.round_trips += 1
        results: list[Any] = []
        for _ in calls:
            try:
                results.append(await connection.read_response())
            except ResponseError as exc:  # this call's script failed; the connection is fine
                results.append(exc)
        return results

    async def _drop_connection(self) -> None:
        """Replies may still be on their way on it: no later batch may read them."""
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.disconnect()
            await self._redis.connection_pool.release(connection)
