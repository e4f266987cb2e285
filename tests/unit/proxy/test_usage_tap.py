"""`UsageTap` reads token usage from JSON replies and SSE streams without changing them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from rolegate.accounting.records import TokenUsage
from rolegate.proxy.usage import UsageTap, with_stream_usage, without_usage_events

USAGE = {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}
STREAM = (b'data: {"choices":[{"delta":{"content":"hel"}}]}\n\n'
          b'data: {"choices":[{"delta":{"content":"lo \\"usage\\""}}]}\n\n'
          b'data: {"choices":[],"usage":' + json.dumps(USAGE).encode() + b"}\n\n"
          b"data: [DONE]\n\n")


async def chunks_of(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


async def relay(tap: UsageTap, data: bytes, size: int) -> bytes:
    return b"".join([chunk async for chunk in tap.watch(chunks_of(data, size))])


@pytest.mark.parametrize("size", [1, 7, 50, 10_000])
async def test_stream_usage_is_read_whatever_the_chunk_boundaries(size):
    tap = UsageTap(is_stream=True)

    relayed = await relay(tap, STREAM, size)

    assert relayed == STREAM
    assert tap.usage == TokenUsage(7, 5, 12)
    assert tap.is_complete


async def test_json_usage_is_read_from_the_whole_body():
    body = json.dumps({"id": "x", "usage": USAGE, "choices": []}).encode()
    tap = UsageTap(is_stream=False)

    assert await relay(tap, body, 5) == body
    assert tap.usage == TokenUsage(7, 5, 12)


async def test_responses_api_usage_names_are_understood():
    event = {"type": "response.completed",
             "response": {"usage": {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7}}}
    tap = UsageTap(is_stream=True)

    await relay(tap, b"event: response.completed\ndata: " + json.dumps(event).encode() + b"\n\n",
                9)

    assert tap.usage == TokenUsage(3, 4, 7)


@pytest.mark.parametrize("body", [b"not json", b'{"usage": "many"}',
                                  b'{"usage": {"prompt_tokens": -1, "completion_tokens": true}}',
                                  b"[]"])
async def test_unreadable_usage_counts_as_zero(body):
    tap = UsageTap(is_stream=False)

    await relay(tap, body, 3)

    assert tap.usage == TokenUsage(0, 0, 0)


async def test_a_stream_cut_short_is_not_complete():
    tap = UsageTap(is_stream=True)
    iterator = tap.watch(chunks_of(STREAM, 10)).__aiter__()

    await iterator.__anext__()

    assert not tap.is_complete


@pytest.mark.parametrize(("body", "expected"), [
    ({"stream": True}, {"stream": True, "stream_options": {"include_usage": True}}),
    ({"stream_options": {"x": 1}}, {"stream_options": {"x": 1, "include_usage": True}}),
    ({"stream_options": {"include_usage": False}}, None),
], ids=["adds", "merges", "respects-no"])
def test_streams_are_asked_for_usage_unless_the_caller_said_otherwise(body, expected):
    assert with_stream_usage(body) == expected


@pytest.mark.parametrize("size", [1, 13, 10_000])
async def test_the_usage_only_event_is_taken_out_for_callers_that_did_not_ask(size):
    relayed = b"".join([chunk async for chunk in without_usage_events(chunks_of(STREAM, size))])

    assert b'"usage":{' not in relayed
    assert b'lo \\"usage\\"' in relayed  # content that merely mentions usage stays
    assert relayed.replace(b"\n", b"") == STREAM.replace(b"\n", b"").replace(
        b'data: {"choices":[],"usage":' + json.dumps(USAGE).encode() + b"}", b"")
