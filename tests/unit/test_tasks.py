"""`BatchFlusher`: the lifecycle the usage recorder and the audit log share."""

from __future__ import annotations

import asyncio

from rolegate.tasks import BatchFlusher


class Writer:
    """A flush that reports `results` in turn (True once they run out), counting its calls."""

    def __init__(self, *results: bool) -> None:
        self.results = list(results)
        self.calls = 0
        self.flushed = asyncio.Event()

    async def flush(self) -> bool:
        self.calls += 1
        self.flushed.set()
        return self.results.pop(0) if self.results else True


async def test_a_wake_flushes_before_the_interval():
    writer = Writer()
    flusher = BatchFlusher(writer.flush, interval=3600)
    await flusher.start()

    flusher.wake()
    await asyncio.wait_for(writer.flushed.wait(), 5)

    assert writer.calls == 1
    assert await flusher.stop()
    assert not flusher.is_running


async def test_stop_retries_a_failed_flush_and_reports_what_is_left():
    writer = Writer(False, False, False, False)
    flusher = BatchFlusher(writer.flush, interval=3600, stop_attempts=3)
    await flusher.start()

    assert not await flusher.stop()
    assert writer.calls == 3  # the task saw the stop before its first wait: only the attempts


async def test_stop_without_start_still_drains():
    writer = Writer(False, True)
    flusher = BatchFlusher(writer.flush, interval=3600)

    assert await flusher.stop()
    assert writer.calls == 2
