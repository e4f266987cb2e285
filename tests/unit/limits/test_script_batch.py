"""`ScriptBatch` against the real Redis: the calls of one turn share one round trip, each still
gets its own result in order, calls made while a batch is out leave together next, a flushed
script cache is reloaded, a caller that gave up does not disturb the others, a connection
failure reaches every caller (and the next batch gets a new connection), and replies that
arrive in pieces give what whole ones give."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from rolegate.limits.script_batch import ScriptBatch
from tests.support.storage import REDIS_URL

# Appends ARGV[1] to the list KEYS[1] and returns the list's new length.
APPEND = "return redis.call('RPUSH', KEYS[1], ARGV[1])"


@pytest.fixture
async def redis(redis_prefix):
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


async def test_calls_of_one_turn_share_one_round_trip_and_run_in_order(redis, redis_prefix):
    await redis.script_load(APPEND)  # else the first batch runs twice: to find it missing, then
    batch = ScriptBatch(redis, APPEND, timeout=5.0)
    key = f"{redis_prefix}:list"

    lengths = await asyncio.gather(*(batch.call([key], [f"v{n}"]) for n in range(20)))

    assert lengths == list(range(1, 21))
    assert await redis.lrange(key, 0, -1) == [f"v{n}".encode() for n in range(20)]
    assert batch.round_trips == 1
    await batch.call([key], ["later"])
    assert batch.round_trips == 2


async def test_calls_made_while_a_batch_is_out_leave_together_next(redis, redis_prefix):
    await redis.script_load(APPEND)
    batch = ScriptBatch(redis, APPEND, timeout=5.0)
    key = f"{redis_prefix}:list"
    first = batch.call([key], ["first"])
    await asyncio.sleep(0)  # the first batch is written; its reply has not been read yet

    later = [batch.call([key], [f"later{n}"]) for n in range(5)]

    assert await first == 1
    assert await asyncio.gather(*later) == [2, 3, 4, 5, 6]
    assert batch.round_trips == 2


async def test_a_flushed_script_cache_is_reloaded(redis, redis_prefix):
    batch = ScriptBatch(redis, APPEND, timeout=5.0)
    key = f"{redis_prefix}:list"
    assert await batch.call([key], ["a"]) == 1
    await redis.script_flush()
    before = batch.round_trips

    assert await asyncio.gather(batch.call([key], ["b"]), batch.call([key], ["c"])) == [2, 3]
    assert batch.round_trips - before == 2  # found it missing, then ran again once loaded


async def test_a_script_error_reaches_only_its_caller(redis, redis_prefix):
    batch = ScriptBatch(redis, APPEND, timeout=5.0)
    key = f"{redis_prefix}:list"
    await redis.set(f"{redis_prefix}:text", "not a list")

    outcomes = await asyncio.gather(batch.call([key], ["a"]),
                                    batch.call([f"{redis_prefix}:text"], ["b"]),
                                    batch.call([key], ["c"]), return_exceptions=True)

    assert outcomes[0] == 1 and outcomes[2] == 2
    assert isinstance(outcomes[1], ResponseError)


async def test_a_caller_that_gave_up_leaves_the_others_their_results(redis, redis_prefix):
    batch = ScriptBatch(redis, APPEND, timeout=5.0)
    key = f"{redis_prefix}:list"
    first, second = batch.call([key], ["a"]), batch.call([key], ["b"])
    first.cancel()

    assert await second == 2
    assert await redis.llen(key) == 2  # the cancelled call was already on its way


async def test_an_unreachable_redis_fails_every_call_of_the_batch():
    client = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    batch = ScriptBatch(client, APPEND, timeout=5.0)

    outcomes = await asyncio.gather(batch.call(["k"], ["a"]), batch.call(["k"], ["b"]),
                                    return_exceptions=True)
    await client.aclose()

    assert all(isinstance(outcome, RedisConnectionError) for outcome in outcomes)


async def test_a_batch_that_timed_out_leaves_no_reply_for_the_next(redis, redis_prefix):
    """A batch past its deadline fails, and its connection goes with the replies still on it:
    the next batch reads its own replies on a new connection."""
    slow = "redis.call('RPUSH', KEYS[1], ARGV[1]); local t = redis.call('TIME'); " \
           "local stop = t[1] * 1000000 + t[2] + tonumber(ARGV[2]); " \
           "repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] >= stop; return ARGV[1]"
    batch = ScriptBatch(redis, slow, timeout=0.05)
    await redis.script_load(slow)
    key = f"{redis_prefix}:list"

    with pytest.raises(TimeoutError):
        await batch.call([key], ["a", 200_000])  # busy for 0.2 s on the server
    await redis.ping()  # answered once the server is done with the slow script

    assert await batch.call([key], ["b", 0]) == b"b"  # not the late reply of "a"
    assert await redis.lrange(key, 0, -1) == [b"a", b"b"]


SLOW = "redis.call('RPUSH', KEYS[1], ARGV[1]); local t = redis.call('TIME'); " \
       "local stop = t[1] * 1000000 + t[2] + tonumber(ARGV[2]); " \
       "repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] >= stop; return ARGV[1]"


async def test_each_batch_gets_its_whole_timeout_whatever_the_batches_before_it(
        redis, redis_prefix):
    """The deadline is the batch's own: one sent 0.2 s after a quick one, with a timeout of
    0.4 s, is not failed when the quick one's deadline passes, and fails at its own."""
    loop = asyncio.get_running_loop()
    batch = ScriptBatch(redis, SLOW, timeout=0.4)
    await redis.script_load(SLOW)
    key = f"{redis_prefix}:list"
    assert await batch.call([key], ["quick", 0]) == b"quick"
    await asyncio.sleep(0.2)

    sent = loop.time()
    assert await batch.call([key], ["within", 300_000]) == b"within"  # 0.3 s of 0.4
    within = loop.time() - sent
    sent = loop.time()
    with pytest.raises(TimeoutError):
        await batch.call([key], ["past", 1_500_000])  # busy for 1.5 s on the server
    past = loop.time() - sent

    assert within >= 0.29
    assert 0.39 <= past < 1.2  # its own deadline, not the server's end
    await redis.ping()  # answered once the server is done with the slow script
    assert await batch.call([key], ["after", 0]) == b"after"


