"""A model name, however spelled, gets the same decision on every surface that can carry it,
and what reaches the upstream is the model that was authorized.

Invariants, for names drawn from look-alikes of a granted model (case, confusable letters,
invisible characters, a `models/` prefix, padding) and of a denied one: the OpenAI, Anthropic
and Gemini surfaces agree on allowed or refused; a refused call reaches no upstream; an allowed
one reaches it naming exactly the granted model.
"""

from __future__ import annotations

from urllib.parse import quote

import orjson
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz.conftest import INFERENCE_ROLE, call, fuzz_settings

PROMPT = [{"role": "user", "content": "hi"}]
LOOK_ALIKES = ["allowed", "Allowed", "ALLOWED", "allowed ", " allowed", "a\u0399lowed",
               "allow\u0435d", "allowed\u200b", "\ufeffallowed", "allowed\u0301", "\uff41llowed",
               "models/allowed", "allowed*", "allowe?", "allowed\x00", "secret", "Secret",
               "secre\u0442", "echo", "all", "allowed:generateContent", "allowed/x"]


def outcome(status: int) -> str:
    return {200: "allowed", 403: "denied"}.get(status, f"refused {status}")


@fuzz_settings
@given(model=st.sampled_from(LOOK_ALIKES) | st.text(alphabet="alowedALOWED\u0435\u200b*?/ :",
                                                    min_size=1, max_size=10))
@example(model="Allowed")
@example(model="allow\u0435d")
async def test_a_model_name_gets_one_decision_on_every_surface(model, gateway, upstream,
                                                              token_for):
    headers = [(b"authorization", f"Bearer {token_for(INFERENCE_ROLE)}".encode()),
               (b"content-type", b"application/json")]
    chat = await call(gateway, "POST", "/v1/chat/completions", headers=headers,
                      body=orjson.dumps({"model": model, "messages": PROMPT}))
    messages = await call(gateway, "POST", "/v1/messages", headers=headers, body=orjson.dumps(
        {"model": model, "max_tokens": 8, "messages": PROMPT}))
    before = len(upstream.requests)
    path = f"/v1beta/models/{model}:generateContent"
    gemini = await call(gateway, "POST", path, headers=headers,
                        raw_path=f"/v1beta/models/{quote(model, safe='')}:generateContent"
                        .encode(), body=orjson.dumps({"contents": [{"parts": [{"text": "hi"}]}]}))

    assert outcome(chat.status) == outcome(messages.status), (model, chat.body, messages.body)
    if gemini.status != 404 or chat.status == 200:  # a path can't carry every name
        assert outcome(gemini.status) == outcome(chat.status), (model, gemini.body)
    reached = upstream.requests[before:]
    assert len(reached) == (gemini.status == 200)
    if chat.status == 200:
        assert model == "allowed"
        assert [request.json()["model"] for request in reached] == ["allowed"]
