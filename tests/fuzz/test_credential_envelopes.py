"""Which credential a request carries, whichever headers carry it, on every API surface.

Invariants: one credential in any envelope (`Authorization: Bearer`, `api-key`, `x-api-key`,
`x-goog-api-key`, alone or repeated with the same value, beside empty key headers) gets exactly
the outcome the same credential gets as a bearer token alone; two different credentials are a
401 `ambiguous_credentials` in the surface's error shape, as is an empty Authorization header a
401 `missing_token`, and nothing reaches the upstream.
"""

from __future__ import annotations

import orjson
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz.conftest import INFERENCE_ROLE, INFO_ROLE, call, fuzz_settings

PROMPT = [{"role": "user", "content": "hi"}]
GEMINI = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
# path -> body, one call per surface and operation (model `allowed` is granted to INFERENCE_ROLE)
CALLS = {
    "/v1/chat/completions": {"model": "allowed", "messages": PROMPT},
    "/v1/embeddings": {"model": "allowed", "input": "hi"},
    "/v1/messages": {"model": "allowed", "max_tokens": 8, "messages": PROMPT},
    "/v1/messages/count_tokens": {"model": "echo", "messages": PROMPT},
    "/v1beta/models/allowed:generateContent": GEMINI,
    "/v1beta/models/echo:countTokens": GEMINI,
    "/v1beta/models/allowed:embedContent": {"content": {"parts": [{"text": "hi"}]}},
}
ENVELOPES = (b"authorization", b"api-key", b"x-api-key", b"x-goog-api-key")
WHO = ("caller", "other", "info", "empty")


def header(envelope: bytes, token: str) -> tuple[bytes, bytes]:
    value = token.encode()
    return envelope, (b"Bearer " + value if envelope == b"authorization" and value else value)


def error_code(reply) -> str | None:
    """The gateway's code for a refusal in any surface's shape (Anthropic's has none: its
    message stands for it)."""
    if reply.status < 400:
        return None
    error = reply.json()["error"]
    if isinstance(error.get("code"), str):  # OpenAI's
        return str(error["code"])
    if "details" in error:  # Google's: the code is the ErrorInfo's reason
        return str(error["details"][0]["reason"])
    return str(error["message"])


AMBIGUOUS = ("ambiguous_credentials", "The request carries different credentials in its "
             "Authorization and API key headers; send one.")
MISSING = ("missing_token", "No credential was sent. Send `Authorization: Bearer <token>`.")


@fuzz_settings
@given(path=st.sampled_from(sorted(CALLS)),
       sent=st.lists(st.tuples(st.sampled_from(ENVELOPES), st.sampled_from(WHO)),
                     min_size=1, max_size=4, unique_by=lambda pair: pair[0]))
@example(path="/v1beta/models/allowed:generateContent",
         sent=[(b"authorization", "caller"), (b"x-goog-api-key", "other")])
@example(path="/v1/messages", sent=[(b"authorization", "info"), (b"x-api-key", "caller")])
@example(path="/v1/chat/completions", sent=[(b"x-api-key", "empty"), (b"api-key", "caller")])
async def test_one_credential_in_any_envelope_or_two_refused(path, sent, gateway, upstream,
                                                             token_for):
    tokens = {"caller": token_for(INFERENCE_ROLE), "other": token_for(INFERENCE_ROLE, sub="eve"),
              "info": token_for(INFO_ROLE), "empty": ""}
    body = orjson.dumps(CALLS[path])
    json_type = (b"content-type", b"application/json")
    before = len(upstream.requests)

    reply = await call(gateway, "POST", path, body=body, headers=[
        json_type, *(header(envelope, tokens[who]) for envelope, who in sent)])

    credentials = {tokens[who] for _, who in sent if tokens[who]}
    if (b"authorization", "empty") in sent:  # an empty Authorization is a missing bearer token
        assert reply.status == 401 and error_code(reply) in MISSING
        assert len(upstream.requests) == before
        return
    if len(credentials) > 1:
        assert reply.status == 401 and error_code(reply) in AMBIGUOUS
        assert len(upstream.requests) == before
        return
    alone = await call(gateway, "POST", path, body=body, headers=[
        json_type, (b"authorization", f"Bearer {credentials.pop()}".encode())]) \
        if credentials else None
    if alone is None:
        assert reply.status == 401 and error_code(reply) in MISSING
    else:
        assert (reply.status, error_code(reply)) == (alone.status, error_code(alone))