async def test_a_connection_closed_by_redis_is_made_again_for_the_next_batch(redis, redis_prefix):
    await redis.script_load(APPEND)
    batch = ScriptBatch(redis, APPEND, timeout=5.0)
    key = f"{redis_prefix}:list"
    assert await batch.call([key], ["a"]) == 1
    host, port = batch._replies.transport.get_extra_info("sockname")[:2]  # the batch's own

    assert await redis.client_kill(f"{host}:{port}") is True
    await asyncio.sleep(0.05)  # the close reaches this process

    assert await asyncio.gather(batch.call([key], ["b"]), batch.call([key], ["c"])) == [2, 3]


class _Dribbler:
    """A TCP relay to the real Redis that hands its replies back one byte per write (each
    its own read at the client), so every reply arrives in pieces and several end in one read
    only by chance: how replies may come over a real network."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server: asyncio.base_events.Server | None = None
        self.url = ""

    async def __aenter__(self) -> _Dribbler:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"redis://127.0.0.1:{port}/0"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _relay(self, client_in: asyncio.StreamReader,
                     client_out: asyncio.StreamWriter) -> None:
        redis_in, redis_out = await asyncio.open_connection(*self._target)

        async def requests() -> None:
            while data := await client_in.read(65536):
                redis_out.write(data)
                await redis_out.drain()
            redis_out.close()

        async def replies() -> None:
            while data := await redis_in.read(65536):
                for index in range(len(data)):
                    client_out.write(data[index:index + 1])
                    await client_out.drain()
                    await asyncio.sleep(0)
            client_out.close()

        await asyncio.gather(requests(), replies(), return_exceptions=True)


async def test_replies_that_arrive_in_pieces_each_reach_their_caller(redis, redis_prefix):
    """The same calls through a relay that splits every reply into single bytes give the
    results Redis gave directly: integers, bulk strings, arrays and an error, each to its
    caller, in order."""
    echo = ("if ARGV[1] == 'fail' then return redis.error_reply('refused') end; "
            "redis.call('RPUSH', KEYS[1], ARGV[1]); "
            "return {redis.call('LLEN', KEYS[1]), ARGV[1], {ARGV[1], 'x'}}")
    host, port = REDIS_URL.removeprefix("redis://").split("/")[0].split(":")
    values = [f"value-{n}-" + "y" * n for n in range(12)] + ["fail", "last"]

    async def results(url: str, key: str) -> list[object]:
        client = Redis.from_url(url)
        await client.script_load(echo)
        batch = ScriptBatch(client, echo, timeout=10.0)
        try:
            return await asyncio.gather(*(batch.call([key], [value]) for value in values),
                                        return_exceptions=True)
        finally:
            await client.aclose()

    direct = await results(REDIS_URL, f"{redis_prefix}:direct")
    async with _Dribbler(host, int(port)) as relay:
        pieces = await results(relay.url, f"{redis_prefix}:pieces")

    assert [str(result) for result in pieces] == [str(result) for result in direct]
    assert pieces[0] == [1, b"value-0-", [b"value-0-", b"x"]]
    assert isinstance(pieces[-2], ResponseError) and "refused" in str(pieces[-2])
    assert pieces[-1] == [13, b"last", [b"last", b"x"]]
