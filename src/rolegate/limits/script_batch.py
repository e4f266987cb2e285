"""`ScriptBatch`: calls of one Redis Lua script sent together, over one connection of its own,
with at most one batch on the wire at a time.

Under load many requests check their limits at once; sent one by one, each pays a round trip and
a pass through the client (a pooled connection taken, checked and given back, a write, a read).
Here the calls made while a batch is out wait for it and then leave together as the next batch:
one write of commands packed by hiredis. Each call stays its own script run, atomic on the server
as before, and the calls run in the order they were made. A caller that gave up (its request was
cancelled) leaves the others unaffected.

    batch = ScriptBatch(redis, SOURCE, timeout=1.0)
    result = await batch.call(keys, args)   # EVALSHA, loading the script when Redis lacks it

The connection is made by the client's pool (address, TLS, password, database as configured);
its replies are then read by `_Replies`, a protocol of this module on the same transport: each
reply, as hiredis parses it from the bytes received, goes straight to its caller's future,
without a task per batch or a pass through the client's reader per reply (together about a
third of what a limit check cost this process).

`timeout` bounds a whole batch, and no reply read has a timer of its own: past it, every call of
the batch fails with `TimeoutError` and the connection is dropped (a new one is made for the
next batch), so no later batch can read a late reply. One watchdog timer per connection keeps
the deadlines: a batch sent while it is armed only moves the deadline (an attribute written,
no timer made and cancelled per batch), and the watchdog re-arms itself when it fires before
the deadline of the batch then out. `round_trips` counts the
batches written.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from hiredis import Reader, pack_command
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

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
        self._is_sending = False  # a batch is out, or its connection is being made
        self._tasks: set[asyncio.Task[None]] = set()  # connecting, or loading the script
        self._connection: AbstractConnection | None = None
        self._replies: _Replies | None = None
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
            loop.call_soon(self._send_pending)
        return future

    def _send_pending(self) -> None:
        calls, self._pending = self._pending, []
        if not calls:
            self._is_sending = False
            return
        replies = self._replies
        if replies is None or replies.is_lost:
            self._start(self._connect_and_send(calls))
        else:
            self._send(replies, calls)

    def _send(self, replies: _Replies, calls: list[_Call]) -> None:
        sha = self._sha
        commands: list[tuple[Any, ...]] = [("EVALSHA", sha, len(keys), *keys, *args)
                                           for keys, args, _ in calls]
        data = b"".join([pack_command(command) for command in commands])
        replies.expect(calls, self._timeout)
        self.round_trips += 1
        replies.transport.write(data)

    async def _connect_and_send(self, calls: list[_Call]) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                replies = await self._connect()
        except asyncio.CancelledError:  # the process is stopping
            _cancel(calls)
            raise
        except Exception as exc:  # could not connect: every call of the batch fails
            _fail(calls, exc)
            self._send_pending()
            return
        self._send(replies, calls)

    async def _connect(self) -> _Replies:
        await self._drop_connection()
        pool = self._redis.connection_pool
        connection = self._connection = await pool.get_connection()  # type: ignore[no-untyped-call]
        writer = connection._writer  # the client's transport, connected and authenticated
        if writer is None:
            raise RedisConnectionError("the Redis connection closed while it was made")
        transport = writer.transport
        replies = self._replies = _Replies(asyncio.get_running_loop(), transport,
                                           self._batch_done, self._expired)
        transport.set_protocol(replies)
        return replies

    def _batch_done(self, missing: list[_Call]) -> None:
        """Every reply of the batch out has come: the calls Redis lacked the script for run
        again once it is loaded, ahead of those waiting; then the next batch leaves."""
        if missing:
            self._start(self._load_and_send(missing))
            return
        self._send_pending()

    async def _load_and_send(self, missing: list[_Call]) -> None:
        """Redis restarted or its script cache was flushed: load it, run those calls again."""
        try:
            async with asyncio.timeout(self._timeout):
                await self._redis.script_load(self._source)
        except asyncio.CancelledError:
            _cancel(missing)
            raise
        except Exception as exc:
            _fail(missing, exc)
            self._send_pending()
            return
        replies = self._replies
        if replies is None or replies.is_lost:
            await self._connect_and_send(missing)
        else:
            self._send(replies, missing)

    def _expired(self) -> None:
        """The batch out took longer than `timeout`: its calls failed with TimeoutError, and
        its connection goes, with the replies that may still come on it."""
        self._start(self._drop_and_send())

    async def _drop_and_send(self) -> None:
        await self._drop_connection()
        self._send_pending()

    def _start(self, work: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled():  # the process is stopping: the waiting calls go with it
            self._is_sending = False
            calls, self._pending = self._pending, []
            _cancel(calls)

    async def _drop_connection(self) -> None:
        replies, self._replies = self._replies, None
        if replies is not None:
            replies.close()
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.disconnect()
            await self._redis.connection_pool.release(connection)


class _Replies(asyncio.Protocol):
    """The replies of the batch out on one connection, each handed to its call as it is parsed.
    A reply that says the script is missing (NOSCRIPT) is kept for `done`, which runs when the
    batch's last reply has come; past the batch's deadline, or when the connection is lost,
    what has not come fails."""

    def __init__(self, loop: asyncio.AbstractEventLoop, transport: asyncio.WriteTransport,
                 done: Callable[[list[_Call]], None], expired: Callable[[], None]) -> None:
        self._loop = loop
        self.transport = transport
        # The client's own protocol, told when the connection ends (its close waits for that).
        self._client = transport.get_protocol()
        self.is_lost = False
        self._reader = Reader(replyError=ResponseError)
        self._done = done
        self._expired = expired
        self._calls: list[_Call] = []
        self._next = 0
        self._missing: list[_Call] = []
        self._deadline = 0.0  # of the batch out (loop time)
        self._timer: asyncio.TimerHandle | None = None  # the watchdog, when armed

    def expect(self, calls: list[_Call], timeout: float) -> None:
        self._calls, self._next, self._missing = calls, 0, []
        self._deadline = self._loop.time() + timeout
        if self._timer is None:
            self._timer = self._loop.call_at(self._deadline, self._on_timer)

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        calls = self._calls
        while self._next < len(calls) and (reply := reader.gets()) is not False:
            call = calls[self._next]
            self._next += 1
            future = call[2]
            if isinstance(reply, ResponseError):
                if str(reply).startswith("NOSCRIPT"):
                    self._missing.append(call)
                elif not future.done():
                    future.set_exception(reply)
            elif not future.done():  # else its caller gave up
                future.set_result(reply)
        if calls and self._next == len(calls):
            self._done(self._end_batch())

    def _end_batch(self) -> list[_Call]:
        """The calls of the batch out still without a result (their script was missing, or
        their reply never came); no batch is out any more (the watchdog, when it fires, finds
        none and rests)."""
        left = self._calls[self._next:] + self._missing
        self._calls, self._next, self._missing = [], 0, []
        return left

    def connection_lost(self, exc: Exception | None) -> None:
        self._client.connection_lost(exc)
        if self.is_lost:  # dropped here, after its batch failed
            return
        self.is_lost = True
        if not self._calls:
            return
        _fail(self._end_batch(), RedisConnectionError(
            f"the connection to Redis was lost: {exc}" if exc is not None
            else "the connection to Redis was closed"))
        self._done([])

    def _on_timer(self) -> None:
        self._timer = None
        if not self._calls:  # no batch out: armed again by the next one
            return
        if self._loop.time() < self._deadline:  # a batch sent since it was armed
            self._timer = self._loop.call_at(self._deadline, self._on_timer)
            return
        left = self._end_batch()
        self.close()
        _fail(left, TimeoutError())
        self._expired()

    def close(self) -> None:
        """Drop the connection: no reply still on its way is read."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._end_batch()
        self.is_lost = True
        self.transport.abort()


def _fail(calls: list[_Call], exc: BaseException) -> None:
    for _, _, future in calls:
        if not future.done():
            future.set_exception(exc)


def _cancel(calls: list[_Call]) -> None:
    for _, _, future in calls:
        future.cancel()
