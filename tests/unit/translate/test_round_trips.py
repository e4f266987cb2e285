"""What both APIs can say survives a round trip: a chat request translated to Gemini's
`generateContent` (as for a Gemini deployment) and back to chat (as for a Gemini caller on an
OpenAI deployment) is the request it was, in chat's longer spellings (a user message's text as
a part; two user messages in a row one message, as Gemini's turns alternate). The same for a
reply, Gemini's way and back, and for a request through Anthropic's Messages and back.

Set ROLEGATE_HYPOTHESIS_EXAMPLES to run more examples (default 150 per property).
"""

from __future__ import annotations

import os
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from rolegate.translate import chat_to_messages, messages_to_chat
from rolegate.translate.chat_to_gemini import chat_reply, gemini_request
from rolegate.translate.gemini_to_chat import chat_request, gemini_reply

EXAMPLES = int(os.environ.get("ROLEGATE_HYPOTHESIS_EXAMPLES", "150"))
NAMES = ("weather", "clock", "search")

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1,
               max_size=12)
# Not JSON: a plain text tool output (JSON objects are tested apart, below).
plain = st.from_regex(r"[A-Za-z][A-Za-z ]{0,11}", fullmatch=True)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), text)
arguments = st.dictionaries(st.sampled_from(["city", "days", "q"]), scalars, max_size=3)
image = st.builds(lambda data: {"type": "image_url", "image_url": {
    "url": f"data:image/png;base64,{data}"}}, st.from_regex(r"[A-Za-z0-9+/]{4,16}={0,2}",
                                                              fullmatch=True))
user_parts = st.lists(st.one_of(st.builds(lambda t: {"type": "text", "text": t}, text), image),
                      min_size=1, max_size=3)


@st.composite
def exchange(draw: st.DrawFn, turn: int) -> list[dict[str, Any]]:
    """A user message, then perhaps the assistant's text, or its tool calls and their results."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": draw(user_parts)}]
    reply = draw(st.sampled_from(["none", "text", "calls"]))
    if reply == "text":
        messages.append({"role": "assistant", "content": draw(text)})
    elif reply == "calls":
        calls = [{"id": f"call_{turn}_{index}", "type": "function", "function": {
            "name": draw(st.sampled_from(NAMES)),
            "arguments": orjson.dumps(draw(arguments)).decode()}}
            for index in range(draw(st.integers(1, 2)))]
        messages.append({"role": "assistant", "content": draw(st.one_of(st.none(), text)),
                         "tool_calls": calls})
        messages += [{"role": "tool", "tool_call_id": call["id"], "content": draw(st.one_of(
            plain, arguments.map(lambda value: orjson.dumps(value).decode())))}
            for call in calls]
    return messages


@st.composite
def chat_requests(draw: st.DrawFn) -> dict[str, Any]:
    messages = [{"role": "system", "content": draw(text)}] if draw(st.booleans()) else []
    for turn in range(draw(st.integers(1, 3))):
        messages += draw(exchange(turn))
    body: dict[str, Any] = {"model": "m", "messages": messages}
    body.update(draw(st.fixed_dictionaries({}, optional={
        "temperature": st.floats(0, 2), "top_p": st.floats(0, 1),
        "max_tokens": st.integers(1, 4096), "n": st.integers(1, 4), "seed": st.integers(0, 99),
        "presence_penalty": st.floats(-2, 2), "frequency_penalty": st.floats(-2, 2),
        "stop": st.lists(text, min_size=1, max_size=3),
        "response_format": st.just({"type": "json_object"}),
        "tools": st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True).map(
            lambda names: [{"type": "function", "function": {
                "name": name, "description": f"the {name}",
                "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}
                for name in names]),
        "tool_choice": st.one_of(st.sampled_from(["auto", "none", "required"]),
                                 st.sampled_from(NAMES).map(lambda name: {
                                     "type": "function", "function": {"name": name}})),
    })))
    return body


def _alternating(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages with two user messages in a row made one, as both APIs want turns to
    alternate."""
    said: list[dict[str, Any]] = []
    for message in messages:
        if message["role"] == "user" and said and said[-1]["role"] == "user":
            said[-1] = {**said[-1], "content": said[-1]["content"] + message["content"]}
        else:
            said.append(message)
    return said


@settings(max_examples=EXAMPLES, deadline=None)
@given(chat_requests())
def test_a_chat_request_survives_gemini_and_back(chat):
    back = chat_request({**gemini_request(chat), "model": chat["model"]}, is_stream=False)

    assert back == {**chat, "messages": _alternating(chat["messages"])}


@st.composite
def completions(draw: st.DrawFn) -> dict[str, Any]:
    calls = [{"index": index, "id": f"call_{index}", "type": "function", "function": {
        "name": draw(st.sampled_from(NAMES)),
        "arguments": orjson.dumps(draw(arguments)).decode()}}
        for index in range(draw(st.integers(0, 2)))]
    message: dict[str, Any] = {"role": "assistant", "content": draw(st.one_of(st.none(), text))
                               if calls else draw(text)}
    if calls:
        message["tool_calls"] = calls
    prompt, output = draw(st.integers(0, 10**6)), draw(st.integers(0, 10**6))
    usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": output,
                             "total_tokens": prompt + output}
    if cached := draw(st.integers(0, prompt)):
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    if reasoning := draw(st.integers(0, output)):
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    finish = "tool_calls" if calls else draw(st.sampled_from(["stop", "length",
                                                             "content_filter"]))
    return {"id": "chatcmpl-r", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage}


@settings(max_examples=EXAMPLES, deadline=None)
@given(completions())
def test_a_chat_reply_survives_gemini_and_back(completion):
    back = chat_reply(gemini_reply(completion, model="m"), model="m", request_id="r")

    assert back == completion


url_image = st.builds(lambda name: {"type": "image_url", "image_url": {
    "url": f"https://images.example/{name}.png"}}, st.from_regex(r"[a-z]{1,8}", fullmatch=True))


@st.composite
def anthropic_expressible(draw: st.DrawFn) -> dict[str, Any]:
    """A chat request in what Messages can say too: no seed, penalties, n or response format;
    images by URL as well; a tool's output any text; a user message only after another kind."""
    chat = draw(chat_requests())
    for name in ("seed", "presence_penalty", "frequency_penalty", "n", "response_format"):
        chat.pop(name, None)
    chat["max_tokens"] = chat.get("max_tokens", 1024)
    if draw(st.booleans()):
        chat["user"] = draw(plain)
    first = next(i for i, m in enumerate(chat["messages"]) if m["role"] == "user")
    chat["messages"][first]["content"].append(draw(url_image))
    return {**chat, "messages": _alternating(chat["messages"])}


@settings(max_examples=EXAMPLES, deadline=None)
@given(anthropic_expressible())
def test_a_chat_request_survives_anthropic_messages_and_back(chat):
    assert messages_to_chat.chat_request(chat_to_messages.messages_request(chat)) == chat
