"""Token estimates for replies whose usage never came: a real tokenizer whose vocabulary ships in
its package (counts match OpenAI's `o200k_base`), prompts read from every request shape, and the
generated text read from what was relayed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rolegate.accounting.estimate import MESSAGE_OVERHEAD, REPLY_PRIMING, TokenEstimator
from rolegate.accounting.records import TokenUsage
from rolegate.proxy.usage import UsageMeter, relayed_text

ESTIMATOR = TokenEstimator()


def test_counts_are_o200k_tokens_not_characters_or_words():
    assert ESTIMATOR.count("Hello, world!") == 4  # "Hello" "," " world" "!"
    assert ESTIMATOR.count("") == 0
    assert ESTIMATOR.count("<|endoftext|>") > 1  # special-token text is ordinary text here


def test_the_tokenizer_loads_with_no_network_at_all():
    """The vocabulary ships in the package: a process whose sockets all fail still counts."""
    code = ("import socket\n"
            "def refuse(*args, **kwargs): raise OSError('no network')\n"
            "socket.socket.connect = refuse\n"
            "socket.create_connection = refuse\n"
            "socket.getaddrinfo = refuse\n"
            "from rolegate.accounting.estimate import TokenEstimator\n"
            "print(TokenEstimator().count('Hello, world!'))\n")
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True,
                            text=True, timeout=60, check=False)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "4"


@pytest.mark.parametrize(("body", "texts", "overhead"), [
    ({"messages": [{"role": "user", "content": "hi there"}]}, ["hi there"],
     MESSAGE_OVERHEAD + REPLY_PRIMING),
    ({"messages": [{"role": "system", "content": "be brief"},
                   {"role": "user", "content": [
                       {"type": "text", "text": "hi there"},
                       {"type": "image_url", "image_url": {"url": "x"}}]}]},
     ["be brief", "hi there"], 2 * MESSAGE_OVERHEAD + REPLY_PRIMING),
    ({"input": "hello world", "instructions": "answer"}, ["hello world", "answer"], 0),
    ({"input": [{"role": "user", "content": [{"type": "input_text", "text": "hello"}]}]},
     ["hello"], 0),
    ({"prompt": ["one", "two"]}, ["one\ntwo"], 0),
    ({"systemInstruction": {"parts": [{"text": "be brief"}]},
      "contents": [{"role": "user", "parts": [{"text": "hi"}, {"text": "there"}]}]},
     ["be brief", "hi\nthere"], 0),
    ({"content": {"parts": [{"text": "embed me"}]}}, ["embed me"], 0),
    ({"requests": [{"model": "models/m", "content": {"parts": [{"text": "one"}]}},
                   {"content": {"parts": [{"text": "two"}]}}]}, ["one\ntwo"], 0),
], ids=["chat", "chat-parts", "responses-text", "responses-items", "completions-list",
        "gemini-contents", "gemini-embed", "gemini-batch-embed"])
def test_the_prompt_is_read_from_each_request_shape(body, texts, overhead):
    assert ESTIMATOR.prompt_tokens(body) == sum(ESTIMATOR.count(t) for t in texts) + overhead


def test_a_prompt_of_token_ids_counts_one_token_each():
    assert ESTIMATOR.prompt_tokens({"input": [[1, 2, 3], [4, 5]]}) == 5


def test_a_deeply_nested_body_is_read_without_recursing_forever():
    nested: object = "deep"
    for _ in range(10_000):
        nested = [nested]

    assert ESTIMATOR.prompt_tokens({"input": nested}) == 0


def test_relayed_text_reads_chat_completions_and_responses_events():
    chat = (b'data: {"choices":[{"index":0,"delta":{"content":"Hel"}}]}\n\n'
            b'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"function":'
            b'{"arguments":"{\\"a\\":1}"}}]}}]}\n\n')
    completions = b'data: {"choices":[{"index":0,"text":"lo"}]}\n\ndata: [DONE]\n\n'
    responses = (b'event: response.output_text.delta\n'
                 b'data: {"type":"response.output_text.delta","delta":" there"}\n\n'
                 b'event: response.created\ndata: {"type":"response.created","response":{}}\n\n')

    assert relayed_text([chat, completions, responses]) == 'Hel{"a":1}lo there'


def test_relayed_text_reads_a_json_reply_read_whole():
    chat = b'{\n  "choices": [{"message": {"role": "assistant", "content": "whole"}}]\n}'
    responses = (b'{"output": [{"type": "message", '
                 b'"content": [{"type": "output_text", "text": "r"}]}]}')

    assert relayed_text([chat]) == "whole"
    assert relayed_text([responses]) == "r"


async def test_the_upstreams_usage_wins_and_only_missing_usage_is_estimated():
    meter = UsageMeter(ESTIMATOR)
    body = {"messages": [{"role": "user", "content": "hi"}]}
    relayed = [b'data: {"choices":[{"delta":{"content":"Hello, world!"}}]}\n\n']

    reported = await meter.read({"prompt_tokens": 1, "completion_tokens": 2}, "chat/completions",
                          body, 200, relayed)
    estimated = await meter.read(None, "chat/completions", body, 200, relayed)
    failed = await meter.read(None, "chat/completions", body, 502, None)
    speech = await meter.read(None, "audio/speech", {"input": "say this"}, 200, None)

    assert reported == (TokenUsage(1, 2, 3), False)
    prompt = ESTIMATOR.count("hi") + MESSAGE_OVERHEAD + REPLY_PRIMING
    assert estimated == (TokenUsage(prompt, 4, prompt + 4), True)
    assert failed == (TokenUsage(), False)
    assert speech == (TokenUsage(), False)


def test_relayed_text_reads_gemini_events_and_a_gemini_reply():
    events = (b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"Hel"}]}}]}'
              b'\r\n\r\ndata: {"candidates":[{"content":{"parts":[{"text":"lo"}]}}]}\r\n\r\n')
    whole = b'{"candidates": [{"content": {"parts": [{"text": "whole"}]}}]}'

    assert relayed_text([events]) == "Hello"
    assert relayed_text([whole]) == "whole"


@pytest.mark.parametrize("usage", [{"input_tokens": 0, "output_tokens": 0},
                                   {"promptTokenCount": 0}, {}],
                         ids=["anthropic-zeros", "gemini-zeros", "empty"])
async def test_a_usage_of_all_zeros_is_estimated_as_a_missing_one(usage):
    """A translated stream opens with zero counts: cut before the upstream's usage came, it
    is charged what it relayed, never nothing."""
    relayed = [b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
               b'"delta":{"type":"text_delta","text":"Hello, world!"}}\n\n']
    body = {"messages": [{"role": "user", "content": "hi"}]}

    tokens, is_estimated = await UsageMeter(ESTIMATOR).read(usage, "messages", body, 200,
                                                            relayed)

    assert is_estimated and tokens.completion_tokens == 4 and tokens.prompt_tokens > 0
