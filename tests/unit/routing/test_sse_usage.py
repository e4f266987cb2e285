"""Reading usage out of a passing SSE stream, and keeping the usage chunk from callers who did
not ask for it."""

from __future__ import annotations

import orjson
import pytest

from rolegate.proxy.streaming import ResponsesUsageTap, SseUsageTap
from rolegate.routing.replies import usage_of

USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


def event(value: object) -> bytes:
    return b"data: " + orjson.dumps(value) + b"\n\n"


CONTENT = event({"choices": [{"index": 0, "delta": {"content": "hi"}}], "usage": None})
USAGE_CHUNK = event({"choices": [], "usage": USAGE})
DONE = b"data: [DONE]\n\n"


def test_usage_chunk_is_stripped_and_remembered():
    tap = SseUsageTap(is_stripping=True)

    out = tap.feed(CONTENT) + tap.feed(USAGE_CHUNK) + tap.feed(DONE) + tap.flush()

    assert out == CONTENT + DONE
    assert tap.usage == USAGE


def test_usage_chunk_is_kept_for_a_caller_who_asked():
    tap = SseUsageTap(is_stripping=False)

    out = tap.feed(CONTENT + USAGE_CHUNK + DONE)

    assert out == CONTENT + USAGE_CHUNK + DONE
    assert tap.usage == USAGE


@pytest.mark.parametrize("size", [1, 7, 64])
def test_events_split_across_chunks_are_forwarded_whole(size):
    stream = CONTENT + USAGE_CHUNK + DONE
    tap = SseUsageTap(is_stripping=True)

    pieces = [tap.feed(stream[i:i + size]) for i in range(0, len(stream), size)]

    assert b"".join(pieces) + tap.flush() == CONTENT + DONE
    assert all(piece == b"" or piece.endswith(b"\n\n") for piece in pieces)
    assert tap.usage == USAGE


def test_crlf_delimited_events_are_understood():
    tap = SseUsageTap(is_stripping=True)
    crlf = USAGE_CHUNK.replace(b"\n\n", b"\r\n\r\n")

    assert tap.feed(CONTENT + crlf + DONE) == CONTENT + DONE


def test_chunk_with_choices_and_usage_is_kept():
    tap = SseUsageTap(is_stripping=True)
    both = event({"choices": [{"index": 0, "delta": {}}], "usage": USAGE})

    assert tap.feed(both) == both
    assert tap.usage == USAGE


def test_usage_of_a_json_body():
    assert usage_of(orjson.dumps({"id": "x", "usage": USAGE})) == USAGE
    assert usage_of(b"not json") is None
    assert usage_of(b'["usage"]') is None


def named(name: str, value: object) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(value) + b"\n\n"


RESPONSE_USAGE = {"input_tokens": 4, "output_tokens": 6, "total_tokens": 10}
RESPONSES_STREAM = (
    named("response.created", {"type": "response.created",
                                "response": {"id": "resp_1", "status": "in_progress",
                                             "usage": None}})
    + named("response.output_text.delta", {"type": "response.output_text.delta",
                                           "delta": "the word usage in text"})
    + named("response.completed", {"type": "response.completed",
                                   "response": {"id": "resp_1", "status": "completed",
                                                "usage": RESPONSE_USAGE}}))


@pytest.mark.parametrize("size", [1, 13, len(RESPONSES_STREAM)])
def test_responses_stream_usage_is_read_from_its_closing_event_and_nothing_dropped(size):
    tap = ResponsesUsageTap()

    pieces = [tap.feed(RESPONSES_STREAM[i:i + size])
              for i in range(0, len(RESPONSES_STREAM), size)]

    assert b"".join(pieces) + tap.flush() == RESPONSES_STREAM
    assert tap.usage == RESPONSE_USAGE


def test_a_responses_stream_cut_before_its_closing_event_has_no_usage():
    tap = ResponsesUsageTap()
    cut = RESPONSES_STREAM[:RESPONSES_STREAM.index(b"event: response.completed")]

    assert tap.feed(cut) == cut
    assert tap.usage is None
