"""`LineHandler`: the lines of one turn of the event loop leave in one write, at once outside
a loop, and none is lost when the loop stops before its flush ran."""

from __future__ import annotations

import asyncio
import io
import logging

import pytest

from rolegate.observability.logging import LINE_FORMAT, LineFormatter, LineHandler


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


@pytest.fixture
def logged():
    stream = CountingStream()
    handler = LineHandler(stream)
    handler.setFormatter(LineFormatter(LINE_FORMAT))
    logger = logging.getLogger("rolegate.test-line-handler")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream
    logger.handlers[:] = []


async def test_lines_of_one_turn_are_written_together_at_the_next_turn(logged):
    logger, stream = logged
    for number in range(5):
        logger.info("line %d", number)
    assert stream.getvalue() == ""  # not yet: the turn has not ended
    await asyncio.sleep(0)
    lines = stream.getvalue().splitlines()
    assert [line.rsplit(" ", 2)[-2:] for line in lines] == [["line", str(n)] for n in range(5)]
    assert stream.writes == 1
    logger.info("later")
    await asyncio.sleep(0)
    assert stream.getvalue().endswith("rolegate.test-line-handler later\n")
    assert stream.writes == 2


def test_outside_a_loop_a_line_is_written_at_once(logged):
    logger, stream = logged
    logger.warning("starting")
    assert stream.getvalue().endswith("WARNING rolegate.test-line-handler starting\n")


def stopped_loop_after(callback) -> asyncio.AbstractEventLoop:
    """Run `callback` on a new loop that stops in the same turn: what it scheduled never runs."""
    loop = asyncio.new_event_loop()

    def run_then_stop() -> None:
        callback()
        loop.stop()
    loop.call_soon(run_then_stop)
    loop.run_forever()
    loop.close()
    return loop


def test_a_loop_that_stopped_before_its_flush_loses_no_line(logged):
    logger, stream = logged
    stopped_loop_after(lambda: logger.info("first"))
    assert stream.getvalue() == ""  # its flush never ran

    async def log_again() -> None:
        logger.info("second")
    asyncio.run(log_again())  # a new loop schedules its own flush, which takes both
    assert [line.rsplit(" ", 1)[-1] for line in stream.getvalue().splitlines()] == [
        "first", "second"]


def test_flush_writes_what_is_pending(logged):
    logger, stream = logged
    stopped_loop_after(lambda: logger.info("pending at exit"))
    logger.handlers[0].flush()  # as logging.shutdown() does at exit
    assert stream.getvalue().endswith("pending at exit\n")


def test_a_broken_stream_does_not_raise(logged):
    logger, stream = logged
    stream.close()
    logger.warning("nowhere to go")  # ValueError from the closed stream is swallowed


async def test_a_line_from_another_thread_is_written_at_once_with_those_waiting(logged):
    logger, stream = logged
    logger.info("from the loop")
    await asyncio.to_thread(logger.info, "from a thread")
    assert [line.rsplit(" ", 3)[-3:] for line in stream.getvalue().splitlines()] == [
        ["from", "the", "loop"], ["from", "a", "thread"]]
