"""What translating costs on its own: each API's request to a chat request and the chat reply
back, on the bench's bodies (`bench/wrk/messages.lua`, `gemini.lua`; the mock's reply), the
JSON parsed and written as the providers do (`providers/translating.py`).

Run with `./dev pytest bench/micro/test_translation.py`.
"""

from __future__ import annotations

import orjson

from rolegate.translate import gemini_to_chat, messages_to_chat

MESSAGES = {"model": "echo", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
GEMINI = {"model": "echo", "contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
CHAT_REPLY = orjson.dumps({
    "id": "chatcmpl-mock", "object": "chat.completion", "created": 1, "model": "echo",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "Hello from the mock."}}],
    "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})


def test_messages_request_to_chat(benchmark) -> None:
    chat = benchmark(messages_to_chat.chat_request, MESSAGES)
    assert chat["messages"] == [{"role": "user", "content": "hi"}]


def test_chat_reply_to_message(benchmark) -> None:
    body = benchmark(lambda: orjson.dumps(messages_to_chat.message_reply(
        orjson.loads(CHAT_REPLY), model="echo")))
    assert orjson.loads(body)["content"] == [{"type": "text", "text": "Hello from the mock."}]


def test_gemini_request_to_chat(benchmark) -> None:
    chat = benchmark(gemini_to_chat.chat_request, GEMINI, is_stream=False)
    assert chat["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]


def test_chat_reply_to_gemini(benchmark) -> None:
    body = benchmark(lambda: orjson.dumps(gemini_to_chat.gemini_reply(
        orjson.loads(CHAT_REPLY), model="echo")))
    assert orjson.loads(body)["usageMetadata"]["totalTokenCount"] == 15
